// Stopping a process we started: a graceful signal first, SIGKILL if it is still running
// after a timeout (STYLE.md, habit 9). One implementation for the whole project: the
// launcher's components, the Postgres servers, the lab's bench processes.
import type { ChildProcess } from 'node:child_process';
import { isAlive } from './pid.ts';

export interface StopOptions {
  /** The graceful signal: SIGTERM for most programs, SIGINT for Postgres' fast shutdown, SIGUSR1 for HAProxy's soft stop. */
  signal?: NodeJS.Signals;
  /** How long the graceful signal gets before SIGKILL. */
  timeoutMs?: number;
}

/** How a stop ended: it was already gone, it exited after the signal, or it had to be killed. */
export type StopOutcome = 'not-running' | 'exited' | 'killed';

const DEFAULT_TIMEOUT_MS = 10_000;

/** Whether a child we hold a handle for has exited (or died of a signal). */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Waits for a child to exit; resolves at once if it already has. */
export function exited(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Stops a child we hold a handle for; resolves once it has exited. */
export async function stopChild(child: ChildProcess, opts: StopOptions = {}): Promise<StopOutcome> {
  if (hasExited(child) || child.pid === undefined) return 'not-running';
  const done = exited(child);
  let killed = false;
  child.kill(opts.signal ?? 'SIGTERM');
  const timer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  await done;
  clearTimeout(timer);
  return killed ? 'killed' : 'exited';
}

/**
 * Stops a process we hold no handle for (one a dead supervisor or a killed `ladder start`
 * left behind), by PID, polling until it is gone. The caller checks first that the pid is
 * still the process it means (its command line), since pids are reused.
 */
export async function stopPid(pid: number, opts: StopOptions = {}): Promise<StopOutcome> {
  if (!isAlive(pid)) return 'not-running';
  if (!signalPid(pid, opts.signal ?? 'SIGTERM')) return 'not-running';
  const deadline = performance.now() + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  while (isAlive(pid)) {
    if (performance.now() > deadline) {
      signalPid(pid, 'SIGKILL');
      // SIGKILL cannot be caught; a short wait lets the kernel finish so callers see it gone.
      const until = Date.now() + 2000;
      while (isAlive(pid) && Date.now() < until) await sleep(20);
      return 'killed';
    }
    await sleep(50);
  }
  return 'exited';
}

/** Sends a signal; false when the process is already gone (ESRCH), which is not an error here. */
export function signalPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
