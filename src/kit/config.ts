// A web process's settings: read once at start (option > environment > default), checked
// with messages that name the field and the fix, then frozen.
import { isIP } from 'node:net';
import { ConfigError } from './errors.ts';
import { parseRateLimits, type RateLimit } from './security/rate-limiter.ts';

export interface ServerConfig {
  host: string;
  port: number;
  /**
   * PUBLIC_URL: the base of short URLs (https://sho.rt), and a host links may not point at.
   * The production setting: without it the request's Host header (checked) is used.
   */
  publicUrl: string | undefined;
  /** Signs session cookies. Every web server of a topology shares it. */
  secret: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Log one line per request (off by default: it costs throughput on the redirect path). */
  logRequests: boolean;
  bodyLimitBytes: number;
  rateLimits: Record<'signup' | 'login' | 'createLink', RateLimit>;
  sessionIdleSeconds: number;
  sessionAbsoluteSeconds: number;
  /**
   * TRUST_PROXY: which peers' X-Forwarded-For and X-Forwarded-Proto are believed (passed to
   * Fastify's trustProxy). `false`: none (rung 1, clients connect directly). A list of
   * addresses and CIDRs: exactly those hops, which is what a topology sets for the balancer
   * in front (`127.0.0.1`). `1` (compatibility): the one hop in front, whatever its address,
   * so a client that reaches the server directly is believed too. X-Forwarded-Host is never
   * used (src/kit/http/host-header.ts).
   */
  trustProxy: false | number | string[];
  /** After SIGTERM: report not-ready this long before closing, so a balancer can notice. */
  drainDelayMs: number;
  /** Bound on finishing in-flight requests after close. */
  shutdownTimeoutMs: number;
  clickFlushMs: number;
  /**
   * CLICK_LOG_DIR (rung 9: the launcher sets it): clicks go to an append-only log file of this
   * process in this folder, shipped to the broker by the relay, instead of the in-process
   * buffer flushed to the database every clickFlushMs.
   */
  clickLogDir: string | undefined;
  /** LADDER_OUTBOX=1 (rung 9): link writes append their events to the outbox in their transaction. */
  outbox: boolean;
  /**
   * Redis for state shared by all web servers: sessions and rate limits (rung 7). Unset:
   * both live in the process. May hold a password, so it is kept out of logs like secret.
   */
  redisUrl: string | undefined;
  /**
   * REDIS_SENTINELS (--ha from rung 7): host:port of the sentinels that know which Redis is
   * the session primary now (REDIS_SENTINEL_NAME names it); set, the client asks them
   * instead of connecting to REDIS_URL's host, and follows a failover.
   */
  redisSentinels: readonly { host: string; port: number }[];
  redisSentinelName: string;
  /** CACHE_REDIS_URL: the cache tier's Redis (rung 5); unset, reads go straight to the database. */
  cacheRedisUrl: string | undefined;
  /** CACHE_L1_MB: bytes each web process may hold in its in-process cache. */
  cacheL1Bytes: number;
  /**
   * CACHE_L1_TTL_S: the longest an in-process copy lives, invalidations aside (a safety net:
   * writes invalidate). A copy still being read in the last tenth of it is renewed from Redis.
   */
  cacheL1TtlMs: number;
  /** Streaming replicas for reads (rung 4); empty: every query goes to the primary. */
  replicas: ReplicaSettings;
  /**
   * CDN_BASE_URL: where pages point their assets (https://cdn.example.com): a CDN host in
   * front of this origin. Unset: assets are linked from the page's own origin (the local
   * edge serves both).
   */
  cdnBaseUrl: string | undefined;
  /** ASSET_ARCHIVE_DIR: a folder keeping every deploy's hashed assets (rolling deploys; the launcher sets it). */
  assetArchiveDir: string | undefined;
  /** EDGE_PAGE_TTL_S: how long shared caches keep a public page (its s-maxage); writes purge it sooner. */
  edgePageTtlS: number;
  /** EDGE_PURGE_URL: the edge to purge after a write (rung 6: the launcher sets it). */
  edgePurgeUrl: string | undefined;
  /** EDGE_PURGE_TOKEN: the edge's purge token; kept out of logs like the secret. */
  edgePurgeToken: string | undefined;
  /**
   * DATABASE_STATEMENTS: `named` (prepared once per connection, the default) or `unnamed`
   * (behind PgBouncer in transaction mode, which does not carry named statements from one
   * transaction to the next; src/kit/db/prepared.ts).
   */
  statements: 'named' | 'unnamed';
  /** DATABASE_POOL_MAX: connections per pool of this process (POOL_DEFAULTS.max unless set). */
  poolMax: number | undefined;
  /**
   * DATABASE_SHARDS (rung 10): the shard clusters, `name=primaryUrl[|replicaUrl...]` separated
   * by `;`. Set, DATABASE_URL is the catalog (the shard map, users) and links live on the
   * clusters the catalog's map names. Kept out of logs (passwords).
   */
  shards: readonly ShardSettings[];
}

