// The seed (SQL) and the driver (TypeScript) must agree on every code and URL: checked in
// PGlite, a real Postgres in this process, against the app's own migrations.
import { PGlite } from '@electric-sql/pglite';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR } from '../../src/app/links-app.ts';
import { CODE_PATTERN } from '../../src/app/domain/codes.ts';
import { loadMigrations } from '../../src/kit/db/migrator.ts';
import { benchCode, benchUrl, rankToIndex, seedLinks } from '../../src/lab/dataset/bench-links.ts';

describe('bench links', () => {
  it('seeds exactly the codes and URLs the driver computes', { timeout: 30_000 }, async () => {
    const db = await PGlite.create();
    try {
      for (const m of loadMigrations(MIGRATIONS_DIR)) await db.exec(m.sql);
      const seen: number[] = [];
      await seedLinks(db, 1234, (n) => seen.push(n));
      expect(seen.at(-1)).toBe(1234);
      const rows = (await db.query<{ code: string; url: string }>('select code, url from links order by code')).rows;
      expect(rows).toHaveLength(1234);
      rows.forEach((row, i) => {
        expect(row.code).toBe(benchCode(i));
        expect(row.url).toBe(benchUrl(i));
      });
    } finally {
      await db.close();
    }
  });

  it('makes codes the app accepts, sorted like their indexes', () => {
    for (const i of [0, 1, 99_999, 9_999_999]) expect(benchCode(i)).toMatch(CODE_PATTERN);
    expect(benchCode(10) > benchCode(9)).toBe(true);
  });

  it('maps ranks onto every index exactly once', () => {
    for (const n of [1, 7, 1000, 1_000_003 * 2]) {
      const toIndex = rankToIndex(n);
      const limit = Math.min(n, 5000);
      const hit = new Set<number>();
      for (let r = 0; r < limit; r++) {
        const i = toIndex(r);
        expect(i).toBeGreaterThanOrEqual(0);
        expect(i).toBeLessThan(n);
        hit.add(i);
      }
      expect(hit.size).toBe(limit);
    }
  });

  it('refuses a count outside the supported range', async () => {
    await expect(seedLinks({ query: async () => ({ rows: [{ id: 1 }] }) }, 0)).rejects.toThrow(RangeError);
  });
});
