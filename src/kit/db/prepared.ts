// Every query goes out as a named prepared statement: Postgres parses and plans it once
// per connection instead of on every execution. Measured on the redirect lookup: Postgres
// time per redirect 232 µs → 128 µs (docs/performance.md). Names derive from the SQL text,
// so the same text always maps to the same statement.
import { createHash } from 'node:crypto';
import type { QueryConfig } from 'pg';

const names = new Map<string, string>();
const MAX_NAMES = 1000; // app SQL is a fixed set; a caller building SQL text dynamically must not grow this forever

/**
 * DATABASE_STATEMENTS=unnamed (set by the launcher behind PgBouncer, --pgbouncer): every
 * statement goes out unnamed. PgBouncer 1.18 in transaction mode hands each transaction a
 * server connection of its pool, so a statement prepared on one would not exist on the
 * next ("prepared statement does not exist"); an unnamed statement is parsed, bound and run
 * in one round trip, on one server connection. The cost is a parse and plan per execution
 * (the 232 vs 128 µs above). Process-wide, set once at start, before any query.
 */
let unnamed = false;

export function useUnnamedStatements(on: boolean): void {
  unnamed = on;
}

/** The kit's own fixed statements (position probes, epochs): unnamed too behind PgBouncer. */
export function statement(q: { name: string; text: string }): QueryConfig {
  return unnamed ? { text: q.text } : q;
}

export function prepared(sql: string, params: readonly unknown[]): QueryConfig {
  if (unnamed) return { text: sql, values: params as unknown[] };
  let name = names.get(sql);
  if (name === undefined) {
    if (names.size >= MAX_NAMES) return { text: sql, values: params as unknown[] };
    name = `l_${createHash('sha1').update(sql).digest('hex').slice(0, 16)}`;
    names.set(sql, name);
  }
  return { name, text: sql, values: params as unknown[] };
}