export interface ShardSettings {
  name: string;
  primaryUrl: string;
  replicaUrls: readonly string[];
}

export interface ReplicaSettings {
  /**
   * postgres:// URLs, in the launcher's order (the first is replica1). They hold passwords,
   * so they are kept out of logs like the secret.
   */
  urls: readonly string[];
  /** How often each web server polls replica positions (routing a read costs no query). */
  pollMs: number;
  /** A replica more stale than this leaves rotation: the staleness bound others' reads get. */
  maxLagMs: number;
  /** A replica read (or connection) slower than this is abandoned and run on the primary. */
  readTimeoutMs: number;
  /**
   * DATABASE_PATRONI_URLS (--ha): each node's Patroni REST API, in the order of `urls`. Set,
   * every node of `urls` is a Patroni node: the primary is whichever leads, found here.
   */
  patroniUrls: readonly string[];
}

/** The defaults, in one commented table. */
export const DEFAULTS = {
  host: '127.0.0.1',
  port: 3000,
  logLevel: 'info',
  logRequests: false,
  bodyLimitBytes: 16 * 1024, // a link or a login is a few hundred bytes
  rateLimits: {
    signup: { limit: 30, windowMs: 60_000 }, // per IP per minute
    login: { limit: 30, windowMs: 60_000 }, // per IP per minute: slows password guessing
    createLink: { limit: 1200, windowMs: 60_000 }, // per IP per minute: stops spam floods, not users
  },
  sessionIdleSeconds: 24 * 3600,
  sessionAbsoluteSeconds: 7 * 24 * 3600,
  trustProxy: false,
  drainDelayMs: 0, // nothing to drain from at rung 1; the launcher sets it behind a balancer
  shutdownTimeoutMs: 8_000, // in-flight requests finish within this, so exit stays under 10 s
  clickFlushMs: 1000,
  cacheL1Mb: 32,
  cacheL1TtlS: 300,
  // A read waiting for a replica to catch up polls at once and waits at most two of these.
  // Every web server polls every replica: at 50 ms the polls took a measurable share of a
  // small replica's CPU (docs/performance.md, "Read replicas").
  replicaPollMs: 200,
  replicaMaxLagMs: 5000, // the staleness bound for reads without a token
  replicaReadTimeoutMs: 2000, // well above a loaded replica's latency, well below HAProxy's 30 s
  edgePageTtlS: 30, // public pages at the edge; a write purges its pages at once
} as const;

const MAX_REPLICAS = 8;

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(name, `"${raw}" is not an integer from ${min} to ${max}`, `set ${name} to a number in that range`);
  }
  return n;
}

/**
 * REDIS_URL: redis://[[user]:password@]host[:port][/db], or rediss:// for TLS. Query options
 * are refused (the client would read them as settings); the password is masked in errors.
 */
