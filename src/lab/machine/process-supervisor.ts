// The processes a bench run starts, and how they stop: SIGTERM, then SIGKILL after a
// timeout, newest first (the driver before the servers it talks to). Output goes to one
// log file per process so that a failure can quote it.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { stopChild } from '../../kit/process/stop-process.ts';

export interface ManagedProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  logFile: string;
  /** Resolves when the process has exited, with how. */
  exited: Promise<string>;
  /** Set once exited. */
  exitStatus: string | undefined;
  /** Why it could not be started (no such binary, ...), if that is how it ended. */
  spawnError?: string;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Open an IPC channel (node children only). */
  ipc?: boolean;
}

const STOP_TIMEOUT_MS = 10_000;

export class ProcessSupervisor {
  private readonly running: ManagedProcess[] = [];

  constructor(private readonly logDir: string) {}

  spawn(name: string, command: string, args: string[], opts: SpawnOptions = {}): ManagedProcess {
    const logFile = path.join(this.logDir, `${name}.log`);
    const fd = openSync(logFile, 'w');
    const stdio: StdioOptions = opts.ipc ? ['ignore', fd, fd, 'ipc'] : ['ignore', fd, fd];
    let child: ChildProcess;
    try {
      child = spawn(command, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio });
    } finally {
      closeSync(fd);
    }
    if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
    const proc: ManagedProcess = {
      name,
      pid: child.pid,
      child,
      logFile,
      exitStatus: undefined,
      exited: new Promise((resolve) => {
        child.once('exit', (code, signal) => {
          proc.exitStatus = proc.spawnError ? `could not start: ${proc.spawnError}` : signal ? `killed by ${signal}` : `exit ${code}`;
          resolve(proc.exitStatus);
        });
      }),
    };
    // A failed spawn (no such binary) emits 'error' and then 'exit'; without a listener it
    // would throw. The exit is what the run reports (with the log), so the error is noted there.
    child.on('error', (err) => {
      proc.spawnError = err.message;
    });
    this.running.push(proc);
    return proc;
  }

  /** Graceful stop: SIGTERM, SIGKILL after the timeout. */
  async stop(proc: ManagedProcess, timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
    if (proc.exitStatus === undefined) {
      await stopChild(proc.child, { timeoutMs });
      await proc.exited;
    }
    const i = this.running.indexOf(proc);
    if (i >= 0) this.running.splice(i, 1);
  }

  /** Stops everything still running, newest first. */
  async stopAll(): Promise<void> {
    for (const proc of [...this.running].reverse()) await this.stop(proc);
  }

  /** Last resort when our own process is exiting and cannot wait: SIGKILL what is left. */
  killAllNow(): void {
    for (const proc of this.running) if (proc.exitStatus === undefined) proc.child.kill('SIGKILL');
  }

  /** The end of a process's log, for error messages. */
  tail(proc: ManagedProcess, lines = 15): string {
    try {
      return readFileSync(proc.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }
}
