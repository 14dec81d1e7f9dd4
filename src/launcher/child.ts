// Child processes the launcher owns: started with their output in a log file, stopped by
// PID with a graceful signal first and SIGKILL after a timeout (STYLE.md, habit 9).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { isAlive } from '../kit/process/pid.ts';

export function spawnLogged(
  command: string,
  args: string[],
  opts: { logFile: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number },
): ChildProcess {
  mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const fd = openSync(opts.logFile, 'a');
  try {
    return spawn(command, args, {
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid } : {}),
    });
  } finally {
    closeSync(fd);
  }
}

/** Waits for a child to exit; resolves at once if it already has. */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await done;
  clearTimeout(timer);
}

/** Stops a process we do not hold a handle for (e.g. after a supervisor died), by PID. */
export async function stopPid(pid: number, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls until probe() is true or the deadline passes (then throws with `what`). */
export async function waitUntil(probe: () => Promise<boolean>, timeoutMs: number, what: string, failed?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const why = failed?.();
    if (why) throw new Error(`${what}: ${why}`);
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
