// The composition root: assembles one web process from the Links app and the kit
// (metrics, database, queue, session and rate-limit stores, cache tier, the kit's plugins
// around the app), then listens. The only module that imports both app and kit
// implementations; the launcher starts it by command (`ladder __web`, web-main.ts).
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { cacheFilters, clickConsumer, linksApp, notFoundPage } from '../app/links-app.ts';
import { redirectFastPath } from '../app/routes/redirect.ts';
import { CACHE_DEFAULTS } from '../kit/cache/cache-defaults.ts';
import { TwoTierCache } from '../kit/cache/two-tier-cache.ts';
import type { ServerConfig } from '../kit/config.ts';
import { LeaderTracker } from '../kit/db/leader-tracker.ts';
import { PgDatabase } from '../kit/db/pg-database.ts';
import { useUnnamedStatements } from '../kit/db/prepared.ts';
import { ReplicaRouter } from '../kit/db/replica-router.ts';
import { ShardRouter } from '../kit/db/shard-router.ts';
import { listenForMapChanges, loadClusters, loadShardMap, reportSeen, shardMapVersion, type ClusterEntry, type Queryable } from '../kit/db/shard-map.ts';
import type { Database } from '../kit/db/database.ts';
import { sweepOwnerIndex } from '../app/domain/owner-index.ts';
import { buildServer, shutdown } from '../kit/http/server.ts';
import { createMetrics, type Metrics } from '../kit/metrics/metrics.ts';
import { ClickLogQueue } from '../kit/queue/click-log.ts';
import { NO_OUTBOX, PG_OUTBOX } from '../kit/queue/outbox.ts';
import { InProcessQueue, type ManagedQueue } from '../kit/queue/queue.ts';
import { createRedisConnection, type RedisConnection, type RedisLog } from '../kit/redis/redis-connection.ts';
import { MemoryRateLimitStore, type RateLimitStore } from '../kit/security/rate-limiter.ts';
import { RedisRateLimitStore } from '../kit/security/redis-rate-limit-store.ts';
import { RedisSessionStore } from '../kit/session/redis-session-store.ts';
import { MemorySessionStore, type SessionStore } from '../kit/session/session-store.ts';

/**
 * --ha: how often each web server asks every Patroni node who leads, and how old an answer
 * may be and still count. A failover is noticed within about a poll (the new leader answers
 * 200), a dead leader at once (refused), a frozen one within LEADER_FRESH_MS.
 */
const LEADER_POLL_MS = 200;
const LEADER_FRESH_MS = 1000;

/**
 * Links per click-count statement: 1-2 ms of a Postgres core each. A flush is chunks with
 * pauses between them; 500 a chunk held the core the redirects share with Postgres long
 * enough to double their p99 at a fixed rate (8-9 ms against 5-7 at 100; issue 12).
 */
const CLICK_FLUSH_BATCH = 100;

export interface WebProcess {
  fastify: FastifyInstance;
  /** The URL it serves on (after listen). */
  url: string;
  stop(): Promise<void>;
}