function checkRedisUrl(raw: string | undefined, name = 'REDIS_URL'): string | undefined {
  if (raw === undefined) return undefined;
  let u: URL | undefined;
  try {
    u = new URL(raw);
  } catch {
    u = undefined;
  }
  let shown = '(not a URL)'; // an unparsable value could still hold a password: not echoed
  if (u) {
    const masked = new URL(u.href);
    if (masked.password) masked.password = '***';
    shown = masked.href;
  }
  const ok =
    u !== undefined &&
    (u.protocol === 'redis:' || u.protocol === 'rediss:') &&
    u.hostname !== '' &&
    /^(\/(\d{1,2})?)?$/.test(u.pathname) &&
    u.search === '' &&
    u.hash === '';
  if (!ok) {
    throw new ConfigError(name, `"${shown.slice(0, 200)}" is not a Redis URL`, 'use redis://host:port (optionally redis://:password@host:port/db), or leave it unset for in-process sessions');
  }
  return raw;
}

const TRUST_PROXY_FIX = 'set TRUST_PROXY to comma-separated addresses or CIDRs of the proxies in front (e.g. 127.0.0.1 or 10.0.0.0/8), 1 for "the one hop in front", or leave it unset';

/** TRUST_PROXY: unset, empty or 0 (trust nobody), 1 (one hop), or addresses and CIDRs. */
export function parseTrustProxy(raw: string | undefined): false | number | string[] {
  if (raw === undefined || raw.trim() === '' || raw.trim() === '0') return false;
  if (raw.trim() === '1') return 1;
  const entries = raw.split(',').map((e) => e.trim());
  if (entries.length > 32) throw new ConfigError('TRUST_PROXY', `${entries.length} entries`, TRUST_PROXY_FIX);
  for (const entry of entries) {
    const slash = entry.indexOf('/');
    const address = slash < 0 ? entry : entry.slice(0, slash);
    const version = isIP(address);
    const bits = slash < 0 ? undefined : entry.slice(slash + 1);
    const okBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (version === 6 ? 128 : 32));
    if (version === 0 || !okBits) {
      throw new ConfigError('TRUST_PROXY', `"${entry.slice(0, 60)}" is not an address or CIDR`, TRUST_PROXY_FIX);
    }
  }
  return Object.freeze(entries) as string[];
}

/** DATABASE_REPLICA_URLS: comma-separated postgres:// URLs; passwords masked in errors. */
function checkReplicaUrls(raw: string | undefined, field = 'DATABASE_REPLICA_URLS', sep = ',', max = MAX_REPLICAS): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  const urls = raw.split(sep).map((u) => u.trim());
  if (urls.length > max) {
    throw new ConfigError(field, `${urls.length} URLs`, `list at most ${MAX_REPLICAS} replicas`);
  }
  for (const [i, url] of urls.entries()) {
    let u: URL | undefined;
    try {
      u = new URL(url);
    } catch {
      u = undefined;
    }
    const ok = u !== undefined && (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && u.hostname !== '' && /^\/[A-Za-z0-9_]{1,63}$/.test(u.pathname);
    if (!ok) {
      let shown = '(not a URL)';
      if (u) {
        const masked = new URL(u.href);
        if (masked.password) masked.password = '***';
        shown = masked.href;
      }
      throw new ConfigError(
        field,
        `entry ${i + 1}, "${shown.slice(0, 200)}", is not a Postgres URL`,
        'use comma-separated postgres://user:password@host:port/database URLs, or leave it unset',
      );
    }
  }
  return urls;
}

