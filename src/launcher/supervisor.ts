// The background process behind `ladder up`: starts the nodes of a topology in order
// (Postgres, its replicas, Redis, web servers, HAProxy), reports each as it comes up,
// restarts any that dies with backoff, and on SIGTERM stops them all in reverse order. Its
// state is the state file that `ladder status` prints.
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MIGRATIONS_DIR } from '../app/links-app.ts';
import { migrate } from '../kit/db/migrator.ts';
import { PostgresServer, systemBinDir } from '../kit/db/postgres-server.ts';
import type { Topology } from '../topology/topology.ts';
import { requireBinary } from './binaries.ts';
import { capCpu, capProcessTree, cgroupAvailable, removeGroup } from './cgroup-cpu.ts';
import { exited, spawnLogged, stopChild, waitUntil } from './child.ts';
import { disableServer, drainServer, enableServer, haproxyConfig, haproxySocketPath, serverStates } from './haproxy.ts';
import { CACHE_REDIS, RedisServer } from './redis-server.ts';
import { acquireLock, ensureDir, freePort, loadSecret } from './state-dir.ts';
import { logFile, upDir, writeUpState, type NodeRole, type NodeState, type UpState } from './up-state.ts';

const LADDER_BIN = fileURLToPath(new URL('../../bin/ladder.mjs', import.meta.url));

/** Web servers behind HAProxy wait this long after SIGTERM before closing: two failed
 * health checks at 500 ms, plus a margin, so the balancer has stopped sending them work. */
export const DRAIN_DELAY_MS = 1500;

/** HAProxy server slots, and so the most web servers `ladder scale` can run. */
export const MAX_WEB = 16;

/**
 * The primary's settings for streaming replication, given to the replicas too: a hot
 * standby refuses to start with max_wal_senders (and a few others) below the primary's.
 * 20 senders: every replica streams on one, and a clone (pg_basebackup -X stream) takes two
 * more while it runs. wal_keep_size keeps enough WAL for a replica that was down a while
 * (killed, restarted) to catch up by streaming; one that falls further behind is cloned again.
 */
const REPLICATION_SETTINGS = { wal_level: 'replica', max_wal_senders: 20, wal_keep_size: '512MB', hot_standby: 'on' } as const;

export type Progress =
  | { type: 'node'; node: NodeState }
  | { type: 'note'; message: string }
  | { type: 'ready'; entry: string }
  | { type: 'error'; message: string };

interface Managed {
  info: NodeState;
  start(): Promise<ChildProcess>;
  stop(child: ChildProcess): Promise<void>;
  child?: ChildProcess;
  stopRequested?: boolean;
  recentRestarts: number[];
}

export interface SupervisorOptions {
  topology: Topology;
  /** Where progress goes (the IPC channel to `ladder up`). */
  report: (p: Progress) => void;
}

export class Supervisor {
  private readonly nodes: Managed[] = [];
  private readonly state: UpState;
  private readonly dir: string;
  private stopping = false;
  private release: (() => void) | undefined;
  private postgres: PostgresServer | undefined;
  private secret = '';
  private databaseUrl = '';
  private replicaUrls: string[] = [];
  private redisUrl: string | undefined;
  private cacheRedisUrl: string | undefined;
  private adminSocket = '';
  private readonly groupPrefix: string;
  /** Whether --cpu / --db-cpu can be applied (the cgroup cpu controller is writable). */
  private cpuCapped = false;

  constructor(private readonly opts: SupervisorOptions) {
    const t = opts.topology;
    this.dir = ensureDir(upDir(t.stateDir));
    this.groupPrefix = createHash('sha256').update(path.resolve(this.dir)).digest('hex').slice(0, 8);
    this.state = {
      entry: null,
      rung: t.rung,
      state: 'starting',
      supervisorPid: process.pid,
      startedAt: new Date().toISOString(),
      notes: [],
      nodes: [],
    };
  }

  private save(): void {
    this.state.nodes = this.nodes.map((n) => n.info);
    writeUpState(this.opts.topology.stateDir, this.state);
  }

  private note(message: string): void {
    this.state.notes.push(message);
    this.opts.report({ type: 'note', message });
    this.save();
  }

  private setNode(n: Managed, patch: Partial<NodeState>): void {
    Object.assign(n.info, patch);
    this.save();
    this.opts.report({ type: 'node', node: { ...n.info } });
  }

