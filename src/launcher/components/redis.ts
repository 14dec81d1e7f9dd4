// A redis-server as a component: sessions and rate limits shared by the web servers
// (`redis`, rung 7), the cache tier's own Redis (`cache`, rung 5: bounded, evicting), or the
// broker of rung 9 (`queue`, role queue: BullMQ's Redis, persisted, never evicting).
import type { ChildProcess } from 'node:child_process';
import { requireBinary } from '../binaries.ts';
import { exitReason, spawnLogged, waitUntil } from '../child.ts';
import { ROLES, type Component, type MetricsTarget } from '../component.ts';
import { stopChild } from '../../kit/process/stop-process.ts';
import { ping, redisRole, redisServerArgs, replicaInSync, type RedisServerOptions } from '../redis-server.ts';
import type { NodeRole } from '../up-state.ts';
import { SENTINEL_TIMING } from './sentinel.ts';

export interface RedisComponentOptions extends RedisServerOptions {
  name: string;
  logFile: string;
  /**
   * Its role at start: a replica (`redis-replica`, with replicaOfPort) or not; `queue`: the
   * broker of rung 9 (a redis-server too). Default `redis`.
   */
  role?: 'redis' | 'redis-replica' | 'queue';
  /** Start as a replica of the Redis on this port. */
  replicaOfPort?: number;
  /**
   * Under Sentinel: the other node's port. The role is then the live one (INFO replication),
   * and a node that died comes back as a replica of the other, after the sentinels have had
   * time to promote it: back at once, empty (nothing is persisted), it would still be the
   * primary, and its replica would copy the empty data set.
   */
  sentinelPeerPort?: number;
}

const READY_TIMEOUT_MS = 15_000;

export class RedisComponent implements Component {
  readonly name: string;
  readonly role: 'redis' | 'redis-replica' | 'queue';
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  /** Its exporter (monitoring/exporters.ts), set by the plan when the topology is monitored. */
  metrics?: MetricsTarget;
  readonly restartDelayMs: number | undefined;
  readonly downRole: NodeRole | undefined;
  private started = false;
  private replicating = false;

  constructor(private readonly opts: RedisComponentOptions) {
    this.name = opts.name;
    this.role = opts.role ?? 'redis';
    this.port = opts.port;
    this.url = `redis://127.0.0.1:${opts.port}`;
    this.logFile = opts.logFile;
    const sentinel = opts.sentinelPeerPort !== undefined;
    this.restartDelayMs = sentinel ? SENTINEL_TIMING.downAfterMs + SENTINEL_TIMING.failoverTimeoutMs : undefined;
    this.downRole = sentinel ? 'redis-replica' : undefined;
    if (sentinel) this.currentRole = () => redisRole(this.port);
  }

  /** Under Sentinel: primary (`redis`) or replica (`redis-replica`), from INFO replication. */
  currentRole?: () => Promise<NodeRole | undefined>;

  async start(): Promise<ChildProcess> {
    const replicaOf = this.started ? this.opts.sentinelPeerPort : this.opts.replicaOfPort;
    this.started = true;
    const args = [
      ...redisServerArgs(this.opts),
      ...(replicaOf !== undefined ? ['--replicaof', '127.0.0.1', String(replicaOf)] : []),
      // A replica's first copy starts at once (Redis waits 5 s for more replicas by default):
      // until it has the data set, losing the primary loses the sessions.
      ...(this.opts.sentinelPeerPort !== undefined ? ['--repl-diskless-sync-delay', '0'] : []),
    ];
    this.replicating = replicaOf !== undefined;
    return spawnLogged(requireBinary('redis-server'), args, { logFile: this.logFile });
  }

  async waitReady(child: ChildProcess): Promise<void> {
    await waitUntil(() => ping(this.port), READY_TIMEOUT_MS, this.name, () => exitReason(child, this.logFile));
    // A replica is ready once it holds the primary's data set.
    if (this.replicating) await waitUntil(() => replicaInSync(this.port), READY_TIMEOUT_MS, `${this.name} (first copy from its primary)`, () => exitReason(child, this.logFile));
  }

  async stop(child: ChildProcess): Promise<void> {
    await stopChild(child, { signal: ROLES[this.role].stopSignal, timeoutMs: ROLES[this.role].stopTimeoutMs });
  }
}
