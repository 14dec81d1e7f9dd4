import { describe, expect, it } from 'vitest';
import { L1Cache } from '../../src/kit/cache/l1-cache.ts';
import { FILTER_BITS, FILTER_HASHES, filterPositions } from '../../src/kit/cache/membership-filter.ts';
import { parsePosition, positionText } from '../../src/kit/cache/cache-scripts.ts';

describe('L1Cache', () => {
  it('stays within its byte bound, evicting the least recently used first', () => {
    const evicted: number[] = [];
    const l1 = new L1Cache(1000, (n) => evicted.push(n));
    const now = 1_000;
    for (const k of ['a', 'b', 'c']) l1.set(k, k, 200, 60_000, now + 50_000, now);
    expect(l1.size).toBe(3);
    expect(l1.get('a', now)?.value).toBe('a'); // a is now the most recently used
    l1.set('d', 'd', 200, 60_000, now + 50_000, now);
    expect(l1.bytes).toBeLessThanOrEqual(1000);
    expect(l1.get('b', now)).toBeUndefined();
    expect(l1.get('a', now)?.value).toBe('a');
    expect(evicted.reduce((x, y) => x + y, 0)).toBeGreaterThan(0);
  });

  it('forgets an entry once it expires, and one too big to keep', () => {
    const l1 = new L1Cache(1000);
    l1.set('k', null, 4, 100, 50, 0);
    expect(l1.get('k', 99)).toBeDefined();
    expect(l1.get('k', 100)).toBeUndefined();
    expect(l1.bytes).toBe(0);
    l1.set('big', 'x', 5000, 100, 50, 0);
    expect(l1.size).toBe(0);
  });

  it('delete and clear give the bytes back', () => {
    const l1 = new L1Cache(10_000);
    l1.set('a', 1, 10, 1000, 500, 0);
    l1.set('b', 2, 10, 1000, 500, 0);
    expect(l1.delete('a')).toBe(true);
    expect(l1.delete('a')).toBe(false);
    l1.clear();
    expect(l1.bytes).toBe(0);
    expect(l1.size).toBe(0);
  });
});

describe('membership filter positions', () => {
  it('are stable, in range, and differ between members', () => {
    const a = filterPositions('Ab3dE9xQ');
    expect(a).toHaveLength(FILTER_HASHES);
    expect(filterPositions('Ab3dE9xQ')).toEqual(a);
    for (const p of a) expect(p >= 0 && p < FILTER_BITS && Number.isInteger(p)).toBe(true);
    expect(filterPositions('Ab3dE9xR')).not.toEqual(a);
  });
});

describe('positions for the scripts', () => {
  it('are fixed-width hex, so string order is numeric order', () => {
    const xs = [0n, 1n, 0xffn, 0x1_0000_0000n, (1n << 64n) - 1n];
    const texts = xs.map(positionText);
    expect([...texts].sort()).toEqual(texts);
    expect(texts.map(parsePosition)).toEqual(xs);
    expect(parsePosition('')).toBe(0n);
  });
});
