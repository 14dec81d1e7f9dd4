import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/lab/driver/seeded-random.ts';
import { ZipfSampler } from '../../src/lab/driver/zipf.ts';

describe('ZipfSampler', () => {
  it('draws rank k about 1/k as often as rank 1 (s = 1)', () => {
    const z = new ZipfSampler(1000, 1);
    const random = seededRandom(42);
    const counts = new Array<number>(1000).fill(0);
    const draws = 200_000;
    for (let i = 0; i < draws; i++) counts[z.next(random)]!++;
    const h = [...Array(1000).keys()].reduce((s, k) => s + 1 / (k + 1), 0);
    for (const rank of [0, 1, 9]) {
      const expected = draws / (rank + 1) / h;
      expect(Math.abs(counts[rank]! - expected) / expected).toBeLessThan(0.05);
    }
    expect(Math.min(...counts.slice(0, 10))).toBeGreaterThan(Math.max(...counts.slice(900)));
  });

  it('stays in range, and s = 0 is uniform', () => {
    const z = new ZipfSampler(10, 0);
    const random = seededRandom(1);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 50_000; i++) {
      const r = z.next(random);
      expect(r).toBeGreaterThanOrEqual(0);
      expect(r).toBeLessThan(10);
      counts[r]!++;
    }
    for (const c of counts) expect(Math.abs(c - 5000)).toBeLessThan(400);
  });

  it('reports the share of the top items', () => {
    const z = new ZipfSampler(100_000, 1);
    expect(z.share(1000)).toBeGreaterThan(0.6);
    expect(z.share(1000)).toBeLessThan(0.63);
    expect(z.share(100_000)).toBe(1);
  });

  it('is deterministic per seed', () => {
    const z = new ZipfSampler(500, 1);
    const a = seededRandom(9);
    const b = seededRandom(9);
    for (let i = 0; i < 100; i++) expect(z.next(a)).toBe(z.next(b));
  });

  it('refuses an empty population', () => {
    expect(() => new ZipfSampler(0, 1)).toThrow(RangeError);
  });
});
