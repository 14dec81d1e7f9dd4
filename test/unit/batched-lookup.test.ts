import { describe, expect, it } from 'vitest';
import { batchedLookup } from '../../src/kit/db/batched-lookup.ts';
import type { ReadDb, Row } from '../../src/kit/db/database.ts';

/** A ReadDb over an in-memory table that records each statement's keys. */
function tableDb(rows: Record<string, string>, fail = false): ReadDb & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    async read<R extends Row = Row>(_sql: string, params: readonly unknown[] = []): Promise<R[]> {
      const keys = params[0] as string[];
      calls.push(keys);
      await new Promise((r) => setTimeout(r, 1));
      if (fail) throw new Error('connection lost');
      return keys.filter((k) => k in rows).map((k) => ({ code: k, url: rows[k] }) as unknown as R);
    },
  };
}

describe('batched lookup', () => {
  const lookup = () => batchedLookup<{ code: string; url: string }>({ sql: 'select', keyColumn: 'code', maxBatch: 4 });

  it('sends the keys asked for in one turn as one statement, each caller gets its own row', async () => {
    const db = tableDb({ a: 'A', b: 'B', c: 'C' });
    const find = lookup();
    const got = await Promise.all(['a', 'b', 'x', 'a'].map((k) => find(db, k)));
    expect(got.map((r) => r?.url)).toEqual(['A', 'B', undefined, 'A']);
    expect(db.calls).toEqual([['a', 'b', 'x']]); // 'a' asked twice, sent once
  });

  it('splits at maxBatch, and a later turn starts a new batch', async () => {
    const db = tableDb({ a: 'A' });
    const find = lookup();
    await Promise.all(['1', '2', '3', '4', '5', '6'].map((k) => find(db, k)));
    expect(db.calls).toEqual([['1', '2', '3', '4'], ['5', '6']]);
    expect((await find(db, 'a'))?.url).toBe('A');
    expect(db.calls).toHaveLength(3);
  });

  it('keys that arrive while the statements in flight run go out together when one finishes', async () => {
    const db = tableDb({ a: 'A', b: 'B', c: 'C' });
    const find = batchedLookup<{ code: string; url: string }>({ sql: 'select', keyColumn: 'code', maxInFlight: 1 });
    const first = find(db, 'a');
    await new Promise((r) => setImmediate(r)); // 'a' is out now
    const later = [find(db, 'b'), find(db, 'c')];
    await new Promise((r) => setImmediate(r)); // a later turn, while 'a' still runs
    const last = find(db, 'x');
    const got = await Promise.all([first, ...later, last]);
    expect(got.map((r) => r?.url)).toEqual(['A', 'B', 'C', undefined]);
    expect(db.calls).toEqual([['a'], ['b', 'c', 'x']]);
  });

  it('never mixes handles: each database handle gets its own statements', async () => {
    const one = tableDb({ a: 'one' });
    const two = tableDb({ a: 'two' });
    const find = lookup();
    const [x, y] = await Promise.all([find(one, 'a'), find(two, 'a')]);
    expect([x?.url, y?.url]).toEqual(['one', 'two']);
    expect([one.calls, two.calls]).toEqual([[['a']], [['a']]]);
  });

  it('a failed statement rejects every caller of that batch, and the next batch runs', async () => {
    const find = lookup();
    const bad = tableDb({ a: 'A' }, true);
    const results = await Promise.allSettled([find(bad, 'a'), find(bad, 'b')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    const good = tableDb({ a: 'A' });
    expect((await find(good, 'a'))?.url).toBe('A');
  });
});
