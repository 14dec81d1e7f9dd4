// Rung 7's shared state: two Links servers on one database and one real redis-server share
// sessions and rate limits; when Redis stops (SIGSTOP) or dies (SIGKILL), redirects go on,
// session routes answer 503 fast, and everything comes back by itself with Redis.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ServerConfig } from '../../src/kit/config.ts';
import { Client, startTestServer, uniqueEmail, type TestServer } from '../support/app.ts';
import { TestRedis } from '../support/redis-server.ts';

const PASSWORD = 'correct horse battery';
const LOGIN_LIMIT = 5;

let redis: TestRedis;
let admin: Redis; // the test's own view of Redis
let a: TestServer;
let b: TestServer;

function serverConfig(): Partial<ServerConfig> {
  return {
    redisUrl: redis.url,
    rateLimits: {
      signup: { limit: 1000, windowMs: 60_000 },
      login: { limit: LOGIN_LIMIT, windowMs: 60_000 },
      createLink: { limit: 1000, windowMs: 60_000 },
    },
  };
}

beforeAll(async () => {
  redis = await TestRedis.start();
  admin = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  admin.on('error', () => undefined); // Redis is stopped on purpose below
  await admin.connect();
  a = await startTestServer(serverConfig());
  b = await startTestServer(serverConfig(), { databaseUrl: a.databaseUrl });
});
afterAll(async () => {
  admin?.disconnect();
  await a?.close();
  await b?.close();
  await redis?.stop();
});

// Every request here comes from 127.0.0.1, so each test starts from empty limit windows.
beforeEach(async () => {
  if (admin.status !== 'ready') return;
  const keys = await admin.keys('ladder:rl:*');
  if (keys.length) await admin.del(...keys);
});

/** A signed-up user: email, and a client logged in through `server`. */
async function newUser(server: TestServer): Promise<{ email: string; client: Client }> {
  const client = new Client(server.url);
  const email = uniqueEmail();
  const res = await client.post('/api/signup', { email, password: PASSWORD });
  expect(res.status).toBe(201);
  return { email, client };
}

/** The same browser (cookie) pointed at another server. */
function sameBrowser(c: Client, server: TestServer): Client {
  const other = new Client(server.url);
  other.cookie = c.cookie;
  return other;
}

async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await f();
  return { ms: performance.now() - t, value };
}

