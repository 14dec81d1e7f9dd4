// Child processes the launcher starts: output appended to a log file, and a poll for
// readiness. Stopping them is the project's one stop-with-timeout (kit/process/stop-process.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { LadderFailure } from '../kit/errors.ts';

export function spawnLogged(
  command: string,
  args: string[],
  opts: { logFile: string; env?: NodeJS.ProcessEnv; detached?: boolean; uid?: number; gid?: number; cwd?: string },
): ChildProcess {
  mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const fd = openSync(opts.logFile, 'a');
  try {
    return spawn(command, args, {
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
      detached: opts.detached ?? false,
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid } : {}),
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
  } finally {
    closeSync(fd);
  }
}

/** Polls until probe() is true or the deadline passes (then throws with `what`). */
export async function waitUntil(probe: () => Promise<boolean>, timeoutMs: number, what: string, failed?: () => string | undefined): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const why = failed?.();
    if (why) throw new LadderFailure('COMPONENT_FAILED', `${what}: ${why}`);
    if (await probe()) return;
    if (performance.now() > deadline) throw new LadderFailure('COMPONENT_FAILED', `${what}: not ready within ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Why a child is no longer worth waiting for, or undefined while it runs. */
export function exitReason(child: ChildProcess, logFile: string): string | undefined {
  if (child.exitCode === null && child.signalCode === null) return undefined;
  return `exited (${child.exitCode ?? child.signalCode}); see ${logFile}`;
}

/** True when GET url answers 2xx within a second (a readiness probe: any failure is "not yet"). */
export async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}
