// A redis-server as a component: sessions and rate limits shared by the web servers
// (`redis`, rung 7), the cache tier's own Redis (`cache`, rung 5: bounded, evicting), or the
// broker of rung 9 (`queue`, role queue: BullMQ's Redis, persisted, never evicting).
import type { ChildProcess } from 'node:child_process';
import { requireBinary } from '../binaries.ts';
import { exitReason, spawnLogged, waitUntil } from '../child.ts';
import { ROLES, type Component, type MetricsTarget } from '../component.ts';
import { stopChild } from '../../kit/process/stop-process.ts';
import { ping, redisServerArgs, type RedisServerOptions } from '../redis-server.ts';

export interface RedisComponentOptions extends RedisServerOptions {
  name: string;
  logFile: string;
  /** `queue`: the broker of rung 9 (a redis-server too); default `redis`. */
  role?: 'redis' | 'queue';
}

const READY_TIMEOUT_MS = 15_000;

export class RedisComponent implements Component {
  readonly name: string;
  readonly role: 'redis' | 'queue';
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  /** Its exporter (monitoring/exporters.ts), set by the plan when the topology is monitored. */
  metrics?: MetricsTarget;

  constructor(private readonly opts: RedisComponentOptions) {
    this.name = opts.name;
    this.role = opts.role ?? 'redis';
    this.port = opts.port;
    this.url = `redis://127.0.0.1:${opts.port}`;
    this.logFile = opts.logFile;
  }

  async start(): Promise<ChildProcess> {
    return spawnLogged(requireBinary('redis-server'), redisServerArgs(this.opts), { logFile: this.logFile });
  }

  async waitReady(child: ChildProcess): Promise<void> {
    await waitUntil(() => ping(this.port), READY_TIMEOUT_MS, this.name, () => exitReason(child, this.logFile));
  }

  async stop(child: ChildProcess): Promise<void> {
    await stopChild(child, { signal: ROLES[this.role].stopSignal, timeoutMs: ROLES[this.role].stopTimeoutMs });
  }
}
