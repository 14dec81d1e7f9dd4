// A database node of --ha (pg1..pgN): a Patroni process that owns its Postgres. Patroni
// bootstraps the first leader (initdb), clones the others with pg_basebackup, promotes a
// replica when the leader's key expires in etcd, and brings an old primary back as a replica
// with pg_rewind. The launcher supervises Patroni: the node's pid is Patroni's, and its
// Postgres is found through the data folder's postmaster.pid (Patroni starts the postmaster
// in a session of its own, so it is no descendant of Patroni: chaos and stop take both).
//
// The node's role is its current one, read from Patroni's REST API (currentRole()): the
// leader is `postgres`, the others `postgres-replica`. The cluster's `links` database and
// its migrations are made once, on whichever node leads when the first node is ready.
import type { ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { isAlive } from '../../kit/process/pid.ts';
import { stopChild, stopPid } from '../../kit/process/stop-process.ts';
import { requireBinary } from '../binaries.ts';
import { exitReason, spawnLogged, waitUntil } from '../child.ts';
import type { Component } from '../component.ts';
import { runMigrations } from '../migrations.ts';
import { HA_TIMING, patroniConfig, SUPERUSER, type PatroniNodeConfig } from '../patroni-config.ts';
import { findLeader, patroniHealthy, patroniStatus } from '../patroni-api.ts';
import type { RunAs } from '../postgres-server.ts';
import type { NodeRole } from '../up-state.ts';
import { DATABASE_NAME } from './postgres.ts';

/** A replica's first start clones the leader (pg_basebackup), which takes a while on a busy machine. */
const READY_TIMEOUT_MS = 150_000;
/** Patroni's own stop: a checkpoint and a fast shutdown of its Postgres, then the key handed back. */
const PATRONI_STOP_TIMEOUT_MS = 30_000;

/** What the nodes of one Patroni cluster share: the leader's one-time setup. */
export class PatroniCluster {
  readonly nodes: PatroniComponent[] = [];
  private setup: Promise<void> | undefined;

  constructor(private readonly onMigration: (line: string) => void = () => undefined) {}

  /** The node that leads now, if one does. */
  async leader(timeoutMs = 1000): Promise<PatroniComponent | undefined> {
    const i = await findLeader(
      this.nodes.map((n) => n.apiUrl),
      timeoutMs,
    );
    return i === undefined ? undefined : this.nodes[i];
  }

  /** Creates the app's database on the leader and migrates it, once per `up`. */
  ensureDatabase(): Promise<void> {
    this.setup ??= (async () => {
      let leader: PatroniComponent | undefined;
      await waitUntil(async () => (leader = await this.leader()) !== undefined, READY_TIMEOUT_MS, 'the Patroni cluster: a leader');
      const client = new pg.Client({ connectionString: leader!.adminUrl('postgres') });
      await client.connect();
      try {
        const found = await client.query('select 1 from pg_database where datname = $1', [DATABASE_NAME]);
        if (found.rowCount === 0) await client.query(`create database ${DATABASE_NAME}`);
      } finally {
        await client.end();
      }
      await runMigrations(leader!.databaseUrl, this.onMigration);
    })();
    this.setup.catch(() => (this.setup = undefined)); // a failed setup is tried again by the next node
    return this.setup;
  }
}

export interface PatroniComponentOptions {
  config: PatroniNodeConfig;
  /** The node's folder: patroni.yml, the data folder, sockets. Owned by `runAs` when we are root. */
  nodeDir: string;
  logFile: string;
  runAs: RunAs | undefined;
  cluster: PatroniCluster;
}

export class PatroniComponent implements Component {
  readonly name: string;
  /** Its role at registration; the live one comes from currentRole(). */
  readonly role: NodeRole = 'postgres';
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  /** Patroni's REST API. */
  readonly apiUrl: string;
  /** postmaster.pid of its Postgres: the other half of the node. */
  readonly pidFile: string;
  readonly downRole: NodeRole = 'postgres-replica';
  /** Back after the leader key has expired (and a replica has taken over), as a machine that rebooted. */
  readonly restartDelayMs = (HA_TIMING.ttl + 4) * 1000;
  private readonly configFile: string;
  private fresh = true;

  constructor(private readonly opts: PatroniComponentOptions) {
    const c = opts.config;
    this.name = c.name;
    this.port = c.pgPort;
    this.url = `postgres://127.0.0.1:${c.pgPort}/${DATABASE_NAME}`;
    this.logFile = opts.logFile;
    this.apiUrl = `http://127.0.0.1:${c.restPort}`;
    this.pidFile = path.join(c.dataDir, 'postmaster.pid');
    this.configFile = path.join(opts.nodeDir, 'patroni.yml');
    opts.cluster.nodes.push(this);
  }

  /** The app's database on this node, as the superuser. */
  get databaseUrl(): string {
    return this.adminUrl(DATABASE_NAME);
  }

  adminUrl(database: string): string {
    return `postgres://${SUPERUSER}:${encodeURIComponent(this.opts.config.superuserPassword)}@127.0.0.1:${this.port}/${database}`;
  }

  async start(): Promise<ChildProcess> {
    const { nodeDir, runAs, config } = this.opts;
    // Fresh on every `up` (like the replicas of rung 4): the cluster is bootstrapped anew with
    // its etcd. A restart after a crash keeps the data: Patroni recovers or rewinds it.
    if (this.fresh) {
      await this.stopPostmaster();
      rmSync(config.dataDir, { recursive: true, force: true });
    }
    this.fresh = false;
    for (const dir of [nodeDir, config.runDir]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (runAs) chownSync(dir, runAs.uid, runAs.gid);
    }
    writeFileSync(this.configFile, JSON.stringify(patroniConfig(config), null, 2) + '\n', { mode: 0o600 });
    if (runAs) chownSync(this.configFile, runAs.uid, runAs.gid);
    // A Postgres whose Patroni died alone (kill -9 of the pid) still runs: the new Patroni
    // adopts it (it reads postmaster.pid), so nothing is stopped here.
    return spawnLogged(requireBinary('patroni'), [this.configFile], {
      logFile: this.logFile,
      env: { ...process.env, HOME: nodeDir, LC_ALL: 'C.UTF-8', PYTHONUNBUFFERED: '1' },
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid, cwd: nodeDir } : {}),
    });
  }

  async waitReady(child: ChildProcess): Promise<void> {
    await waitUntil(() => patroniHealthy(this.apiUrl), READY_TIMEOUT_MS, this.name, () => exitReason(child, this.logFile));
    await this.opts.cluster.ensureDatabase();
  }

  /** `postgres` while it holds the leader key, `postgres-replica` otherwise; undefined when it does not answer. */
  async currentRole(): Promise<NodeRole | undefined> {
    const s = await patroniStatus(this.apiUrl, 800);
    if (s) return s.leader ? 'postgres' : 'postgres-replica';
    // Not answering (frozen, stopping): it leads nothing once another node does.
    const leader = await this.opts.cluster.leader(800);
    return leader !== undefined && leader !== this ? 'postgres-replica' : undefined;
  }

  /** The postmaster's pid (from its postmaster.pid), when it runs. */
  postmasterPid(): number | undefined {
    return readPostmasterPid(this.pidFile);
  }

  async stop(child: ChildProcess): Promise<void> {
    // Patroni stops its Postgres (fast shutdown) and, when it leads, hands the key back.
    await stopChild(child, { signal: 'SIGTERM', timeoutMs: PATRONI_STOP_TIMEOUT_MS });
    await this.stopPostmaster(); // left behind when Patroni had to be killed, or was killed
  }

  private async stopPostmaster(): Promise<void> {
    const pid = this.postmasterPid();
    if (pid !== undefined) await stopPid(pid, { signal: 'SIGINT', timeoutMs: 15_000 });
  }
}

/** The live postmaster's pid from a postmaster.pid file; undefined when none runs. */
export function readPostmasterPid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  let pid: number;
  try {
    pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  } catch {
    return undefined; // removed meanwhile: it stopped
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  // A stale file whose pid was reused by another program is not our postmaster.
  let cmd = '';
  try {
    cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return undefined;
  }
  return cmd.includes('postgres') ? pid : undefined;
}