/** Polls until f() is true; returns the ms it took, or throws after timeoutMs. */
async function until(f: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t = performance.now();
  for (;;) {
    if (await f()) return performance.now() - t;
    if (performance.now() - t > timeoutMs) throw new Error(`not true within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('shared sessions', () => {
  it('a login on one server is a login on the other; logout on either ends it on both', async () => {
    const { email, client: onA } = await newUser(a);
    const onB = sameBrowser(onA, b);
    const me = await onB.get('/api/me');
    expect(me.status).toBe(200);
    expect(me.json.user.email).toBe(email);

    // Writes through B are the same user's on A.
    const created = await onB.post('/api/links', { url: 'https://example.com/shared' });
    expect(created.status).toBe(201);
    const listed = await onA.get('/api/links');
    expect(listed.json.items.map((l: { code: string }) => l.code)).toContain(created.json.code);

    // Login rotates the id: the old cookie stops working everywhere, the new one works everywhere.
    const before = onA.cookie;
    expect((await onA.post('/api/login', { email, password: PASSWORD })).status).toBe(200);
    expect(onA.cookie).not.toBe(before);
    const stale = new Client(b.url);
    stale.cookie = before;
    expect((await stale.get('/api/me')).status).toBe(401);
    const fresh = sameBrowser(onA, b);
    expect((await fresh.get('/api/me')).status).toBe(200);

    // Logout on B destroys it server-side, so A refuses the same cookie too.
    const kept = onA.cookie;
    expect((await fresh.post('/api/logout')).status).toBe(204);
    const replay = new Client(a.url);
    replay.cookie = kept;
    expect((await replay.get('/api/me')).status).toBe(401);
  });

  it('keeps sessions in Redis only, under ladder:sess:<id>, with the idle ttl', async () => {
    const { client } = await newUser(a);
    const keys = await admin.keys('ladder:sess:*');
    expect(keys.length).toBeGreaterThan(0);
    const id = decodeURIComponent(client.cookie!.split('=')[1]!).split('.')[0]!;
    const ttl = await admin.ttl(`ladder:sess:${id}`);
    expect(ttl).toBeGreaterThan(24 * 3600 - 60);
    expect(ttl).toBeLessThanOrEqual(24 * 3600);
  });

  it('a session idle longer than the idle timeout is gone', async () => {
    const short = await startTestServer(
      { ...serverConfig(), sessionIdleSeconds: 1 },
      { databaseUrl: a.databaseUrl },
    );
    try {
      const { client } = await newUser(short);
      expect((await client.get('/api/me')).status).toBe(200);
      expect((await sameBrowser(client, a).get('/api/me')).status).toBe(200);
      await new Promise((r) => setTimeout(r, 1600));
      expect((await client.get('/api/me')).status).toBe(401);
    } finally {
      await short.close();
    }
  });
});

describe('lifecycle', () => {
  it('a server closes its Redis connection when it shuts down', async () => {
    const named = async () => (String(await admin.client('LIST')).match(/ name=ladder-state /g) ?? []).length;
    const before = await named();
    const extra = await startTestServer(serverConfig(), { databaseUrl: a.databaseUrl });
    expect(await named()).toBe(before + 1);
    await extra.close();
    await until(async () => (await named()) === before, 2000);
  });

  it('exports whether Redis is up', async () => {
    expect(await (await fetch(`${a.url}/metrics`)).text()).toMatch(/^ladder_redis_up\{role="state"\} 1$/m);
  });
});

describe('shared rate limits', () => {
  it(`${LOGIN_LIMIT} logins split over both servers use up the limit on both`, async () => {
    const { email } = await newUser(a);
    for (let i = 0; i < LOGIN_LIMIT; i++) {
      const server = i % 2 === 0 ? a : b;
      const res = await new Client(server.url).post('/api/login', { email, password: 'wrong password' });
      expect(res.status, `attempt ${i + 1} on ${server === a ? 'A' : 'B'}`).toBe(401);
    }
    for (const server of [a, b]) {
      const res = await new Client(server.url).post('/api/login', { email, password: PASSWORD });
      expect(res.status).toBe(429);
      expect(res.json.error.code).toBe('RATE_LIMITED');
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
  });
});

describe('Redis outage', () => {
  /**
   * Runs the outage checks: redirects keep working under a steady stream of requests to
   * both servers while every session route on each server answers 503 within 1 s.
   */
  async function duringOutage(code: string, loggedIn: Client, email: string): Promise<void> {
    let redirects = 0;
    const failures: string[] = [];
    let stop = false;
    const redirectLoop = async (server: TestServer) => {
      while (!stop) {
        const res = await fetch(`${server.url}/${code}`, { redirect: 'manual' });
        await res.arrayBuffer();
        if (res.status === 302) redirects++;
        else failures.push(`${res.status}`);
      }
    };
    const loops = [redirectLoop(a), redirectLoop(b)];
    try {
      for (const server of [a, b]) {
        const browser = sameBrowser(loggedIn, server);
        const checks: [string, () => ReturnType<Client['get']>][] = [
          ['GET /api/me', () => browser.get('/api/me')],
          ['GET /api/links', () => browser.get('/api/links')],
          ['POST /api/links', () => browser.post('/api/links', { url: 'https://example.com/during' })],
        ];
        // Login is the slowest case (a rate-limit hit, a password check, then the session
        // write): on B it goes first, so it also pays for noticing that Redis is gone.
        const login: [string, () => ReturnType<Client['get']>] = [
          'POST /api/login',
          () => browser.post('/api/login', { email, password: PASSWORD }),
        ];
        if (server === a) checks.push(login);
        else checks.unshift(login);
        for (const [what, f] of checks) {
          const { ms, value: res } = await timed(f);
          if (process.env.REPORT_TIMINGS)
            console.log(`${server === a ? 'A' : 'B'} ${what}: ${res.status} in ${ms.toFixed(0)} ms`);
          expect(res.status, `${what}: ${res.text}`).toBe(503);
          expect(res.json.error.code).toBe('SERVICE_UNAVAILABLE');
          expect(ms, `${what} took ${ms.toFixed(0)} ms`).toBeLessThan(1000);
        }
        // Readiness is about the database: a server without Redis still serves redirects.
        expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      }
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    expect(failures).toEqual([]);
    expect(redirects).toBeGreaterThan(10);
    if (process.env.REPORT_TIMINGS)
      console.log(`redirects during the outage: ${redirects}, failures: ${failures.length}`);
  }

  /** ms until a new login works on both servers. */
  async function recovery(email: string): Promise<number> {
    return until(async () => {
      for (const server of [a, b]) {
        const res = await new Client(server.url).post('/api/login', { email, password: PASSWORD });
        if (res.status !== 200) return false;
      }
      return true;
    }, 5000);
  }

  it('stopped (SIGSTOP): redirects go on, session routes 503 within 1 s, and it all comes back on SIGCONT', async () => {
    const { email, client } = await newUser(a);
    const link = await client.post('/api/links', { url: 'https://example.com/stop' });
    expect(link.status).toBe(201);
    redis.pause();
    try {
      await duringOutage(link.json.code, client, email);
    } finally {
      redis.resume();
    }
    const ms = await recovery(email);
    if (process.env.REPORT_TIMINGS) console.log(`recovered after SIGCONT in ${ms.toFixed(0)} ms`);
    expect(ms).toBeLessThan(3000);
    // Redis kept its data: the session from before the outage is still good, on both servers.
    expect((await client.get('/api/me')).status).toBe(200);
    expect((await sameBrowser(client, b).get('/api/me')).status).toBe(200);
  });

  it('killed (SIGKILL): the same, and after a restart on the same port new logins work by themselves', async () => {
    const { email, client } = await newUser(a);
    const link = await client.post('/api/links', { url: 'https://example.com/kill' });
    expect(link.status).toBe(201);
    await redis.kill();
    try {
      await duringOutage(link.json.code, client, email);
      // Login stays rate-limited while Redis is down, per server (not an open oracle).
      let limited = false;
      for (let i = 0; i <= LOGIN_LIMIT + 1 && !limited; i++) {
        const res = await new Client(a.url).post('/api/login', { email, password: 'wrong password' });
        expect([401, 429]).toContain(res.status);
        limited = res.status === 429;
      }
      expect(limited).toBe(true);
      const metrics = await (await fetch(`${a.url}/metrics`)).text();
      expect(metrics).toMatch(/^ladder_redis_up\{role="state"\} 0$/m);
      expect(Number(/^ladder_rate_limit_fallbacks_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    } finally {
      await redis.restart();
    }
    const ms = await recovery(email);
    if (process.env.REPORT_TIMINGS) console.log(`recovered after restart in ${ms.toFixed(0)} ms`);
    expect(ms).toBeLessThan(3000);
    // The restarted Redis is empty: sessions from before are gone, which is a logout.
    expect((await client.get('/api/me')).status).toBe(401);
  });
});
