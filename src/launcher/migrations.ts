// Applies the app's database migrations by command (`ladder migrate` with DATABASE_URL),
// so the launcher starts a database without importing the app that owns the migrations.
import { spawn } from 'node:child_process';
import { LADDER_BIN } from './ladder-bin.ts';
import { LadderFailure } from '../kit/errors.ts';

/** The lines `ladder migrate` writes for each migration it applies (without the `ladder: ` prefix). */
const APPLIED = /^ladder: (applied migration \S+)$/;

/**
 * Runs `ladder migrate` against databaseUrl and resolves once it exits 0. `log` gets one line
 * per migration applied; on failure the error carries the end of the command's output.
 */
export function runMigrations(databaseUrl: string, log: (line: string) => void = () => undefined, timeoutMs = 120_000, shard = false): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LADDER_BIN, 'migrate'], {
      env: { ...process.env, DATABASE_URL: databaseUrl, ...(shard ? { LADDER_SHARD_SCHEMA: '1' } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let partial = '';
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-8000));
    child.stdout.on('data', keep);
    child.stderr.on('data', (d: Buffer) => {
      keep(d);
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const m = APPLIED.exec(line);
        if (m) log(m[1]!);
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new LadderFailure('MIGRATION_FAILED', `could not run \`ladder migrate\`: ${err.message}`, { cause: err }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new LadderFailure('MIGRATION_FAILED', `\`ladder migrate\` failed (${code ?? signal}): ${output.trim().slice(-2000)}`));
    });
  });
}