  async start(): Promise<string> {
    const t = this.opts.topology;
    this.release = acquireLock(this.dir, 'A topology (`ladder up`)');
    this.secret = loadSecret(t.stateDir);
    for (const skipped of t.skipped) this.note(`${skipped} is not built yet: this topology runs without it`);
    if (t.web.cpu !== undefined || t.database.cpu !== undefined) {
      this.cpuCapped = cgroupAvailable();
      if (!this.cpuCapped) this.note(`cannot cap CPU: /sys/fs/cgroup/cpu is not writable here; every node runs uncapped`);
    }
    this.save();

    await this.startPostgres();
    if (t.database.replicas > 0) await this.startReplicas();
    if (t.features.sharedSessions) await this.startRedis();
    if (t.features.cache) await this.startCacheRedis();
    const webs = Array.from({ length: t.web.count }, (_, i) => `web${i + 1}`);
    const ports = await Promise.all(webs.map(() => freePort()));
    const managed = webs.map((name, i) => this.webNode(name, ports[i]!));
    await Promise.all(managed.map((n) => this.launch(n)));
    let entry = managed[0]!.info.url;
    if (t.features.loadBalancer) entry = await this.startHaproxy(managed);
    this.state.entry = entry;
    this.state.state = 'ready';
    this.save();
    return entry;
  }

  private register(info: Omit<NodeState, 'state' | 'pid' | 'restarts'>, start: Managed['start'], stop: Managed['stop']): Managed {
    const n: Managed = { info: { ...info, pid: null, state: 'starting', restarts: 0 }, start, stop, recentRestarts: [] };
    this.nodes.push(n);
    return n;
  }

  /** Starts a node, records its pid, and watches it for an unexpected exit. */
  private async launch(n: Managed): Promise<void> {
    this.setNode(n, { state: n.info.restarts > 0 ? 'restarting' : 'starting' });
    const child = await n.start();
    n.child = child;
    n.stopRequested = false;
    this.setNode(n, { pid: child.pid ?? null, state: 'ready' });
    child.once('exit', (code, signal) => {
      if (this.stopping || n.stopRequested) return;
      this.onCrash(n, `exit ${code ?? signal}`);
    });
  }

  private onCrash(n: Managed, how: string): void {
    const now = Date.now();
    n.recentRestarts = n.recentRestarts.filter((t) => now - t < 30_000);
    // Backoff: at once after a clean exit (a rolling restart), else 250 ms doubling to 5 s.
    const delay = how === 'exit 0' && n.recentRestarts.length === 0 ? 0 : Math.min(5000, 250 * 2 ** n.recentRestarts.length);
    n.recentRestarts.push(now);
    process.stderr.write(`${new Date().toISOString()} ${n.info.name} ${how}; restarting in ${delay} ms\n`);
    this.setNode(n, { state: 'restarting', pid: null, restarts: n.info.restarts + 1 });
    setTimeout(() => {
      if (this.stopping) return;
      this.launch(n).catch((err: unknown) => {
        process.stderr.write(`${n.info.name} restart failed: ${(err as Error).message}\n`);
        if (!this.stopping) this.onCrash(n, 'failed restart');
      });
    }, delay).unref();
  }

  private async startPostgres(): Promise<void> {
    const t = this.opts.topology;
    const port = await freePort();
    const dir = ensureDir(path.join(this.dir, 'postgres'));
    const withReplicas = t.database.replicas > 0;
    // Replicas need pg_basebackup, which the embedded engine does not ship: from rung 4 the
    // machine's PostgreSQL 15 runs every database node (same major, same data folder format).
    const pgServer = new PostgresServer({
      dataDir: path.join(dir, 'pgdata'),
      port,
      logFile: logFile(t.stateDir, 'postgres'),
      ...(withReplicas ? { binDir: systemBinDir(), settings: REPLICATION_SETTINGS } : {}),
    });
    this.postgres = pgServer;
    mkdirSync(path.dirname(logFile(t.stateDir, 'postgres')), { recursive: true });
    let first = true;
    const n = this.register(
      { name: 'postgres', role: 'postgres', port, url: `postgres://127.0.0.1:${port}/links`, ...this.dbCpuInfo() },
      async () => {
        await pgServer.start();
        this.capDatabase('postgres', pgServer);
        if (first) {
          first = false;
          this.databaseUrl = await pgServer.ensureDatabase('links');
          await migrate(this.databaseUrl, MIGRATIONS_DIR);
        }
        return pgServer.process!;
      },
      async () => {
        await pgServer.stop();
        removeGroup(`${this.groupPrefix}-postgres`);
      },
    );
    await this.launch(n);
  }

