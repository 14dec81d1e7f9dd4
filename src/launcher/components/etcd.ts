// One member of the 3-member etcd cluster (--ha): Patroni's distributed configuration store,
// where the leader key lives. Its data is thrown away on every `up` (the cluster is made
// anew with the Patroni cluster it serves); a member that dies is restarted on its data and
// rejoins the other two. Ready once its /health says the cluster has a leader.
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { stopChild } from '../../kit/process/stop-process.ts';
import { requireBinary } from '../binaries.ts';
import { exitReason, spawnLogged, waitUntil } from '../child.ts';
import { ROLES, type Component } from '../component.ts';
import { etcdArgs, type EtcdMember } from '../patroni-config.ts';

const READY_TIMEOUT_MS = 30_000;

export interface EtcdComponentOptions {
  member: EtcdMember;
  /** Every member, this one included (--initial-cluster). */
  members: readonly EtcdMember[];
  dataDir: string;
  logFile: string;
  /** Unique per state folder, so members of two clusters can never join each other. */
  token: string;
}

export class EtcdComponent implements Component {
  readonly name: string;
  readonly role = 'etcd' as const;
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  private fresh = true;

  constructor(private readonly opts: EtcdComponentOptions) {
    this.name = opts.member.name;
    this.port = opts.member.clientPort;
    this.url = `http://127.0.0.1:${this.port}`;
    this.logFile = opts.logFile;
  }

  /** host:port, as Patroni's etcd.hosts lists it. */
  get hostPort(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<ChildProcess> {
    if (this.fresh) rmSync(this.opts.dataDir, { recursive: true, force: true });
    this.fresh = false;
    const { member, members, dataDir, token } = this.opts;
    return spawnLogged(requireBinary('etcd'), etcdArgs(member, members, dataDir, token), { logFile: this.logFile });
  }

  async waitReady(child: ChildProcess): Promise<void> {
    await waitUntil(() => etcdHealthy(this.url), READY_TIMEOUT_MS, this.name, () => exitReason(child, this.logFile));
  }

  async stop(child: ChildProcess): Promise<void> {
    await stopChild(child, { signal: ROLES.etcd.stopSignal, timeoutMs: ROLES.etcd.stopTimeoutMs });
  }
}

/** etcd's /health: 200 {"health":"true"} once the member is part of a cluster with a leader. */
async function etcdHealthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: unknown };
    return res.ok && body.health === 'true';
  } catch {
    return false; // not up yet (refused), or no quorum yet
  }
}
