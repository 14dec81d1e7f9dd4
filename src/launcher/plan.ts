// Which components a topology runs, and how they are wired to each other (the web servers'
// DATABASE_URL, replica URLs, Redis URLs; the balancer's servers). The one place that turns
// a topology into programs: a later rung adds its component here.
import { createHmac } from 'node:crypto';
import path from 'node:path';
import type { Topology } from '../topology/topology.ts';
import type { Component, ComponentContext } from './component.ts';
import { AlertmanagerComponent } from './components/alertmanager.ts';
import { BackgroundComponent } from './components/background.ts';
import { HaproxyComponent, httpUrl } from './components/haproxy.ts';
import { PrometheusComponent } from './components/prometheus.ts';
import { PostgresComponent, REPLICATION_SETTINGS } from './components/postgres.ts';
import { RedisComponent } from './components/redis.ts';
import { SentinelComponent, SESSIONS_MASTER } from './components/sentinel.ts';
import { ReplicaComponent } from './components/replica.ts';
import { VarnishComponent } from './components/varnish.ts';
import { WebComponent } from './components/web.ts';
import { DashboardServer } from './dashboard/dashboard-server.ts';
import { postgresExporter, redisExporter, varnishExporter } from './monitoring/exporters.ts';
import { PgbouncerComponent } from './components/pgbouncer.ts';
import { planHa } from './ha-plan.ts';
import { planShards } from './shard-plan.ts';
import { runAsAccount, systemBinDir } from './postgres-server.ts';
import { BROKER_REDIS, CACHE_REDIS } from './redis-server.ts';
import { ensureDir, freePort, loadSecret } from './state-dir.ts';
import { logFile } from './up-state.ts';

/** Web servers behind HAProxy wait this long after SIGTERM before closing: two failed
 * health checks at 500 ms, plus a margin, so the balancer has stopped sending them work. */
export const DRAIN_DELAY_MS = 1500;

/** Connections of max_connections PgBouncer leaves to others (3 reserved for the superuser, migrations, psql). */
export const PGBOUNCER_HEADROOM = 10;

/** The address HAProxy connects to the web servers from: the one hop they trust X-Forwarded-* from. */
export const BALANCER_ADDRESS = '127.0.0.1';

export interface Plan {
  /** Every component, in no particular order (the supervisor orders them by role). */
  components: Component[];
  /** Where users connect: the balancer, else the first web server. */
  entry: string;
  /** A new web server wired like the others (`ladder scale`). */
  newWeb(name: string): Promise<Component>;
  /** Rung 10: a new shard cluster's nodes, primary first (`ladder reshard --to` more clusters). */
  newCluster?: (name: string) => Promise<Component[]>;
  /** The monitoring dashboard, when the topology is monitored: served by the supervisor. */
  dashboard?: DashboardServer;
}

