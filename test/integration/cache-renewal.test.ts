// L1 copies that are still being read are renewed from Redis in the background before they
// run out, so a hot link never expires onto the request path; a copy nobody reads runs out.
// One web server with the cache tier on a real redis-server, L1 copies living 2 s.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sumSeries } from '../../src/lab/measure/prom-text.ts';
import { signedUpClient, startTestServer, type Client, type TestServer } from '../support/app.ts';
import { TestRedis } from '../support/redis-server.ts';

let redis: TestRedis;
let server: TestServer;
let owner: Client;

beforeAll(async () => {
  redis = await TestRedis.start();
  server = await startTestServer({ cacheRedisUrl: redis.url, cacheL1TtlMs: 2000 });
  owner = await signedUpClient(server.url);
}, 60_000);

afterAll(async () => {
  await server?.close();
  await redis?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function counts() {
  const text = [await (await fetch(`${server.url}/metrics`)).text()];
  return {
    /** Lookups that reached Redis on the request path (an L1 miss that was answered there or loaded). */
    redis: sumSeries(text, 'ladder_cache_requests_total', 'tier="redis"'),
    l1Hits: sumSeries(text, 'ladder_cache_requests_total', 'tier="l1",result="hit"'),
    renewals: sumSeries(text, 'ladder_cache_l1_renewals_total'),
  };
}

async function createLink(url: string): Promise<string> {
  const res = await owner.post('/api/links', { url });
  expect(res.status).toBe(201);
  return (res.json as { code: string }).code;
}

async function open(code: string): Promise<string | null> {
  const res = await fetch(`${server.url}/${code}`, { redirect: 'manual' });
  await res.arrayBuffer();
  expect(res.status).toBe(302);
  return res.headers.get('location');
}

describe('L1 renewal', () => {
  it('renews a copy that is read near the end of its life; an unread copy runs out', async () => {
    const hot = await createLink('https://example.com/hot');
    const cold = await createLink('https://example.com/cold');
    expect(await open(hot)).toBe('https://example.com/hot');
    expect(await open(cold)).toBe('https://example.com/cold');
    const before = await counts();
    // Four L1 lives of reads, every 25 ms: each is answered from L1. Without renewal the
    // copy would run out three or four times, each time onto the request path; one is
    // allowed for a machine so loaded that no read came in a copy's last 200 ms.
    const started = Date.now();
    let reads = 0;
    while (Date.now() - started < 8000) {
      expect(await open(hot)).toBe('https://example.com/hot');
      reads++;
      await sleep(25);
    }
    const mid = await counts();
    const lookups = mid.redis - before.redis;
    expect(lookups, 'Redis lookups on the request path').toBeLessThanOrEqual(1);
    expect(mid.l1Hits - before.l1Hits, 'L1 hits').toBe(reads - lookups);
    expect(mid.renewals - before.renewals, 'renewals').toBeGreaterThanOrEqual(3);
    // Nobody read the cold link for eight seconds: its copy ran out, so Redis answers.
    expect(await open(cold)).toBe('https://example.com/cold');
    const after = await counts();
    expect(after.redis - mid.redis, 'Redis lookups for the cold link').toBe(1);
  });

  it('an edit still reaches the next read of a copy that is being renewed', async () => {
    const code = await createLink('https://example.com/before');
    expect(await open(code)).toBe('https://example.com/before');
    const edited = owner.patch(`/api/links/${code}`, { url: 'https://example.com/after' });
    // Reads go on while the edit commits and invalidates; once it has answered, none is old.
    let done = false;
    void edited.then(() => (done = true));
    while (!done) {
      expect(['https://example.com/before', 'https://example.com/after']).toContain(await open(code));
      await sleep(20);
    }
    expect((await edited).status).toBe(200);
    for (let i = 0; i < 40; i++) {
      expect(await open(code)).toBe('https://example.com/after');
      await sleep(50);
    }
  });
});
