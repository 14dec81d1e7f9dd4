// A broker server process the comparison owns (redis-server, nats-server): started on its
// own port with its own folder, probed until it accepts clients, killed with SIGKILL for
// the recovery scenario and started again on the same port and folder, stopped at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import { exited, stopChild } from '../../kit/process/stop-process.ts';

export interface ServerProcessOptions {
  command: string;
  args: string[];
  logFile: string;
  /** True once the server answers; polled every 50 ms. */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
}

export class ServerProcess {
  private child: ChildProcess | undefined;

  constructor(private readonly opts: ServerProcessOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    const log = openSync(this.opts.logFile, 'a');
    const child = spawn(this.opts.command, this.opts.args, { stdio: ['ignore', log, log] });
    closeSync(log);
    this.child = child;
    let exit: string | undefined;
    child.once('exit', (code, signal) => {
      exit = `exit ${code ?? signal}`;
    });
    const deadline = performance.now() + (this.opts.readyTimeoutMs ?? 30_000);
    while (!(await this.opts.ready())) {
      if (exit) throw new Error(`${this.opts.command} did not start (${exit}); see ${this.opts.logFile}`);
      if (performance.now() > deadline) {
        await this.stop();
        throw new Error(`${this.opts.command} did not answer within the timeout; see ${this.opts.logFile}`);
      }
      await sleep(50);
    }
  }

  /** SIGKILL: no chance to flush or close anything, as in a crash of the process. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const gone = exited(child);
    child.kill('SIGKILL');
    await gone;
    this.child = undefined;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    await stopChild(child, { signal: 'SIGTERM', timeoutMs: 10_000 });
    this.child = undefined;
  }
}

/** True when something accepts TCP connections on the loopback port. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      conn.destroy();
      resolve(ok);
    };
    conn.setTimeout(1000, () => done(false));
    conn.on('connect', () => done(true));
    conn.on('error', () => done(false));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