  /**
   * Streaming replicas of the primary (rung 4), cloned afresh on every `up` so that they
   * match the primary whatever happened to it between runs. A replica that dies is started
   * again on its own data (crash recovery, then it resumes streaming); one that fails to
   * start three times in a row is cloned again.
   */
  private async startReplicas(): Promise<void> {
    const t = this.opts.topology;
    const primary = this.postgres!;
    const nodes: Managed[] = [];
    for (let i = 1; i <= t.database.replicas; i++) {
      const name = `replica${i}`;
      const port = await freePort();
      const server = new PostgresServer({
        dataDir: path.join(ensureDir(path.join(this.dir, name)), 'pgdata'),
        port,
        binDir: systemBinDir(),
        logFile: logFile(t.stateDir, name),
        settings: REPLICATION_SETTINGS,
        replicaOf: {
          host: primary.connection.host,
          port: primary.connection.port,
          user: primary.connection.user,
          password: primary.connection.password,
          name,
          ...(t.database.replicaDelayMs > 0 ? { applyDelayMs: t.database.replicaDelayMs } : {}),
        },
      });
      let fresh = true;
      let failures = 0;
      const n = this.register(
        { name, role: 'postgres-replica', port, url: `postgres://127.0.0.1:${port}/links`, ...this.dbCpuInfo() },
        async () => {
          if (fresh || failures >= 3) {
            await server.stop();
            server.removeData();
          }
          try {
            await server.start();
          } catch (err) {
            failures++;
            throw err;
          }
          fresh = false;
          failures = 0;
          this.capDatabase(name, server);
          return server.process!;
        },
        async () => {
          await server.stop();
          removeGroup(`${this.groupPrefix}-${name}`);
        },
      );
      this.replicaUrls.push(server.url('links'));
      nodes.push(n);
    }
    // Cloned and started together: each clone takes two of the primary's WAL senders meanwhile.
    await Promise.all(nodes.map((n) => this.launch(n)));
  }

  private dbCpuInfo(): { cpu?: number } {
    const cpu = this.opts.topology.database.cpu;
    return cpu !== undefined && this.cpuCapped ? { cpu } : {};
  }

  /** --db-cpu: the server and the processes it has forked so far; later ones inherit the group. */
  private capDatabase(name: string, server: PostgresServer): void {
    const cpu = this.opts.topology.database.cpu;
    if (cpu === undefined || !this.cpuCapped || !server.pid) return;
    try {
      capProcessTree(`${this.groupPrefix}-${name}`, server.pid, cpu);
    } catch (err) {
      this.note(`could not cap ${name} at ${cpu} core: ${(err as Error).message}`);
    }
  }

  private async startRedis(): Promise<void> {
    const port = await freePort();
    const redis = new RedisServer({ dir: ensureDir(path.join(this.dir, 'redis')), port });
    this.redisUrl = redis.url;
    const n = this.register(
      { name: 'redis', role: 'redis', port, url: redis.url },
      () => redis.start(),
      () => redis.stop(),
    );
    await this.launch(n);
  }

  /** Rung 5: a Redis of its own for the cache (evicts by LRU; sessions never share it). */
  private async startCacheRedis(): Promise<void> {
    const port = await freePort();
    const redis = new RedisServer({ dir: ensureDir(path.join(this.dir, 'cache')), port, ...CACHE_REDIS });
    this.cacheRedisUrl = redis.url;
    const n = this.register(
      { name: 'cache', role: 'redis', port, url: redis.url },
      () => redis.start(),
      () => redis.stop(),
    );
    await this.launch(n);
  }

  private webNode(name: string, port: number): Managed {
    const t = this.opts.topology;
    const url = `http://127.0.0.1:${port}`;
    const group = `${this.groupPrefix}-${name}`;
    return this.register(
      { name, role: 'web', port, url, ...(t.web.cpu !== undefined && this.cpuCapped ? { cpu: t.web.cpu } : {}) },
      async () => {
        const env: NodeJS.ProcessEnv = {
          ...process.env,
          DATABASE_URL: this.databaseUrl,
          PORT: String(port),
          HOST: '127.0.0.1',
          LADDER_SECRET: this.secret,
          LADDER_NODE: name,
          LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
        };
        if (t.features.loadBalancer) {
          env.TRUST_PROXY = '1';
          env.DRAIN_DELAY_MS = String(DRAIN_DELAY_MS);
        }
        if (this.redisUrl) env.REDIS_URL = this.redisUrl;
        else delete env.REDIS_URL;
        if (this.cacheRedisUrl) env.CACHE_REDIS_URL = this.cacheRedisUrl;
        else delete env.CACHE_REDIS_URL;
        if (this.replicaUrls.length > 0) env.DATABASE_REPLICA_URLS = this.replicaUrls.join(',');
        else delete env.DATABASE_REPLICA_URLS;
        const child = spawnLogged(process.execPath, [LADDER_BIN, '__web'], { logFile: logFile(t.stateDir, name), env });
        if (t.web.cpu !== undefined && this.cpuCapped && child.pid) {
          try {
            capCpu(group, child.pid, t.web.cpu);
          } catch (err) {
            this.note(`could not cap ${name} at ${t.web.cpu} core: ${(err as Error).message}`);
          }
        }
        await waitUntil(() => httpOk(`${url}/readyz`), 60_000, name, () =>
          child.exitCode !== null ? `exited (${child.exitCode}); see ${logFile(t.stateDir, name)}` : undefined,
        );
        return child;
      },
      async (child) => {
        await stopChild(child, 'SIGTERM', 15_000);
        removeGroup(group);
      },
    );
  }

