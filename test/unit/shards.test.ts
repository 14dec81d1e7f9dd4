// Rung 10's pure parts: the shard key's hash and id layout, the map's ranges, the settings
// (DATABASE_SHARDS) and the topology's flags.
import { describe, expect, it } from 'vitest';
import { loadServerConfig } from '../../src/kit/config.ts';
import { ID_EPOCH_MS, LOGICAL_SHARDS, logicalOfId, logicalOfKey, logicalOfText, SEQUENCE_BITS } from '../../src/kit/db/shard-key.ts';
import { evenAssignment, rangesOf } from '../../src/kit/db/shard-map.ts';
import { buildTopology } from '../../src/topology/topology.ts';

const SECRET = 'x'.repeat(40);

describe('shard key', () => {
  it('hashes 100,000 codes onto 1,024 logical shards, and 4 clusters of even ranges within 2% of the mean', () => {
    const counts = new Array<number>(LOGICAL_SHARDS).fill(0);
    for (let i = 0; i < 100_000; i++) counts[logicalOfText(`c${i.toString(36)}`)]!++;
    const mean = 100_000 / LOGICAL_SHARDS;
    expect(Math.max(...counts) / mean).toBeLessThan(1.5);
    expect(Math.min(...counts) / mean).toBeGreaterThan(0.5);
    const clusterOf = evenAssignment(['a', 'b', 'c', 'd']);
    const rows = new Map<string, number>();
    counts.forEach((n, l) => rows.set(clusterOf[l]!, (rows.get(clusterOf[l]!) ?? 0) + n));
    expect(Math.max(...rows.values()) / (100_000 / 4)).toBeLessThanOrEqual(1.02);
  });

  it('is stable (md5, the same in SQL) and separates owners from codes', () => {
    // md5('abc') = 900150983cd24fb0...: 0x90015098 mod 1024 = 152
    expect(logicalOfText('abc')).toBe(0x90015098 % 1024);
    expect(logicalOfKey({ link: 'abc' })).toBe(logicalOfText('abc'));
    expect(logicalOfKey({ owner: 7 })).toBe(logicalOfText('owner:7'));
  });

  it('reads the logical shard out of an id (time << 23 | shard << 13 | sequence)', () => {
    const ms = BigInt(Date.now() - ID_EPOCH_MS);
    for (const logical of [0, 1, 512, 1023]) {
      const id = (ms << 23n) | (BigInt(logical) << BigInt(SEQUENCE_BITS)) | 8191n;
      expect(logicalOfId(id.toString())).toBe(logical);
      expect(logicalOfKey({ linkId: id })).toBe(logical);
      expect(id < 1n << 63n).toBe(true);
    }
  });
});

describe('shard map', () => {
  it('spreads logical shards over clusters in even contiguous ranges', () => {
    const map = { version: 1, logicalShards: 1024, clusterOf: evenAssignment(['a', 'b', 'c']) };
    expect([...rangesOf(map)]).toEqual([
      ['a', [[0, 341]]],
      ['b', [[342, 682]]],
      ['c', [[683, 1023]]],
    ]);
    const moved = [...map.clusterOf];
    moved[10] = 'c';
    expect(rangesOf({ ...map, clusterOf: moved }).get('a')).toEqual([
      [0, 9],
      [11, 341],
    ]);
  });
});

describe('DATABASE_SHARDS', () => {
  it('parses clusters with replicas and keeps them out of logs', () => {
    const c = loadServerConfig({}, { LADDER_SECRET: SECRET, DATABASE_SHARDS: 'shard1=postgres://u:pw@h:1/links|postgres://u:pw@h:2/links;shard2=postgres://u:pw@h:3/links' });
    expect(c.shards).toEqual([
      { name: 'shard1', primaryUrl: 'postgres://u:pw@h:1/links', replicaUrls: ['postgres://u:pw@h:2/links'] },
      { name: 'shard2', primaryUrl: 'postgres://u:pw@h:3/links', replicaUrls: [] },
    ]);
    expect(JSON.stringify(c)).not.toContain('pw');
    expect(loadServerConfig({}, { LADDER_SECRET: SECRET }).shards).toEqual([]);
  });

  it('refuses bad names, repeated names and bad URLs, naming the setting and hiding passwords', () => {
    for (const bad of ['Shard1=postgres://h:1/links', 'shard1=postgres://h:1/links;shard1=postgres://h:2/links', 'shard1=http://u:secret@h/x', '=postgres://h:1/links']) {
      expect(() => loadServerConfig({}, { LADDER_SECRET: SECRET, DATABASE_SHARDS: bad })).toThrow(/DATABASE_SHARDS/);
    }
    expect(() => loadServerConfig({}, { LADDER_SECRET: SECRET, DATABASE_SHARDS: 'shard1=http://u:secret@h/x' })).not.toThrow(/secret/);
  });
});

describe('rung 10 topology', () => {
  it('is built: 2 shards unless told, without the cache tier and the queue, and says so', () => {
    const t = buildTopology({ rung: 10 });
    expect(t.shards).toBe(2);
    expect(t.features.shards).toBe(true);
    expect(t.features.cache).toBe(false);
    expect(t.features.queue).toBe(false);
    expect(t.skipped.join(' ')).toMatch(/cache tier.*queues/);
    expect(buildTopology({ rung: 10, shards: 4, replicas: 0 }).database.replicas).toBe(0);
  });

  it('refuses --shards below rung 10, out-of-range counts, --ha and --pgbouncer with shards', () => {
    expect(() => buildTopology({ rung: 9, shards: 2 })).toThrow(/shards/);
    expect(() => buildTopology({ rung: 10, shards: 0 })).toThrow(/shards/);
    expect(() => buildTopology({ rung: 10, shards: 9 })).toThrow(/shards/);
    expect(() => buildTopology({ rung: 10, shards: 1.5 })).toThrow(/shards/);
    expect(() => buildTopology({ rung: 10, ha: true })).toThrow(/Patroni/);
    expect(() => buildTopology({ rung: 10, pgbouncer: true })).toThrow(/PgBouncer/);
    expect(buildTopology({ rung: 9 }).shards).toBe(0);
  });
});
