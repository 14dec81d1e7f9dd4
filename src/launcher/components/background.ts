// A process of ours that serves no users, as a component: a worker (`ladder __worker`,
// worker1..) or the relay (`ladder __relay`) of rung 9. Its settings come in the environment
// (DATABASE_URL, QUEUE_URL, ...); it serves /healthz, /readyz and /metrics on its own loopback
// port, and is ready once /readyz answers 200.
import type { ChildProcess } from 'node:child_process';
import { stopChild } from '../../kit/process/stop-process.ts';
import { exitReason, httpOk, spawnLogged, waitUntil } from '../child.ts';
import { ROLES, type Component, type MetricsTarget } from '../component.ts';
import { RELAY_ENTRY, WORKER_ENTRY } from '../ladder-bin.ts';

const READY_TIMEOUT_MS = 30_000;

export interface BackgroundComponentOptions {
  name: string;
  role: 'worker' | 'relay';
  port: number;
  logFile: string;
  /** Its settings, on top of the launcher's own environment. */
  env: Record<string, string | undefined>;
}

export class BackgroundComponent implements Component {
  readonly name: string;
  readonly role: 'worker' | 'relay';
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  readonly metrics: MetricsTarget;

  constructor(private readonly opts: BackgroundComponentOptions) {
    this.name = opts.name;
    this.role = opts.role;
    this.port = opts.port;
    this.url = `http://127.0.0.1:${opts.port}`;
    this.logFile = opts.logFile;
    this.metrics = { port: opts.port, path: '/metrics' };
  }

  async start(): Promise<ChildProcess> {
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(this.port), HOST: '127.0.0.1', LADDER_NODE: this.name };
    for (const [k, v] of Object.entries(this.opts.env)) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const entry = this.role === 'worker' ? WORKER_ENTRY : RELAY_ENTRY;
    return spawnLogged(process.execPath, [entry, this.role === 'worker' ? '__worker' : '__relay'], { logFile: this.logFile, env });
  }

  async waitReady(child: ChildProcess): Promise<void> {
    await waitUntil(() => httpOk(`${this.url}/readyz`), READY_TIMEOUT_MS, this.name, () => exitReason(child, this.logFile));
  }

  async stop(child: ChildProcess): Promise<void> {
    await stopChild(child, { signal: ROLES[this.role].stopSignal, timeoutMs: ROLES[this.role].stopTimeoutMs });
  }
}
