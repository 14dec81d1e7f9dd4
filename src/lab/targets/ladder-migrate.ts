// The app's schema in a bench database, created the way people create it: by running
// `ladder migrate` with DATABASE_URL in its environment (the URL holds a password, so it
// never goes on a command line where `ps` shows it). The lab drives the app through its
// command and HTTP only; it imports no app code.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { BenchSession } from '../machine/bench-session.ts';
import { cleanEnv } from '../machine/clean-env.ts';
import { LADDER_BIN } from '../machine/node-entry.ts';

/** Runs `ladder migrate` against `databaseUrl`; rejects with the end of its log if it fails. */
export async function ladderMigrate(session: BenchSession, name: string, databaseUrl: string): Promise<void> {
  // Its own state folder: with DATABASE_URL it keeps nothing there, but it must not be the developer's.
  const cwd = path.join(session.dir, name);
  mkdirSync(cwd, { recursive: true });
  const proc = session.supervisor.spawn(name, process.execPath, [LADDER_BIN, 'migrate'], {
    cwd,
    env: cleanEnv({ DATABASE_URL: databaseUrl, LADDER_STATE_DIR: path.join(cwd, '.ladder'), LOG_LEVEL: 'warn' }),
  });
  const how = await proc.exited;
  await session.supervisor.stop(proc);
  if (how !== 'exit 0') throw new Error(`ladder migrate failed (${how}):\n${session.supervisor.tail(proc)}`);
}