/** DATABASE_SHARDS: `name=url|url;name2=url` (rung 10); names as the shard map uses them. */
const MAX_SHARD_CLUSTERS = 16;
export function checkShards(raw: string | undefined): ShardSettings[] {
  if (raw === undefined || raw.trim() === '') return [];
  const fix = 'use name=postgres://...[|replica URL...] entries separated by ;, names of a lowercase letter and up to 15 letters or digits';
  const entries = raw.split(';').map((e) => e.trim());
  if (entries.length > MAX_SHARD_CLUSTERS) throw new ConfigError('DATABASE_SHARDS', `${entries.length} clusters`, `use at most ${MAX_SHARD_CLUSTERS}`);
  const seen = new Set<string>();
  return entries.map((entry, i) => {
    const eq = entry.indexOf('=');
    const name = eq > 0 ? entry.slice(0, eq) : '';
    if (!/^[a-z][a-z0-9]{0,15}$/.test(name) || seen.has(name)) throw new ConfigError('DATABASE_SHARDS', `entry ${i + 1} has no name, a bad one or a repeated one`, fix);
    seen.add(name);
    const [primaryUrl, ...replicaUrls] = checkReplicaUrls(entry.slice(eq + 1), 'DATABASE_SHARDS', '|', MAX_REPLICAS + 1);
    if (!primaryUrl) throw new ConfigError('DATABASE_SHARDS', `entry ${i + 1} (${name}) has no primary URL`, fix);
    return Object.freeze({ name, primaryUrl, replicaUrls: Object.freeze(replicaUrls) });
  });
}

/** An http(s) base URL with no path, query or credentials, or a ConfigError naming `name`. */
function baseUrl(name: string, raw: string | undefined, fix: string): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  let ok = false;
  try {
    const u = new URL(raw);
    ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && !u.search && !u.hash && !u.username && !u.password;
  } catch {
    ok = false;
  }
  if (!ok) throw new ConfigError(name, `"${raw.slice(0, 200)}" is not a base URL`, fix);
  return raw.replace(/\/$/, '');
}

/** REDIS_SENTINELS: comma-separated host:port (at most 9). */
function checkSentinels(raw: string | undefined): { host: string; port: number }[] {
  if (raw === undefined || raw.trim() === '') return [];
  const fix = 'list the sentinels as host:port,host:port (e.g. 127.0.0.1:26379), or leave it unset';
  const parts = raw.split(',').map((p) => p.trim());
  if (parts.length > 9) throw new ConfigError('REDIS_SENTINELS', `${parts.length} sentinels`, fix);
  return parts.map((p) => {
    const m = /^([A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:]{2,45}\]):(\d{1,5})$/.exec(p);
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65535) throw new ConfigError('REDIS_SENTINELS', `"${p.slice(0, 60)}" is not host:port`, fix);
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
  });
}

function checkSentinelName(raw: string | undefined): string {
  const name = raw === undefined || raw === '' ? 'sessions' : raw;
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new ConfigError('REDIS_SENTINEL_NAME', `"${name.slice(0, 40)}" is not a master name`, 'use letters, digits, _ . - (the name in the sentinels\' monitor line)');
  return name;
}

function checkStatements(raw: string | undefined): 'named' | 'unnamed' {
  if (raw === undefined || raw === '' || raw === 'named') return 'named';
  if (raw === 'unnamed') return 'unnamed';
  throw new ConfigError('DATABASE_STATEMENTS', `"${raw.slice(0, 40)}" is not a statement mode`, 'use named (the default) or unnamed (behind PgBouncer in transaction mode)');
}

/** DATABASE_PATRONI_URLS: comma-separated http:// URLs, one per replica URL. */
function checkPatroniUrls(raw: string | undefined, nodes: number): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  const urls = raw.split(',').map((u) => u.trim());
  const fix = 'list each database node\'s Patroni REST API (http://host:port), in the order of DATABASE_REPLICA_URLS, or leave it unset';
  if (urls.length !== nodes) throw new ConfigError('DATABASE_PATRONI_URLS', `${urls.length} URLs for ${nodes} database nodes`, fix);
  for (const [i, url] of urls.entries()) {
    let u: URL | undefined;
    try {
      u = new URL(url);
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '' || u.username !== '' || u.password !== '' || !/^\/?$/.test(u.pathname) || u.search !== '') {
      throw new ConfigError('DATABASE_PATRONI_URLS', `entry ${i + 1}, "${url.slice(0, 100)}", is not a Patroni API URL`, fix);
    }
  }
  return urls.map((u) => u.replace(/\/$/, ''));
}

