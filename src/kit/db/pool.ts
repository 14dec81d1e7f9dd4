// The one place the kit opens a pg.Pool: the primary's (PgDatabase) and each replica's
// (ReplicaRouter), and at rung 10 each shard's, so that every pool has the same settings
// and the same handling of a connection that fails, idle or checked out.
import pg from 'pg';

/** The settings, in one commented table. */
export const POOL_DEFAULTS = {
  // Connections per pool. Past a few per core Postgres gains nothing, and every web server
  // has its own pool: 10 per server is 160 connections for 16 servers, under the default 200.
  max: 10,
  // An idle connection is closed after this long, so a quiet server does not hold them all.
  idleTimeoutMs: 30_000,
  // Waiting this long for a connection (the pool full, or a server that accepts TCP but
  // does not answer) fails the statement. Replica pools use the router's read timeout
  // instead, so that a stopped replica sends the read to the primary soon.
  connectionTimeoutMs: 5_000,
  // What pg_stat_activity shows for our connections.
  applicationName: 'ladder',
} as const;

export interface PoolOptions {
  url: string;
  max?: number;
  connectionTimeoutMs?: number;
  /** A statement without an answer for this long fails and its connection is dropped (--ha: a frozen primary). */
  queryTimeoutMs?: number;
  /**
   * An idle connection lost its server (restarted, stopped, network cut): the pool drops it
   * and opens a new one when needed; this is told, for a log line and a metric. Without a
   * listener the error would crash the process.
   */
  onIdleError: (err: Error) => void;
}

export function createPool(opts: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.max ?? POOL_DEFAULTS.max,
    idleTimeoutMillis: POOL_DEFAULTS.idleTimeoutMs,
    connectionTimeoutMillis: opts.connectionTimeoutMs ?? POOL_DEFAULTS.connectionTimeoutMs,
    application_name: POOL_DEFAULTS.applicationName,
    ...(opts.queryTimeoutMs !== undefined ? { query_timeout: opts.queryTimeoutMs } : {}),
  });
  pool.on('error', (err) => opts.onIdleError(err));
  // A connection lost while checked out (a statement or a transaction on it when its server
  // died: kill -9 of the primary under load) emits 'error' on its client, which pg-pool hears
  // only while the client is idle: unheard, it crashed the web process. The caller learns of
  // the failure through its statement (or the next one, which the broken client refuses), and
  // the release drops the client; this listener only keeps the event from being fatal.
  pool.on('connect', (client) => client.on('error', ignoreCheckedOutError));
  return pool;
}

function ignoreCheckedOutError(): void {}

/** The log lines the db components write: pino's shape, so Fastify's logger fits. */
export interface DbLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** An error's code and message, short, for a log line (never the statement's parameters). */
export function errorText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const text = typeof e?.message === 'string' ? e.message : String(err);
  return (typeof e?.code === 'string' ? `${e.code}: ${text}` : text).slice(0, 200);
}
