// The single-primary Database on node-postgres: one pool (pool.ts), every query counted in
// ladder_db_queries_total{shard,role}, plain reads also in ladder_db_reads_total{shard,role}.
// The replica router (rung 4) composes one of these as its primary, and rung 10's shard
// router one per shard; both use connection() and transaction() for statements that must
// share a connection with a WAL-position probe.
import type pg from 'pg';
import type { Metrics } from '../metrics/metrics.ts';
import { FRESHEST, type Database, type Db, type Row, type TxDb } from './database.ts';
import { createPool, errorText, type DbLog } from './pool.ts';
import { prepared } from './prepared.ts';

export interface PgDatabaseOptions {
  url: string;
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
  private readonly pool: pg.Pool;
  private readonly counter;
  private readonly reads;
  private readonly swallowed;
  private readonly log: DbLog | undefined;

  constructor(opts: PgDatabaseOptions) {
    const shard = opts.shard ?? '0';
    this.log = opts.log;
    this.swallowed = opts.metrics.backgroundErrors.labels({ component: 'db' });
    this.pool = createPool({
      url: opts.url,
      max: opts.max,
      onIdleError: (err) => {
        this.swallowed.inc();
        this.log?.warn({ shard, role: 'primary', error: errorText(err) }, 'an idle database connection failed; the pool opens a new one when needed');
      },
    });
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
  async query<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    this.counter.inc();
    const res = await this.pool.query<R>(prepared(sql, params));
    return res.rows;
  }

  async tx<T>(fn: (tx: TxDb) => Promise<T>): Promise<T> {
    return (await this.transaction(fn, async () => undefined)).result;
  }

  /** Runs fn on one connection of the pool. */
  async connection<T>(fn: (c: PgConnection) => Promise<T>): Promise<T> {
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
    const client = await this.pool.connect();
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
      }
      throw err;
    } finally {
      client.release(broken);
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
      internal: async <R extends Row = Row>(query: { name: string; text: string }) => (await client.query<R>(query)).rows,
    };
  }
}
