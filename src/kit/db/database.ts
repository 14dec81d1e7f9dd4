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

/** The process-wide database: hands out per-request handles and owns the pools. */
export interface Database extends Db {
  /** A handle for one request (rung 4 binds the caller's consistency token here). */
  forRequest(ctx: unknown): Db;
  /** Reachable now? Used by /readyz. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
