// What handlers see as `req.db`: they say what they need (a read, a write, a transaction),
// never where it runs. At rung 1 everything goes to the one primary; the replica router
// of rung 4 implements the same interface.

export type Row = Record<string, unknown>;

/** Read-only access: the type has no way to write. */
export interface ReadDb {
  read<R extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<R[]>;
}

/** A transaction: every statement runs on the primary, in one transaction. */
export interface TxDb {
  query<R extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<R[]>;
}

export interface Db extends ReadDb {
  write<R extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  tx<T>(fn: (tx: TxDb) => Promise<T>): Promise<T>;
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
  /** Reachable now? Used by /readyz. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
