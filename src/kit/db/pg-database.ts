// The single-primary Database on node-postgres: one pool (pool.ts), every query counted in
// ladder_db_queries_total{shard,role}, plain reads also in ladder_db_reads_total{shard,role}.
// The replica router (rung 4) composes one of these as its primary, and rung 10's shard
// router one per shard; both use connection() and transaction() for statements that must
// share a connection with a WAL-position probe.
import pg from 'pg';
import { LadderError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { FRESHEST, type Database, type Db, type Row, type TxDb } from './database.ts';
import { createPool, errorText, type DbLog } from './pool.ts';
import type { PrimarySource } from './leader-tracker.ts';
import { prepared, statement } from './prepared.ts';

/** --ha: how long a statement waits for a new leader: a failover takes 5 to 7 s here (docs/performance.md). */
const FAILOVER_WAIT_MS = 10_000;
const RETRY_PAUSE_MS = 100;
const HA_QUERY_TIMEOUT_MS = 3_000;
/** Set on a transaction's error when its rollback failed too: the connection must not be reused. */
const BROKEN = Symbol('broken connection');

/** No node led within the wait: the statement was never sent (503, the client may retry). */
function noLeader(ms: number): LadderError {
  return new LadderError('SERVICE_UNAVAILABLE', `No database node has led for ${ms / 1000} s (a failover is under way); retry later.`);
}

/** SQLSTATE 25006: the node is a standby now (demoted): nothing was written, safe to send elsewhere. */
export function refusedAsReadOnly(err: unknown): boolean {
  return err instanceof pg.DatabaseError && err.code === '25006';
}

/** No SQLSTATE: the connection itself failed (reset, terminated); the pool must not reuse it. */
function connectionBroken(err: unknown): boolean {
  return !(err instanceof pg.DatabaseError);
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface PgDatabaseOptions {
  url: string;
  /**
   * --ha: the primary moves. The pool follows `primary` (rebuilt when the leader changes),
   * and a statement that failed before it could have run anywhere is sent again to the next
   * leader (safe-retry.ts); `url` is then only the first guess.
   */
  primary?: PrimarySource;
  /** How long a statement waits for a leader (and retries a safe failure) before it fails. */
  failoverWaitMs?: number;
  /** Pool size (POOL_DEFAULTS.max when not given). */
  max?: number;
  shard?: string;
  metrics: Metrics;
  /** Where an idle connection's failure or a failed rollback is logged (also counted). */
  log?: DbLog;
}

/** One pooled connection, for statements that must run on the same one. */
export interface PgConnection extends TxDb {
  /** A statement of the kit's own (a position probe): not counted as a query. */
  internal<R extends Row = Row>(query: { name: string; text: string }): Promise<R[]>;
}

export class PgDatabase implements Database {
  private pool: pg.Pool;
  private poolUrl: string;
  private readonly makePool: (url: string) => pg.Pool;
  private readonly source: PrimarySource | undefined;
  private readonly failoverWaitMs: number;
  private readonly counter;
  private readonly reads;
  private readonly swallowed;
  private readonly log: DbLog | undefined;

  constructor(opts: PgDatabaseOptions) {
    const shard = opts.shard ?? '0';
    this.log = opts.log;
    this.swallowed = opts.metrics.backgroundErrors.labels({ component: 'db' });
    this.makePool = (url) =>
      createPool({
        url,
        max: opts.max,
        // --ha: a statement on a primary that froze (a stopped machine, a partition) would wait
        // for ever; the app's statements take milliseconds, so 3 s is a dead primary. Such a
        // statement fails (it may have been sent: never retried) and the writes after it go
        // to the next leader.
        ...(opts.primary ? { queryTimeoutMs: HA_QUERY_TIMEOUT_MS } : {}),
        onIdleError: (err) => {
          this.swallowed.inc();
          this.log?.warn({ shard, role: 'primary', error: errorText(err) }, 'an idle database connection failed; the pool opens a new one when needed');
        },
      });
    this.source = opts.primary;
    this.failoverWaitMs = opts.failoverWaitMs ?? FAILOVER_WAIT_MS;
    this.poolUrl = opts.primary?.current() ?? opts.url;
    this.pool = this.makePool(this.poolUrl);
    this.counter = opts.metrics.dbQueries.labels({ shard, role: 'primary' });
    this.reads = opts.metrics.dbReads.labels({ shard, role: 'primary' });
  }

  forRequest(): Db {
    return this;
  }

  async read<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    this.reads.inc();
    return this.query<R>(sql, params);
  }

  async write<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    return this.query<R>(sql, params);
  }

  /** A statement counted as a query, not as a plain read (a router that counts reads itself). */
  /** `waitMs` (--ha): how long it may wait for a leader; a read passes 0, to fall back to a replica at once. */
  async query<R extends Row = Row>(sql: string, params: readonly unknown[] = [], waitMs?: number): Promise<R[]> {
    this.counter.inc();
    if (this.source) return this.onLeader((client) => client.query<R>(prepared(sql, params)), waitMs).then((r) => r.rows);
    const res = await this.pool.query<R>(prepared(sql, params));
    return res.rows;
  }

  /** --ha: whether a node is known to lead now (a read need not wait for one). */
  hasPrimary(): boolean {
    return this.source === undefined || this.source.current() !== undefined;
  }

  /**
   * --ha: runs fn on a connection to the leader; a failure that proves the statement never
   * ran (no connection could be made, or a demoted node refused it as read-only) is retried
   * on the next leader until failoverWaitMs has passed. Anything else is thrown as it is:
   * a statement whose connection broke after it was sent may have committed.
   */
  private async onLeader<T>(fn: (client: pg.PoolClient) => Promise<T>, waitMs = this.failoverWaitMs): Promise<T> {
    const deadline = performance.now() + waitMs;
    for (;;) {
      const client = await this.connectLeader(deadline);
      let broken: Error | undefined;
      try {
        return await fn(client);
      } catch (err) {
        if (!refusedAsReadOnly(err) || performance.now() >= deadline) {
          broken = (err as { [BROKEN]?: Error } | null)?.[BROKEN] ?? (connectionBroken(err) ? toError(err) : undefined);
          throw err;
        }
        this.source!.suspect();
        await sleep(RETRY_PAUSE_MS);
      } finally {
        client.release(broken);
      }
    }
  }

  /** A connection to the leader, waiting (until deadline) for one to be known and to accept it. */
  private async connectLeader(deadline: number): Promise<pg.PoolClient> {
    for (;;) {
      const url = await this.source!.wait(Math.max(0, deadline - performance.now()));
      if (url === undefined) throw noLeader(this.failoverWaitMs);
      try {
        return await this.poolFor(url).connect();
      } catch (err) {
        // Never sent: safe to try again, on whichever node leads by then.
        if (performance.now() >= deadline) {
          throw new LadderError('SERVICE_UNAVAILABLE', 'The database leader does not accept connections (a failover is under way); retry later.', { cause: err });
        }
        this.source!.suspect();
        await sleep(RETRY_PAUSE_MS);
      }
    }
  }

  /** The pool of the node that leads; the previous leader's is closed (its open connections finish). */
  private poolFor(url: string): pg.Pool {
    if (url !== this.poolUrl) {
      const old = this.pool;
      this.poolUrl = url;
      this.pool = this.makePool(url);
      old.end().catch((err: unknown) => {
        this.swallowed.inc();
        this.log?.warn({ error: errorText(err) }, 'closing the previous leader\'s pool failed');
      });
    }
    return this.pool;
  }

  async tx<T>(fn: (tx: TxDb) => Promise<T>): Promise<T> {
    return (await this.transaction(fn, async () => undefined)).result;
  }

  /** Runs fn on one connection of the pool. */
  async connection<T>(fn: (c: PgConnection) => Promise<T>, waitMs?: number): Promise<T> {
    if (this.source) return this.onLeader((client) => fn(this.wrap(client)), waitMs);
    const client = await this.pool.connect();
    try {
      return await fn(this.wrap(client));
    } finally {
      client.release();
    }
  }

  /** A transaction; then, on the same connection after the commit, `afterCommit` (a position probe). */
  async transaction<T, A>(
    fn: (tx: TxDb) => Promise<T>,
    afterCommit: (c: PgConnection) => Promise<A>,
  ): Promise<{ result: T; after: A }> {
    if (this.source) return this.onLeader((client) => this.inTransaction(client, fn, afterCommit));
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      return await this.inTransaction(client, fn, afterCommit);
    } catch (err) {
      broken = (err as { [BROKEN]?: Error })[BROKEN];
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** begin, fn, commit, afterCommit on one client; a failed rollback marks the error (BROKEN) so the connection is closed. */
  private async inTransaction<T, A>(
    client: pg.PoolClient,
    fn: (tx: TxDb) => Promise<T>,
    afterCommit: (c: PgConnection) => Promise<A>,
  ): Promise<{ result: T; after: A }> {
    const c = this.wrap(client);
    let broken: Error | undefined;
    try {
      await client.query('begin');
      const result = await fn(c);
      await client.query('commit');
      return { result, after: await afterCommit(c) };
    } catch (err) {
      try {
        await client.query('rollback');
      } catch (rollbackErr) {
        // The connection is unusable (that is usually why the transaction failed): the pool
        // must close it rather than hand it out again. The transaction's own error is thrown.
        broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
        this.swallowed.inc();
        this.log?.warn({ error: errorText(rollbackErr) }, 'rollback failed; the connection is closed');
        if (typeof err === 'object' && err !== null) (err as { [BROKEN]?: Error })[BROKEN] = broken;
      }
      throw err;
    }
  }

  async readFresh<R extends Row = Row>(_atLeast: bigint, sql: string, params: readonly unknown[] = []): Promise<{ rows: R[]; position: bigint }> {
    return { rows: await this.read<R>(sql, params), position: FRESHEST };
  }

  async commitPosition(): Promise<bigint> {
    return 0n;
  }

  async ping(): Promise<boolean> {
    try {
      if (this.source) {
        const url = this.source.current();
        if (url === undefined) return false;
        await this.poolFor(url).query('select 1');
        return true;
      }
      await this.pool.query('select 1');
      return true;
    } catch {
      // Not ready is the answer (/readyz says 503 and why); the error itself adds nothing.
      return false;
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private wrap(client: pg.PoolClient): PgConnection {
    return {
      query: async <R extends Row = Row>(sql: string, params: readonly unknown[] = []) => {
        this.counter.inc();
        return (await client.query<R>(prepared(sql, params))).rows;
      },
      internal: async <R extends Row = Row>(query: { name: string; text: string }) => (await client.query<R>(statement(query))).rows,
    };
  }
}