export async function planTopology(t: Readonly<Topology>, ctx: ComponentContext): Promise<Plan> {
  const components: Component[] = [];
  const dir = (name: string) => ensureDir(path.join(ctx.dir, name));
  const dbCpu = ctx.cpuCapped ? t.database.cpu : undefined;
  const webCpu = ctx.cpuCapped ? t.web.cpu : undefined;

  // --ha: etcd and Patroni nodes instead of a fixed primary and its replicas (ha-plan.ts).
  const ha = t.ha.enabled ? await planHa(t, ctx) : undefined;
  let dbEnv: Record<string, string | undefined>;
  let newCluster: Plan['newCluster'];
  /** The Postgres nodes of a topology without --ha (their exporters, when monitored). */
  const pgNodes: (PostgresComponent | ReplicaComponent)[] = [];
  if (ha) {
    components.push(...ha.components);
    dbEnv = ha.env;
  } else if (t.features.shards) {
    // Rung 10: the catalog and the shard clusters (shard-plan.ts).
    const shards = await planShards(t, ctx, dbCpu);
    components.push(...shards.components);
    pgNodes.push(...shards.pgNodes);
    dbEnv = shards.env;
    newCluster = shards.newCluster;
  } else {
    // Replicas need pg_basebackup, which the embedded engine does not ship: with replicas the
    // machine's PostgreSQL 15 runs every database node (same major, same data folder format).
    const withReplicas = t.database.replicas > 0;
    const maxConnections = { max_connections: t.database.maxConnections };
    const postgres = new PostgresComponent(ctx, {
      dataDir: path.join(dir('postgres'), 'pgdata'),
      port: await freePort(),
      logFile: logFile(t.stateDir, 'postgres'),
      settings: withReplicas ? { ...REPLICATION_SETTINGS, ...maxConnections } : maxConnections,
      ...(withReplicas ? { binDir: systemBinDir() } : {}),
      ...(dbCpu !== undefined ? { cpu: dbCpu } : {}),
    });
    components.push(postgres);

    const replicas: ReplicaComponent[] = [];
    for (let i = 1; i <= t.database.replicas; i++) {
      const name = `replica${i}`;
      replicas.push(
        new ReplicaComponent(ctx, {
          name,
          port: await freePort(),
          dataDir: path.join(dir(name), 'pgdata'),
          logFile: logFile(t.stateDir, name),
          primary: postgres,
          ...(t.database.replicaDelayMs > 0 ? { applyDelayMs: t.database.replicaDelayMs } : {}),
          ...(dbCpu !== undefined ? { cpu: dbCpu } : {}),
        }),
      );
    }
    components.push(...replicas);
    pgNodes.push(postgres, ...replicas);
    // PgBouncer in front of the primary (pgbouncer.ts): the web servers' DATABASE_URL, and
    // unnamed statements, which transaction pooling can carry.
    const bouncer = t.pgbouncer
      ? new PgbouncerComponent({
          port: await freePort(),
          dir: dir('pgbouncer'),
          logFile: logFile(t.stateDir, 'pgbouncer'),
          server: postgres.server.connection,
          // Room left for the superuser's reserved slots, migrations and an operator's psql.
          poolSize: Math.max(5, t.database.maxConnections - PGBOUNCER_HEADROOM),
          runAs: runAsAccount(),
        })
      : undefined;
    if (bouncer) {
      components.push(bouncer);
      ctx.note(`PgBouncer (transaction mode) between the web servers and the primary: ${t.web.count} web servers share ${Math.max(5, t.database.maxConnections - PGBOUNCER_HEADROOM)} server connections (max_connections ${t.database.maxConnections})`);
    }
    dbEnv = {
      DATABASE_URL: bouncer?.databaseUrl ?? postgres.databaseUrl,
      DATABASE_STATEMENTS: bouncer ? 'unnamed' : undefined,
      DATABASE_REPLICA_URLS: replicas.length > 0 ? replicas.map((r) => r.databaseUrl).join(',') : undefined,
    };
  }

  // Sessions and rate limits shared by every web server (rung 7). With --ha: a replica and
  // three sentinels that fail over to it (components/sentinel.ts).
  const sentinels = t.ha.enabled && t.features.sharedSessions;
  const redisPort = await freePort();
  const replicaPort = sentinels ? await freePort() : undefined;
  const redis = t.features.sharedSessions
    ? new RedisComponent({
        name: 'redis',
        port: redisPort,
        dir: dir('redis'),
        logFile: logFile(t.stateDir, 'redis'),
        ...(replicaPort !== undefined ? { sentinelPeerPort: replicaPort } : {}),
      })
    : undefined;
  const sentinelNodes: SentinelComponent[] = [];
  if (redis && replicaPort !== undefined) {
    components.push(
      new RedisComponent({
        name: 'redis-replica',
        role: 'redis-replica',
        port: replicaPort,
        dir: dir('redis-replica'),
        logFile: logFile(t.stateDir, 'redis-replica'),
        replicaOfPort: redisPort,
        sentinelPeerPort: redisPort,
      }),
    );
    for (let i = 1; i <= 3; i++) {
      const name = `sentinel${i}`;
      sentinelNodes.push(new SentinelComponent(name, await freePort(), dir(name), logFile(t.stateDir, name), redisPort));
    }
    components.push(...sentinelNodes);
  }
  // The cache tier's own Redis (rung 5): evicts by LRU; sessions never share it.
  const cache = t.features.cache
    ? new RedisComponent({ name: 'cache', port: await freePort(), dir: dir('cache'), logFile: logFile(t.stateDir, 'cache'), ...CACHE_REDIS })
    : undefined;
  // Rung 9: the broker, a Redis of its own that persists what it holds (AOF, fsync every second).
  const broker = t.features.queue
    ? new RedisComponent({ name: 'queue', role: 'queue', port: await freePort(), dir: dir('queue'), logFile: logFile(t.stateDir, 'queue'), ...BROKER_REDIS })
    : undefined;
  for (const c of [redis, cache, broker]) if (c) components.push(c);
  // Where each web server appends its clicks before answering 302, and the relay reads them.
  const clickLogDir = broker ? path.resolve(dir('clicklog')) : undefined;

  // From rung 6 the edge takes the entry's port and HAProxy moves behind it.
  const withEdge = t.features.cdn && t.features.loadBalancer;
  const entryPort = t.web.port === 0 ? await freePort() : t.web.port;
  const balancerPort = t.features.loadBalancer ? (withEdge ? await freePort() : entryPort) : undefined;
  const edgeUrl = withEdge ? httpUrl(t.web.host, entryPort) : undefined;
  const balancerUrl = balancerPort !== undefined ? (edgeUrl ?? httpUrl(t.web.host, balancerPort)) : undefined;
  // Short URLs name the entry the users reach, whatever Host a client sends. An unspecified
  // bind address (0.0.0.0) names no host a user can reach, so there the web servers keep
  // deriving it from the request.
  const publicUrl = balancerUrl !== undefined && !/^(0\.0\.0\.0|::|\[::\])$/.test(t.web.host) ? balancerUrl : undefined;
  if (balancerUrl !== undefined && publicUrl === undefined) {
    ctx.note(`HAProxy listens on ${t.web.host}, which is no address to link to: set PUBLIC_URL for the web servers' short URLs`);
  }

  const secret = loadSecret(t.stateDir);
  // The web servers purge the edge by surrogate key after a write; only they know the token.
  const purgeToken = withEdge ? createHmac('sha256', secret).update('edge-purge').digest('base64url') : undefined;
  const webEnv: Record<string, string | undefined> = {
    ...dbEnv,
    LADDER_SECRET: secret,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
    REDIS_URL: redis?.url,
    REDIS_SENTINELS: sentinelNodes.length > 0 ? sentinelNodes.map((n) => `127.0.0.1:${n.port}`).join(',') : undefined,
    REDIS_SENTINEL_NAME: sentinelNodes.length > 0 ? SESSIONS_MASTER : undefined,
    CACHE_REDIS_URL: cache?.url,
    // Behind the balancer: trust X-Forwarded-* from its address only (it sets them itself,
    // see haproxy.ts), and drain before closing so it can take a stopping server out first.
    TRUST_PROXY: balancerUrl !== undefined ? BALANCER_ADDRESS : undefined,
    DRAIN_DELAY_MS: balancerUrl !== undefined ? String(DRAIN_DELAY_MS) : undefined,
    PUBLIC_URL: publicUrl ?? process.env.PUBLIC_URL,
    // Every deploy's hashed assets, kept across runs: a page from a new server names files an old one serves too.
    ASSET_ARCHIVE_DIR: path.join(path.resolve(t.stateDir), 'assets'),
    EDGE_PAGE_TTL_S: withEdge ? process.env.EDGE_PAGE_TTL_S : undefined,
    EDGE_PURGE_URL: withEdge ? httpUrl('127.0.0.1', entryPort) : undefined,
    EDGE_PURGE_TOKEN: purgeToken,
    CLICK_LOG_DIR: clickLogDir,
    LADDER_OUTBOX: broker ? '1' : undefined,
  };
  const newWeb = async (name: string): Promise<Component> =>
    new WebComponent(ctx, {
      name,
      port: await freePort(),
      logFile: logFile(t.stateDir, name),
      env: webEnv,
      ...(webCpu !== undefined ? { cpu: webCpu } : {}),
    });
  const webs = await Promise.all(Array.from({ length: t.web.count }, (_, i) => newWeb(`web${i + 1}`)));
  components.push(...webs);

  if (broker && clickLogDir) {
    // The primary as the web servers reach it (through PgBouncer when it runs: unnamed statements then).
    const queueEnv = { DATABASE_URL: dbEnv.DATABASE_URL, DATABASE_STATEMENTS: dbEnv.DATABASE_STATEMENTS, QUEUE_URL: broker.url, LOG_LEVEL: webEnv.LOG_LEVEL };
    components.push(
      new BackgroundComponent({
        name: 'relay',
        role: 'relay',
        port: await freePort(),
        logFile: logFile(t.stateDir, 'relay'),
        env: { ...queueEnv, CLICK_LOG_DIR: clickLogDir, RELAY_STATE_DIR: path.resolve(dir('relay')) },
      }),
    );
    for (let i = 1; i <= t.workers; i++) {
      const name = `worker${i}`;
      components.push(new BackgroundComponent({ name, role: 'worker', port: await freePort(), logFile: logFile(t.stateDir, name), env: queueEnv }));
    }
  }

  // Monitoring: every program without metrics of its own gets its exporter (a sidecar the
  // supervisor runs with the node); the others are scraped where they serve /metrics.
  const monitored = t.features.monitoring;
  if (monitored) {
    // Patroni nodes (--ha) get none yet: their Postgres is reached through the leader's API.
    for (const n of pgNodes) n.metrics = postgresExporter(n.databaseUrl, await freePort(), logFile(t.stateDir, `${n.name}-exporter`));
    for (const c of [redis, cache, broker]) if (c) c.metrics = redisExporter(c.port, await freePort(), logFile(t.stateDir, `${c.name}-exporter`));
  }

  if (balancerPort !== undefined) {
    components.push(
      new HaproxyComponent({
        dir: dir('haproxy'),
        host: withEdge ? '127.0.0.1' : t.web.host, // behind the edge: loopback only
        port: balancerPort,
        logFile: logFile(t.stateDir, 'haproxy'),
        webs,
        balance: t.balance,
        sticky: !t.features.sharedSessions,
        ...(monitored ? { metricsPort: await freePort() } : {}),
        ...(withEdge ? { edge: '127.0.0.1' } : {}),
        // Rung 9 counts each request key once: a retried redirect's click is not counted twice.
        requestKeys: broker !== undefined,
      }),
    );
  }
  if (withEdge && balancerPort !== undefined) {
    const edge = new VarnishComponent({
      upDir: ctx.dir,
      host: t.web.host,
      port: entryPort,
      adminPort: await freePort(),
      logFile: logFile(t.stateDir, 'edge'),
      origin: { host: '127.0.0.1', port: balancerPort },
      purgeToken: purgeToken!,
    });
    if (monitored) edge.metrics = varnishExporter(edge.workDir, await freePort(), logFile(t.stateDir, 'edge-exporter'));
    components.push(edge);
  }
  if (!monitored) return { components, entry: balancerUrl ?? webs[0]!.url, newWeb, ...(newCluster ? { newCluster } : {}) };

  const alertmanager = new AlertmanagerComponent({ dir: dir('alertmanager'), port: await freePort(), logFile: logFile(t.stateDir, 'alertmanager') });
  const prometheus = new PrometheusComponent({
    dir: dir('prometheus'),
    port: await freePort(),
    logFile: logFile(t.stateDir, 'prometheus'),
    alertmanagerPort: alertmanager.port,
    webCpuLimit: webCpu ?? 1,
  });
  components.push(alertmanager, prometheus);
  // On loopback whatever --host says: it shows the whole system, and is never behind the public entry.
  const dashboard = new DashboardServer({ port: await freePort(), prometheusUrl: prometheus.url, alertmanagerUrl: alertmanager.url });
  return { components, entry: balancerUrl ?? webs[0]!.url, newWeb, dashboard, ...(newCluster ? { newCluster } : {}) };
}
