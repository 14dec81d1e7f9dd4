// Redis Sentinel for the session Redis (--ha from rung 7): three sentinels watch the primary
// (`redis`) and its replica (`redis-replica`); when two agree the primary is down for a
// second they promote the replica, and the web servers' clients (ioredis in sentinel mode,
// REDIS_SENTINELS) ask them where the primary is now. Node names stay fixed, roles follow:
// after a failover `redis-replica` has role `redis` and the restarted `redis` is a replica.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stopChild } from '../../kit/process/stop-process.ts';
import { requireBinary } from '../binaries.ts';
import { exitReason, spawnLogged, waitUntil } from '../child.ts';
import { ROLES, type Component } from '../component.ts';
import { ping } from '../redis-server.ts';

/** The name the sentinels know the session Redis by (REDIS_SENTINEL_NAME). */
export const SESSIONS_MASTER = 'sessions';

/**
 * Timing, in one commented table: the primary is "down" for a sentinel after a second
 * without an answer, and objectively down once two of three agree; a failover that has not
 * finished in 5 s is tried again. A promoted replica serves writes 1-3 s after the kill.
 */
export const SENTINEL_TIMING = { downAfterMs: 1000, failoverTimeoutMs: 5000, quorum: 2 } as const;

const READY_TIMEOUT_MS = 15_000;

export function sentinelConf(port: number, dir: string, primaryPort: number): string {
  const t = SENTINEL_TIMING;
  return [
    `port ${port}`,
    'bind 127.0.0.1',
    'daemonize no',
    `dir ${dir}`,
    `sentinel monitor ${SESSIONS_MASTER} 127.0.0.1 ${primaryPort} ${t.quorum}`,
    `sentinel down-after-milliseconds ${SESSIONS_MASTER} ${t.downAfterMs}`,
    `sentinel failover-timeout ${SESSIONS_MASTER} ${t.failoverTimeoutMs}`,
    `sentinel parallel-syncs ${SESSIONS_MASTER} 1`,
    '',
  ].join('\n');
}

export class SentinelComponent implements Component {
  readonly role = 'sentinel' as const;
  readonly url: string;
  private readonly conf: string;
  private fresh = true;

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly dir: string,
    readonly logFile: string,
    private readonly primaryPort: number,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
    this.conf = path.join(dir, 'sentinel.conf');
  }

  async start(): Promise<ChildProcess> {
    // A sentinel rewrites its file with what it learns (the current primary, the other
    // sentinels); a restart keeps that, a new `up` starts from the configured primary.
    if (this.fresh) {
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(this.conf, sentinelConf(this.port, this.dir, this.primaryPort));
    }
    this.fresh = false;
    return spawnLogged(requireBinary('redis-sentinel'), [this.conf], { logFile: this.logFile });
  }

  async waitReady(child: ChildProcess): Promise<void> {
    await waitUntil(() => ping(this.port), READY_TIMEOUT_MS, this.name, () => exitReason(child, this.logFile));
  }

  async stop(child: ChildProcess): Promise<void> {
    await stopChild(child, { signal: ROLES.sentinel.stopSignal, timeoutMs: ROLES.sentinel.stopTimeoutMs });
  }
}