export async function createWebServer(config: Readonly<ServerConfig>, databaseUrl: string): Promise<FastifyInstance> {
  const metrics = createMetrics();
  // The logger exists once the server is built; flush failures before that cannot happen.
  const logger: { current?: FastifyInstance['log'] } = {};
  const log = {
    warn: (obj: object, msg: string) => logger.current?.warn(obj, msg),
    info: (obj: object, msg: string) => logger.current?.info(obj, msg),
  };
  const { replicas } = config;
  useUnnamedStatements(config.statements === 'unnamed');
  // --ha: every database node is Patroni's; the leader is found through its REST API.
  const leader =
    replicas.patroniUrls.length > 0
      ? new LeaderTracker({
          nodes: replicas.urls.map((dbUrl, i) => ({ name: `pg${i + 1}`, apiUrl: replicas.patroniUrls[i]!, dbUrl })),
          pollMs: LEADER_POLL_MS,
          freshMs: LEADER_FRESH_MS,
          log,
        })
      : undefined;
  // With replicas (rung 4) the router takes plain reads to them; the app does not know.
  const router =
    replicas.urls.length > 0
      ? new ReplicaRouter({
          ...(leader ? { leader } : {}),
          primaryUrl: databaseUrl,
          replicaUrls: replicas.urls,
          metrics,
          pollMs: replicas.pollMs,
          maxLagMs: replicas.maxLagMs,
          readTimeoutMs: replicas.readTimeoutMs,
          ...(config.poolMax !== undefined ? { poolSize: config.poolMax } : {}),
          log,
        })
      : undefined;
  // Rung 10: DATABASE_URL is the catalog (users, the shard map); links live on the shards.
  const shards = config.shards.length > 0 ? shardRouter(config, databaseUrl, metrics, log) : undefined;
  const database = shards ?? router ?? new PgDatabase({ url: databaseUrl, metrics, log, ...(config.poolMax !== undefined ? { max: config.poolMax } : {}) });
  // Rung 9: each click goes to this process's append-only log before the 302 (durable
  // capture, shipped by the relay); below it, to the in-process buffer flushed every second.
  const queue: ManagedQueue = config.clickLogDir
    ? new ClickLogQueue({ dir: config.clickLogDir, node: clickLogNode() })
    : inProcessClicks(config, database, metrics, logger);
  const state = stateStores(config, metrics, log);
  // Rung 5: the cache tier, with its own Redis; the codes filter is built from the links.
  const cache = config.cacheRedisUrl
    ? new TwoTierCache({
        url: config.cacheRedisUrl,
        database,
        metrics,
        log,
        l1Bytes: config.cacheL1Bytes,
        l1TtlMs: config.cacheL1TtlMs,
        filters: cacheFilters,
        tombstoneMs: Math.max(CACHE_DEFAULTS.tombstoneMs, 2 * config.replicas.maxLagMs),
      })
    : undefined;
  const fastify = await buildServer({
    config,
    database,
    metrics,
    queue,
    outbox: config.outbox ? PG_OUTBOX : NO_OUTBOX,
    sessionStore: state.sessionStore,
    rateLimitStore: state.rateLimitStore,
    ...(state.redis ? { stateRedis: state.redis } : {}),
    ...(cache ? { cache } : {}),
    fastPath: redirectFastPath,
    notFoundPage,
    app: linksApp,
  });
  logger.current = fastify.log;
  if (shards) sweepOwnerIndexes(fastify, shards);
  // Each plugin starts what it owns (Redis, replica polling, the cache tier, the click
  // queue) when the server gets ready, in the order they were registered.
  await fastify.ready();
  return fastify;
}

/** How often each web server sweeps the shards' outboxes for owner-index events a request left unapplied. */
const OWNER_INDEX_SWEEP_MS = 1000;

function shardRouter(config: Readonly<ServerConfig>, catalogUrl: string, metrics: Metrics, log: { warn: (o: object, m: string) => void; info: (o: object, m: string) => void }): ShardRouter {
  const poolMax = config.poolMax !== undefined ? { max: config.poolMax } : {};
  const directory = new PgDatabase({ url: catalogUrl, shard: 'catalog', metrics, log, ...poolMax });
  const open = (c: ClusterEntry): Database =>
    c.replicas.length > 0
      ? new ReplicaRouter({
          shard: c.name,
          primaryUrl: c.primary,
          replicaUrls: c.replicas,
          metrics,
          pollMs: config.replicas.pollMs,
          maxLagMs: config.replicas.maxLagMs,
          readTimeoutMs: config.replicas.readTimeoutMs,
          ...(config.poolMax !== undefined ? { poolSize: config.poolMax } : {}),
          log,
        })
      : new PgDatabase({ url: c.primary, shard: c.name, metrics, log, ...poolMax });
  const clusters = new Map<string, Database>(config.shards.map((s) => [s.name, open({ name: s.name, primary: s.primaryUrl, replicas: s.replicaUrls })]));
  const catalog: Queryable = { query: async (sql: string, params?: unknown[]) => ({ rows: await directory.write(sql, params) }) };
  return new ShardRouter({
    directory,
    clusters,
    loadVersion: () => shardMapVersion(catalog),
    loadMap: () => loadShardMap(catalog),
    loadClusters: () => loadClusters(catalog),
    openCluster: open,
    reportSeen: (process, version) => reportSeen(catalog, process, version),
    listen: (onChange) => listenForMapChanges(catalogUrl, onChange, log),
    log,
  });
}

