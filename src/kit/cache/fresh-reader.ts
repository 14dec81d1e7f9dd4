// The database a cache loader reads through: every read reflects at least a given WAL
// position (the key's tombstone, so that a lagging replica's old row is never put back into
// the cache), and the reader remembers the least fresh position any of its reads reflected,
// which the fill then presents to Redis (fill-4.lua).
import { FRESHEST, type Database, type ReadDb, type Row } from '../db/database.ts';

export class FreshReader implements ReadDb {
  position = FRESHEST;

  constructor(
    private readonly database: Database,
    private readonly atLeast: bigint,
  ) {}

  async read<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    const { rows, position } = await this.database.readFresh<R>(this.atLeast, sql, params);
    if (position < this.position) this.position = position;
    return rows;
  }
}
