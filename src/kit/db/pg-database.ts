// The single-primary Database on node-postgres: one pool, every query counted in
// ladder_db_queries_total{shard,role}, plain reads also in ladder_db_reads_total{shard,role}.
import pg from 'pg';
import type { Metrics } from '../metrics/metrics.ts';
import { FRESHEST, type Database, type Db, type Row, type TxDb } from './database.ts';
import { prepared } from './prepared.ts';

export interface PgDatabaseOptions {
  url: string;
  /** Pool size. Default 10: past a few connections per core Postgres gains nothing. */
  max?: number;
  shard?: string;
  metrics: Metrics;
}

export class PgDatabase implements Database {
  private readonly pool: pg.Pool;
  private readonly counter;
  private readonly reads;

  constructor(opts: PgDatabaseOptions) {
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.max ?? 10,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 5_000,
      application_name: 'ladder',
    });
    // An idle client that loses its server emits here; without a listener it would crash the process.
    this.pool.on('error', () => undefined);
    this.counter = opts.metrics.dbQueries.labels({ shard: opts.shard ?? '0', role: 'primary' });
    this.reads = opts.metrics.dbReads.labels({ shard: opts.shard ?? '0', role: 'primary' });
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

  private async query<R extends Row>(sql: string, params: readonly unknown[]): Promise<R[]> {
    this.counter.inc();
    const res = await this.pool.query<R>(prepared(sql, params));
    return res.rows;
  }

  async tx<T>(fn: (tx: TxDb) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const tx: TxDb = {
      query: async <R extends Row = Row>(sql: string, params: readonly unknown[] = []) => {
        this.counter.inc();
        return (await client.query<R>(prepared(sql, params))).rows;
      },
    };
    try {
      await client.query('begin');
      const result = await fn(tx);
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      client.release();
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
      return false;
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
