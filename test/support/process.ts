// Runs `ladder` as a real child process (as a user would) and stops it by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const LADDER_BIN = path.resolve('bin/ladder.mjs');

export interface LadderProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the URL once the process prints it. */
  url: Promise<string>;
}

export function runLadder(args: string[], env: Record<string, string>): LadderProcess {
  const child = spawn(process.execPath, [LADDER_BIN, ...args], {
    env: { ...process.env, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let resolveUrl: (u: string) => void;
  let rejectUrl: (e: Error) => void;
  const url = new Promise<string>((res, rej) => {
    resolveUrl = res;
    rejectUrl = rej;
  });
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const m = /^(http:\/\/\S+)$/m.exec(out);
    if (m) resolveUrl(m[1]!);
  });
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      rejectUrl(new Error(`ladder exited (${code ?? signal}) before serving:\n${out}`));
      resolve({ code, signal });
    }),
  );
  url.catch(() => undefined); // a caller that never waits for the URL must not see an unhandled rejection
  return { child, output: () => out, exited, url };
}

/** SIGTERM, then SIGKILL if it is still running after the timeout. */
export async function stopProcess(p: LadderProcess, timeoutMs = 15_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  await p.exited;
  clearTimeout(timer);
}

/**
 * The pids of a topology's nodes, read before `ladder down` so that the test can check none
 * is left; none when its status cannot be read (it never came up).
 */
export function nodePids(nodes: () => readonly { pid: number | null }[]): number[] {
  try {
    return nodes()
      .map((n) => n.pid)
      .filter((p): p is number => p !== null);
  } catch {
    return [];
  }
}