/** Rung 10: the outbox sweep of owner-index events (app/domain/owner-index.ts), on every shard. */
function sweepOwnerIndexes(fastify: FastifyInstance, shards: ShardRouter): void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void Promise.all(
      shards.clusterDatabases().map((shard) =>
        sweepOwnerIndex(shards, shard).catch((err: unknown) => fastify.log.warn({ err }, 'owner index sweep failed; retried next time')),
      ),
    ).finally(() => (running = false));
  }, OWNER_INDEX_SWEEP_MS);
  timer.unref();
  fastify.addHook('onClose', async () => clearInterval(timer));
}

function inProcessClicks(
  config: Readonly<ServerConfig>,
  database: Database,
  metrics: Metrics,
  logger: { current?: FastifyInstance['log'] },
): InProcessQueue {
  const queue = new InProcessQueue({
    flushIntervalMs: config.clickFlushMs,
    // A flush of thousands of links was one statement of 100 ms or more on the database's
    // core: the redirects' latency tail at a fixed rate (docs/performance.md).
    maxBatch: CLICK_FLUSH_BATCH,
    onFlush: (_t, n) => metrics.clicksFlushed.inc(n),
    onError: (topic, err) => {
      metrics.clickFlushFailures.inc();
      logger.current?.warn({ err, topic }, 'click flush failed; kept for the next flush');
    },
  });
  queue.consume('click', clickConsumer(database));
  metrics.countBufferedWith(() => queue.size);
  return queue;
}

/**
 * The click log's producer name: this node's (web1, ...), made safe for a file name; without
 * one (a container), `web-` and random hex, so two servers never share a producer id.
 */
function clickLogNode(): string {
  const given = process.env.LADDER_NODE;
  if (!given) return `web-${randomBytes(4).toString('hex')}`;
  const node = given.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 30);
  return /^[a-z]/.test(node) ? node : `w${node.slice(0, 29)}`;
}

/**
 * Where sessions and rate limits live: in Redis when REDIS_URL is set (rung 7, shared by
 * every web server), else in this process.
 */
function stateStores(
  config: Readonly<ServerConfig>,
  metrics: Metrics,
  log: RedisLog,
): { sessionStore: SessionStore; rateLimitStore: RateLimitStore; redis: RedisConnection | undefined } {
  if (!config.redisUrl) {
    return { sessionStore: new MemorySessionStore(), rateLimitStore: new MemoryRateLimitStore(), redis: undefined };
  }
  metrics.redisUp.set({ role: 'state' }, 0);
  const redis = createRedisConnection({
    url: config.redisUrl,
    ...(config.redisSentinels.length > 0 ? { sentinels: config.redisSentinels, sentinelName: config.redisSentinelName } : {}),
    role: 'state',
    log,
    onStateChange: (up) => metrics.redisUp.set({ role: 'state' }, up ? 1 : 0),
  });
  return {
    sessionStore: new RedisSessionStore(redis.client),
    rateLimitStore: new RedisRateLimitStore(redis.client, { onFallback: () => metrics.rateLimitFallbacks.inc() }),
    redis,
  };
}

export async function startWebProcess(config: Readonly<ServerConfig>, databaseUrl: string): Promise<WebProcess> {
  const fastify = await createWebServer(config, databaseUrl);
  await fastify.listen({ host: config.host, port: config.port });
  const addr = fastify.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return { fastify, url: `http://${host}:${port}`, stop: () => shutdown(fastify) };
}
