// The cache tier on a Redis in cluster mode (one node serving every slot, as ElastiCache in
// cluster mode with one shard): every script call passes its keys in KEYS, so a node refuses
// any call whose keys span two slots (CROSSSLOT); and every key the cache writes is in one
// slot, so that the node a call is routed to holds all of them.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bumpCacheGeneration } from '../../src/kit/cache/cache-scripts.ts';
import { sumSeries } from '../../src/lab/measure/prom-text.ts';
import { signedUpClient, startTestServer, type Client, type TestServer } from '../support/app.ts';
import { TestRedis } from '../support/redis-server.ts';

let redis: TestRedis;
let admin: Redis;
let server: TestServer;
let owner: Client;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  redis = await TestRedis.start(['--cluster-enabled', 'yes']);
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
  for (let i = 0; !String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok'); i++) {
    if (i > 200) throw new Error('the one-node cluster did not become ok');
    await sleep(50);
  }
  server = await startTestServer({ cacheRedisUrl: redis.url });
  owner = await signedUpClient(server.url);
}, 60_000);

afterAll(async () => {
  await server?.close();
  admin?.disconnect();
  await redis?.stop();
});

async function metrics(): Promise<string> {
  return (await fetch(`${server.url}/metrics`)).text();
}

async function open(code: string): Promise<number> {
  const res = await fetch(`${server.url}/${code}`, { redirect: 'manual' });
  await res.arrayBuffer();
  return res.status;
}

describe('the cache on Redis Cluster', () => {
  it('runs lookups, fills, invalidations, filters and a new generation with every key in one slot', async () => {
    const codes: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await owner.post('/api/links', { url: `https://example.com/c${i}` });
      expect(res.status).toBe(201);
      codes.push((res.json as { code: string }).code);
    }
    for (const code of codes) expect(await open(code)).toBe(302); // lookup, lease, fill
    expect((await owner.patch(`/api/links/${codes[0]}`, { url: 'https://example.com/c0-edited' })).status).toBe(200);
    expect(await open(codes[0]!)).toBe(302); // after the invalidation
    // The codes filter is built in the background; unknown codes are then answered by it.
    for (let i = 0; i < 100 && sumSeries(await metrics(), 'ladder_cache_filter_rejections_total') === 0; i++) {
      expect(await open(`zz${i}nope`)).toBe(404);
      await sleep(50);
    }
    await bumpCacheGeneration(admin);
    await sleep(100);
    for (const code of codes) expect(await open(code)).toBe(302); // refilled in the new generation

    const text = await metrics();
    expect(sumSeries(text, 'ladder_cache_filter_rejections_total')).toBeGreaterThan(0);
    expect(sumSeries(text, 'ladder_cache_loads_total', 'result="ok"')).toBeGreaterThanOrEqual(6);
    expect(sumSeries(text, 'ladder_cache_invalidations_total', 'source="received"')).toBeGreaterThanOrEqual(1);
    // A refused call (CROSSSLOT) would have sent the read to the database instead.
    expect(sumSeries(text, 'ladder_cache_bypasses_total')).toBe(0);
    expect(sumSeries(text, 'ladder_background_errors_total', 'component="cache"')).toBe(0);

    const keys = await admin.keys('*');
    expect(keys.length).toBeGreaterThan(5);
    const slots = new Set<number>();
    for (const key of keys) slots.add(Number(await admin.call('CLUSTER', 'KEYSLOT', key)));
    expect([...slots], `keys: ${keys.join(' ')}`).toHaveLength(1);
  }, 60_000);
});
