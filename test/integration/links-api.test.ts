import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sumSeries } from '../../src/lab/measure/prom-text.ts';
import { Client, signedUpClient, startTestServer, type TestServer } from '../support/app.ts';
import { send } from '../support/raw-http.ts';

let server: TestServer;
let alice: Client;
let bob: Client;
beforeAll(async () => {
  server = await startTestServer();
  alice = await signedUpClient(server.url);
  bob = await signedUpClient(server.url);
});
afterAll(async () => server.close());

async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || performance.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('links', () => {
  it('creates with a generated code, redirects, counts the click in stats', async () => {
    const created = await alice.post('/api/links', { url: 'https://example.com/page?q=1' });
    expect(created.status).toBe(201);
    const { code, shortUrl, createdAt, url } = created.json;
    expect(code).toMatch(/^[A-Za-z0-9]{8}$/);
    expect(url).toBe('https://example.com/page?q=1');
    expect(shortUrl).toBe(`${server.url}/${code}`);
    expect(Number.isNaN(Date.parse(createdAt))).toBe(false);

    const anon = new Client(server.url);
    const redirect = await anon.get(`/${code}`);
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('https://example.com/page?q=1');

    const stats = await waitFor(
      () => alice.get(`/api/links/${code}/stats`),
      (r) => r.json?.clicks === 1,
    );
    expect(stats.status).toBe(200);
    expect(stats.json.code).toBe(code);
    expect(stats.json.clicks).toBe(1);
    expect(stats.json.daily).toEqual([{ day: new Date().toISOString().slice(0, 10), clicks: 1 }]);
    const got = await alice.get(`/api/links/${code}`);
    expect(got.json).toMatchObject({ code, url, shortUrl, createdAt, clicks: 1 });
  });

  it('many clicks from many requests are all counted', async () => {
    const { json } = await alice.post('/api/links', { url: 'https://example.com/many' });
    const anon = new Client(server.url);
    await Promise.all(Array.from({ length: 50 }, () => anon.get(`/${json.code}`)));
    const stats = await waitFor(() => alice.get(`/api/links/${json.code}/stats`), (r) => r.json?.clicks === 50);
    expect(stats.json.clicks).toBe(50);
  });

  it('concurrent redirects share database reads, each still gets its own link', async () => {
    const links = await Promise.all(Array.from({ length: 20 }, (_, i) => alice.post('/api/links', { url: `https://example.com/batch/${i}` })));
    const codes = links.map((l) => l.json.code as string);
    const reads = async () => sumSeries(await (await fetch(`${server.url}/metrics`)).text(), 'ladder_db_reads_total');
    const before = await reads();
    const anon = new Client(server.url);
    const asked = Array.from({ length: 100 }, (_, i) => (i % 5 === 4 ? 'zzzzzzzz' : codes[i % codes.length]!));
    const answers = await Promise.all(asked.map((code) => anon.get(`/${code}`)));
    answers.forEach((res, i) => {
      if (asked[i] === 'zzzzzzzz') expect(res.status).toBe(404);
      else expect([res.status, res.headers.get('location')]).toEqual([302, `https://example.com/batch/${codes.indexOf(asked[i]!)}`]);
    });
    // 100 lookups, fewer statements: the ones that arrived in the same loop turn went together.
    const used = (await reads()) - before;
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThan(100);
  });

  it('a redirect answered before the framework is the route\'s redirect: the same headers, the Host check, the click', async () => {
    const { json } = await alice.post('/api/links', { url: 'https://example.com/fast' });
    const anon = new Client(server.url);
    // A query string takes the route; a bare code is answered before Fastify (the fast path).
    const headersOf = async (path: string) => {
      const res = await anon.get(path);
      expect([res.status, res.headers.get('location')]).toEqual([302, 'https://example.com/fast']);
      const h = Object.fromEntries(res.headers);
      expect(h['x-request-id']).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
      delete h.date;
      delete h['x-request-id'];
      return h;
    };
    const fast = await headersOf(`/${json.code}`);
    expect(fast).toEqual(await headersOf(`/${json.code}?from=route`));
    expect(fast).toMatchObject({ 'cache-control': 'private, no-store', 'x-frame-options': 'DENY', 'content-length': '0' });
    const echoed = await fetch(`${server.url}/${json.code}`, { redirect: 'manual', headers: { 'x-request-id': 'trace-7' } });
    expect([echoed.status, echoed.headers.get('x-request-id')]).toEqual([302, 'trace-7']);
    // A Host that is not a host[:port] is refused there as everywhere (400), and counts no click.
    const raw = await send(Number(new URL(server.url).port), { method: 'GET', path: `/${json.code}`, headers: [['Host', 'not a host']] });
    expect(raw.ok && raw.res.status).toBe(400);
    const stats = await waitFor(() => alice.get(`/api/links/${json.code}/stats`), (r) => r.json?.clicks === 3);
    expect(stats.json.clicks).toBe(3);
    // Both paths are counted under the route in the request metrics.
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(sumSeries(text, 'http_request_duration_seconds_count', 'route="/:code",status_code="302"')).toBeGreaterThanOrEqual(3);
  });

  it('HEAD does not count a click', async () => {
    const { json } = await alice.post('/api/links', { url: 'https://example.com/head' });
    const res = await fetch(`${server.url}/${json.code}`, { method: 'HEAD', redirect: 'manual' });
    expect(res.status).toBe(302);
    await new Promise((r) => setTimeout(r, 300));
    expect((await alice.get(`/api/links/${json.code}/stats`)).json.clicks).toBe(0);
  });

  it('accepts a chosen code and refuses it twice (409)', async () => {
    const code = `mine-${Date.now().toString(36)}`;
    expect((await alice.post('/api/links', { url: 'https://example.com/a', code })).json.code).toBe(code);
    const again = await bob.post('/api/links', { url: 'https://example.com/b', code });
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('CODE_TAKEN');
    const rows = await server.sql('select url from links where code = $1', [code]);
    expect(rows).toEqual([{ url: 'https://example.com/a' }]);
  });

  it('lists own links newest first with a cursor, and never another user\'s', async () => {
    const c = await signedUpClient(server.url);
    const codes: string[] = [];
    for (let i = 0; i < 5; i++) codes.push((await c.post('/api/links', { url: `https://example.com/${i}` })).json.code);
    await bob.post('/api/links', { url: 'https://example.com/bob' });
    const page1 = await c.get('/api/links?limit=2');
    expect(page1.status).toBe(200);
    expect(page1.json.items.map((i: { code: string }) => i.code)).toEqual([codes[4], codes[3]]);
    expect(page1.json.items[0]).toMatchObject({ url: 'https://example.com/4', clicks: 0 });
    const page2 = await c.get(`/api/links?limit=2&cursor=${page1.json.nextCursor}`);
    expect(page2.json.items.map((i: { code: string }) => i.code)).toEqual([codes[2], codes[1]]);
    const page3 = await c.get(`/api/links?limit=2&cursor=${page2.json.nextCursor}`);
    expect(page3.json.items.map((i: { code: string }) => i.code)).toEqual([codes[0]]);
    expect(page3.json.nextCursor).toBeNull();
    const all = await c.get('/api/links');
    expect(all.json.items).toHaveLength(5);
  });

  it('edits and deletes; the redirect follows', async () => {
    const { json } = await alice.post('/api/links', { url: 'https://example.com/old' });
    const edited = await alice.patch(`/api/links/${json.code}`, { url: 'https://example.com/new' });
    expect(edited.status).toBe(200);
    expect(edited.json).toMatchObject({ code: json.code, url: 'https://example.com/new' });
    expect((await new Client(server.url).get(`/${json.code}`)).headers.get('location')).toBe('https://example.com/new');
    expect((await alice.del(`/api/links/${json.code}`)).status).toBe(204);
    const gone = await new Client(server.url).get(`/${json.code}`);
    expect(gone.status).toBe(404);
    expect(gone.headers.get('content-type')).toMatch(/text\/html/);
    expect((await alice.get(`/api/links/${json.code}`)).status).toBe(404);
  });

  it("another user's link is a 404 for every route, and stays untouched", async () => {
    const { json } = await alice.post('/api/links', { url: 'https://example.com/private' });
    for (const res of [
      await bob.get(`/api/links/${json.code}`),
      await bob.get(`/api/links/${json.code}/stats`),
      await bob.patch(`/api/links/${json.code}`, { url: 'https://evil.example/' }),
      await bob.del(`/api/links/${json.code}`),
    ]) {
      expect(res.status).toBe(404);
      expect(res.json.error.code).toBe('NOT_FOUND');
    }
    expect((await alice.get(`/api/links/${json.code}`)).json.url).toBe('https://example.com/private');
  });

  it('link routes need a session', async () => {
    const anon = new Client(server.url);
    for (const res of [
      await anon.get('/api/links'),
      await anon.post('/api/links', { url: 'https://example.com' }),
      await anon.get('/api/links/abcdef'),
      await anon.get('/api/me'),
    ]) {
      expect(res.status).toBe(401);
      expect(res.json.error.code).toBe('UNAUTHENTICATED');
    }
  });
});

describe('the redirect when the database cannot answer', () => {
  it('the fast path hands it to the route, which answers 503 in the catalogue shape', async () => {
    const down = await startTestServer({}, { databaseUrl: 'postgres://ladder@127.0.0.1:1/none' });
    try {
      const res = await new Client(down.url).get('/abcdefgh');
      expect(res.status).toBe(503);
      expect(res.json.error.code).toBe('SERVICE_UNAVAILABLE');
    } finally {
      await down.close();
    }
  });
});
