// What handlers see as `req.db`: they say what they need (a read, a write, a transaction),
// never where it runs. At rung 1 everything goes to the one primary; the replica router
// of rung 4 implements the same interface.

import type { ShardKey } from './shard-key.ts';

export type Row = Record<string, unknown>;
export type { ShardKey } from './shard-key.ts';

/** Position of a read the primary served: newer than anything a replica can lag behind. */
export const FRESHEST = (1n << 64n) - 1n;

/** Read-only access: the type has no way to write. */
export interface ReadDb {
  read<R extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /**
   * For lookups batched across requests (batched-lookup.ts): runs `lookup` on a shared
   * handle whose batches this handle's lookup may join (the replica the caller's token
   * allows, at rung 4), keeping for the caller what reading there implies (a pin). Absent,
   * or when no shared handle may serve it: `lookup(this)`, batched with this handle's own.
   */
  joinBatch?<T>(lookup: (shared: ReadDb) => Promise<T>): Promise<T>;
  /** Statements of one batched lookup this handle runs at once, at most (else the lookup's own limit). */
  readonly batchesInFlight?: number;
  /**
   * Rung 10: the handle of the shard `key` lives on (dbFor() below). Absent (rungs 1-9):
   * there is one database and every key lives on it.
   */
  on?(key: ShardKey): ReadDb;
  /** Rung 10: true when rows live on several databases (a statement needs a key). */
  readonly sharded?: boolean;
  /** Rung 10, a keyed handle: the cluster its key is on now (to group keys by cluster). */
  readonly shardName?: string;
}

/** A transaction: every statement runs on the primary, in one transaction. */
export interface TxDb {
  query<R extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<R[]>;
}

export interface Db extends ReadDb {
  write<R extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  tx<T>(fn: (tx: TxDb) => Promise<T>): Promise<T>;
  on?(key: ShardKey): Db;
  /**
   * Rung 10: one read on every shard at once (admin totals): each shard's rows, and the
   * shards that failed or did not answer within the timeout (the partial-result policy is
   * the caller's: `partial: false` throws instead). Absent below rung 10.
   */
  scatter?<R extends Row = Row>(sql: string, params?: readonly unknown[], opts?: ScatterOptions): Promise<ScatterResult<R>>;
}

export interface ScatterOptions {
  /** Per shard; a shard that has not answered by then counts as missing (default 2 s). */
  timeoutMs?: number;
  /** Accept a result with missing shards (default false: any missing shard throws SERVICE_UNAVAILABLE). */
  partial?: boolean;
}

export interface ScatterResult<R extends Row> {
  rows: R[];
  /** Shards that failed or timed out (only when `partial`). */
  missing: string[];
}

/** The handle for `key`'s shard: `db` itself below rung 10. */
export function dbFor(db: Db, key: ShardKey): Db;
export function dbFor(db: ReadDb, key: ShardKey): ReadDb;
export function dbFor(db: ReadDb, key: ShardKey): ReadDb {
  return db.on ? db.on(key) : db;
}

/**
 * Where a caller's consistency tokens live between requests (a cookie, the session); the
 * HTTP layer supplies one per request. Tokens are opaque strings to it, one per shard.
 */
export interface TokenCarrier {
  /** The tokens the caller brought for a shard (from each place that holds one). */
  tokens(shard: string): readonly string[];
  /**
   * Keeps the caller's new token for later requests. `durable`: also where it outlives
   * this client's cookies (the session), which costs a store write; used after writes.
   * The promise never rejects: a place that cannot keep it is skipped.
   */
  save(shard: string, token: string, durable: boolean): Promise<void> | undefined;
}

/** The process-wide database: hands out per-request handles and owns the pools. */
export interface Database extends Db {
  /** A handle for one request; with replicas (rung 4) it reads and advances the caller's token. */
  forRequest(carrier?: TokenCarrier): Db;
  /**
   * For cache fills (kit/cache): a plain read whose result reflects at least WAL position
   * `atLeast` (a replica only if it has replayed that far; else a bounded wait or the
   * primary), with a lower bound of the position it reflects: the replica's replay position
   * as last polled, or FRESHEST when the primary served it (it had every commit made
   * before the read began). With no replicas: the primary, FRESHEST.
   */
  readFresh<R extends Row = Row>(atLeast: bigint, sql: string, params?: readonly unknown[]): Promise<{ rows: R[]; position: bigint }>;
  /**
   * A WAL position at or past every commit made before the call (the primary's current
   * position), for cache invalidations; 0n when no replica can serve reads, so none can
   * be behind.
   */
  commitPosition(): Promise<bigint>;
  /** Reachable now? Used by /readyz. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