/** Settings given in code (tests, `ladder start`); they win over the environment. */
export type ServerConfigOverrides = Partial<Omit<ServerConfig, 'replicas'>> & { replicas?: Partial<ReplicaSettings> };

export function loadServerConfig(overrides: ServerConfigOverrides = {}, env: Env = process.env): Readonly<ServerConfig> {
  const logLevel = (overrides.logLevel ?? env.LOG_LEVEL ?? DEFAULTS.logLevel) as ServerConfig['logLevel'];
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `"${String(logLevel)}" is not a level`, 'use one of error, warn, info, debug, silent');
  }
  const publicUrl = overrides.publicUrl ?? env.PUBLIC_URL;
  if (publicUrl !== undefined) {
    let ok = false;
    try {
      const u = new URL(publicUrl);
      ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && !u.search;
    } catch {
      ok = false;
    }
    if (!ok) throw new ConfigError('PUBLIC_URL', `"${publicUrl}" is not a base URL`, 'use a URL like https://sho.rt/ with no path');
  }
  const secret = overrides.secret ?? env.LADDER_SECRET;
  if (secret === undefined || secret.length < 32) {
    throw new ConfigError('LADDER_SECRET', 'missing or shorter than 32 characters', 'set a long random secret (the launcher makes one under .ladder/)');
  }
  const redisUrl = checkRedisUrl(overrides.redisUrl ?? (env.REDIS_URL || undefined));
  const cacheRedisUrl = checkRedisUrl(overrides.cacheRedisUrl ?? (env.CACHE_REDIS_URL || undefined), 'CACHE_REDIS_URL');
  const host = overrides.host ?? env.HOST ?? DEFAULTS.host;
  if (!/^[A-Za-z0-9.:[\]-]{1,255}$/.test(host)) throw new ConfigError('HOST', `"${host}" is not a host`, 'use an address such as 127.0.0.1');
  const replicaUrls = Object.freeze(overrides.replicas?.urls ?? checkReplicaUrls(env.DATABASE_REPLICA_URLS));
  const replicas: ReplicaSettings = {
    urls: replicaUrls,
    patroniUrls: Object.freeze(overrides.replicas?.patroniUrls ?? checkPatroniUrls(env.DATABASE_PATRONI_URLS, replicaUrls.length)),
    pollMs: overrides.replicas?.pollMs ?? int(env, 'DATABASE_REPLICA_POLL_MS', DEFAULTS.replicaPollMs, 10, 10_000),
    maxLagMs: overrides.replicas?.maxLagMs ?? int(env, 'DATABASE_REPLICA_MAX_LAG_MS', DEFAULTS.replicaMaxLagMs, 100, 3_600_000),
    readTimeoutMs: overrides.replicas?.readTimeoutMs ?? int(env, 'DATABASE_REPLICA_TIMEOUT_MS', DEFAULTS.replicaReadTimeoutMs, 50, 120_000),
  };
  Object.defineProperty(replicas, 'urls', { enumerable: false });
  Object.freeze(replicas);
  const config: ServerConfig = {
    host,
    port: overrides.port ?? int(env, 'PORT', DEFAULTS.port, 0, 65535),
    publicUrl: publicUrl?.replace(/\/$/, ''),
    secret,
    logLevel,
    logRequests: overrides.logRequests ?? env.LOG_REQUESTS === '1',
    bodyLimitBytes: overrides.bodyLimitBytes ?? DEFAULTS.bodyLimitBytes,
    rateLimits: (overrides.rateLimits ??
      parseRateLimits(env.LADDER_RATE_LIMITS, DEFAULTS.rateLimits)),
    sessionIdleSeconds: overrides.sessionIdleSeconds ?? DEFAULTS.sessionIdleSeconds,
    sessionAbsoluteSeconds: overrides.sessionAbsoluteSeconds ?? DEFAULTS.sessionAbsoluteSeconds,
    trustProxy: overrides.trustProxy ?? parseTrustProxy(env.TRUST_PROXY),
    drainDelayMs: overrides.drainDelayMs ?? int(env, 'DRAIN_DELAY_MS', DEFAULTS.drainDelayMs, 0, 60_000),
    shutdownTimeoutMs: overrides.shutdownTimeoutMs ?? int(env, 'SHUTDOWN_TIMEOUT_MS', DEFAULTS.shutdownTimeoutMs, 100, 120_000),
    clickFlushMs: overrides.clickFlushMs ?? int(env, 'CLICK_FLUSH_MS', DEFAULTS.clickFlushMs, 10, 60_000),
    clickLogDir: overrides.clickLogDir ?? (env.CLICK_LOG_DIR || undefined),
    outbox: overrides.outbox ?? env.LADDER_OUTBOX === '1',
    redisUrl,
    redisSentinels: overrides.redisSentinels ?? checkSentinels(env.REDIS_SENTINELS),
    redisSentinelName: overrides.redisSentinelName ?? checkSentinelName(env.REDIS_SENTINEL_NAME),
    cacheRedisUrl,
    cacheL1Bytes: overrides.cacheL1Bytes ?? int(env, 'CACHE_L1_MB', DEFAULTS.cacheL1Mb, 1, 4096) * 1024 * 1024,
    cacheL1TtlMs: overrides.cacheL1TtlMs ?? int(env, 'CACHE_L1_TTL_S', DEFAULTS.cacheL1TtlS, 1, 86_400) * 1000,
    replicas,
    cdnBaseUrl: baseUrl('CDN_BASE_URL', overrides.cdnBaseUrl ?? env.CDN_BASE_URL, 'use a URL like https://cdn.example.com with no path, or leave it unset'),
    assetArchiveDir: overrides.assetArchiveDir ?? (env.ASSET_ARCHIVE_DIR || undefined),
    edgePageTtlS: overrides.edgePageTtlS ?? int(env, 'EDGE_PAGE_TTL_S', DEFAULTS.edgePageTtlS, 1, 86_400),
    edgePurgeUrl: baseUrl('EDGE_PURGE_URL', overrides.edgePurgeUrl ?? env.EDGE_PURGE_URL, 'use the edge as http://127.0.0.1:PORT, or leave it unset'),
    edgePurgeToken: overrides.edgePurgeToken ?? (env.EDGE_PURGE_TOKEN || undefined),
    statements: checkStatements(overrides.statements ?? env.DATABASE_STATEMENTS),
    poolMax: overrides.poolMax ?? (env.DATABASE_POOL_MAX ? int(env, 'DATABASE_POOL_MAX', 10, 1, 1000) : undefined),
    shards: Object.freeze(overrides.shards ?? checkShards(env.DATABASE_SHARDS)),
  };
  if (config.edgePurgeUrl !== undefined && (config.edgePurgeToken === undefined || !/^[A-Za-z0-9_-]{16,128}$/.test(config.edgePurgeToken))) {
    throw new ConfigError('EDGE_PURGE_TOKEN', 'missing, or not 16 to 128 letters, digits, _ or -', 'set the token the edge checks (the launcher sets both)');
  }
  // Never serialized into logs.
  Object.defineProperty(config, 'edgePurgeToken', { enumerable: false });
  Object.defineProperty(config, 'secret', { enumerable: false });
  Object.defineProperty(config, 'redisUrl', { enumerable: false });
  Object.defineProperty(config, 'cacheRedisUrl', { enumerable: false });
  Object.defineProperty(config, 'shards', { enumerable: false });
  return Object.freeze(config);
}