  private async startHaproxy(webs: Managed[]): Promise<string> {
    const t = this.opts.topology;
    const bin = requireBinary('haproxy');
    const dir = ensureDir(path.join(this.dir, 'haproxy'));
    const port = t.web.port === 0 ? await freePort() : t.web.port;
    // Absolute: HAProxy reads a relative `stats socket` path as host:port.
    this.adminSocket = haproxySocketPath(dir);
    const cfgFile = path.join(dir, 'haproxy.cfg');
    writeFileSync(
      cfgFile,
      haproxyConfig({
        bindHost: t.web.host,
        bindPort: port,
        adminSocket: this.adminSocket,
        servers: webs.map((w) => ({ name: w.info.name, host: '127.0.0.1', port: w.info.port })),
        slots: MAX_WEB,
        balance: t.balance,
        sticky: !t.features.sharedSessions,
      }),
    );
    const url = `http://${t.web.host}:${port}`;
    const names = webs.map((w) => w.info.name);
    const n = this.register(
      { name: 'haproxy', role: 'haproxy', port, url },
      async () => {
        haproxySocketPath(dir); // (re)makes its folder when it lives outside `dir`
        const child = spawnLogged(bin, ['-db', '-f', cfgFile], { logFile: logFile(t.stateDir, 'haproxy') });
        // Ready once it answers and has seen every web server pass a health check.
        await waitUntil(
          async () => {
            if (!(await httpOk(`${url}/healthz`))) return false;
            const states = await serverStates(this.adminSocket).catch((): Record<string, string> => ({}));
            return names.every((s) => states[s] === 'UP');
          },
          30_000,
          'haproxy',
          () => (child.exitCode !== null ? `exited (${child.exitCode}); see ${logFile(t.stateDir, 'haproxy')}` : undefined),
        );
        return child;
      },
      async (child) => {
        await stopChild(child, 'SIGUSR1', 10_000); // SIGUSR1: soft stop, finishes open requests
        // HAProxy leaves its socket behind; when it lives outside the state folder, so does
        // the folder haproxySocketPath made for it.
        if (!this.adminSocket.startsWith(`${path.resolve(dir)}${path.sep}`)) {
          rmSync(path.dirname(this.adminSocket), { recursive: true, force: true });
        }
      },
    );
    await this.launch(n);
    return url;
  }

  /** Adds or removes web servers at runtime; HAProxy learns through its runtime API (no reload). */
  async scale(count: number): Promise<void> {
    const t = this.opts.topology;
    if (t.features.loadBalancer && count > MAX_WEB) throw new Error(`at most ${MAX_WEB} web servers behind HAProxy`);
    const webs = this.nodes.filter((n) => n.info.role === 'web');
    if (count > webs.length) {
      for (let i = webs.length + 1; i <= count; i++) {
        const n = this.webNode(`web${i}`, await freePort());
        await this.launch(n);
        if (t.features.loadBalancer) await enableServer(this.adminSocket, { name: n.info.name, host: '127.0.0.1', port: n.info.port });
      }
    } else {
      for (const n of webs.slice(count).reverse()) {
        n.stopRequested = true;
        this.setNode(n, { state: 'stopping' });
        // Drain first: the balancer stops sending new requests, then the server finishes its own.
        if (t.features.loadBalancer) await drainServer(this.adminSocket, n.info.name);
        if (n.child) await n.stop(n.child);
        if (t.features.loadBalancer) await disableServer(this.adminSocket, n.info.name);
        this.nodes.splice(this.nodes.indexOf(n), 1);
        this.save();
      }
    }
  }

  /** Stops everything in reverse start order (balancer first, database last). */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.state.state = 'stopping';
    this.save();
    const byRole = (role: NodeRole) => this.nodes.filter((n) => n.info.role === role);
    for (const group of [byRole('haproxy'), byRole('web'), byRole('redis'), byRole('postgres-replica'), byRole('postgres')]) {
      await Promise.all(
        group.map(async (n) => {
          this.setNode(n, { state: 'stopping' });
          if (n.child) await n.stop(n.child).catch(() => undefined);
          if (n.child) await exited(n.child);
          this.setNode(n, { state: 'stopped', pid: null });
        }),
      );
    }
    this.state.state = 'stopped';
    this.save();
    this.release?.();
  }
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}
