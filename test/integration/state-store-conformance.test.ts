// The conformance suites every SessionStore and RateLimitStore must pass, run against each
// implementation (in-process and Redis), then what only the Redis ones do: failure
// behaviour, script reload, and keeping session ids out of errors.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisConnection, type RedisConnection } from '../../src/kit/redis/redis-connection.ts';
import { RedisStoreError } from '../../src/kit/redis/redis-store-error.ts';
import { MemoryRateLimitStore, type RateLimitStore } from '../../src/kit/security/rate-limiter.ts';
import { RedisRateLimitStore } from '../../src/kit/security/redis-rate-limit-store.ts';
import { RedisSessionStore } from '../../src/kit/session/redis-session-store.ts';
import { MemorySessionStore, type SessionStore } from '../../src/kit/session/session-store.ts';
import { freePort } from '../../src/launcher/state-dir.ts';
import { TestRedis } from '../support/redis-server.ts';

let redis: TestRedis;
let conn: RedisConnection;
let admin: Redis; // the test's own view of Redis, to look at keys

beforeAll(async () => {
  redis = await TestRedis.start();
  conn = createRedisConnection({ url: redis.url, role: 'test' });
  conn.connect();
  expect(await conn.waitReady(5000)).toBe(true);
  admin = new Redis(redis.url);
});
afterAll(async () => {
  admin?.disconnect();
  await conn?.close();
  await redis?.stop();
});

/** A unique key prefix per store, so tests own their keys. */
const prefix = (kind: string) => `ladder:test:${randomBytes(4).toString('hex')}:${kind}:`;
const sessionId = () => randomBytes(24).toString('base64url');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const sessionStores: [string, () => SessionStore][] = [
  ['MemorySessionStore', () => new MemorySessionStore()],
  ['RedisSessionStore', () => new RedisSessionStore(conn.client, prefix('sess'))],
];

describe.each(sessionStores)('SessionStore conformance: %s', (_name, make) => {
  it('has no session for an unknown id', async () => {
    expect(await make().get(sessionId())).toBeUndefined();
  });

  it('returns what was set, tokens included, and keeps sessions apart', async () => {
    const store = make();
    const [a, b] = [sessionId(), sessionId()];
    await store.set(a, { userId: 1, createdAt: 1000, tokens: { s0: '0/16B3748' } }, 60);
    await store.set(b, { userId: 2, createdAt: 2000 }, 60);
    expect(await store.get(a)).toEqual({ userId: 1, createdAt: 1000, tokens: { s0: '0/16B3748' } });
    expect(await store.get(b)).toEqual({ userId: 2, createdAt: 2000 });
  });

  it('overwrites on set', async () => {
    const store = make();
    const id = sessionId();
    await store.set(id, { userId: 1, createdAt: 1000 }, 60);
    await store.set(id, { userId: 1, createdAt: 1000, tokens: { s0: 'x' } }, 60);
    expect(await store.get(id)).toEqual({ userId: 1, createdAt: 1000, tokens: { s0: 'x' } });
  });

  it('forgets a destroyed session; destroying an unknown one is fine', async () => {
    const store = make();
    const id = sessionId();
    await store.set(id, { userId: 1, createdAt: 1000 }, 60);
    await store.destroy(id);
    expect(await store.get(id)).toBeUndefined();
    await store.destroy(sessionId());
  });

  it('expires a session after its ttl, and a set refreshes the ttl', async () => {
    const store = make();
    const [gone, kept] = [sessionId(), sessionId()];
    await store.set(gone, { userId: 1, createdAt: 1000 }, 1);
    await store.set(kept, { userId: 2, createdAt: 1000 }, 1);
    await sleep(600);
    await store.set(kept, { userId: 2, createdAt: 1000 }, 1);
    await sleep(600);
    expect(await store.get(gone)).toBeUndefined();
    expect(await store.get(kept)).toEqual({ userId: 2, createdAt: 1000 });
  });
});

const rateLimitStores: [string, () => RateLimitStore][] = [
  ['MemoryRateLimitStore', () => new MemoryRateLimitStore()],
  [
    'RedisRateLimitStore',
    () =>
      new RedisRateLimitStore(conn.client, {
        prefix: prefix('rl'),
        onFallback: (err) => {
          throw new Error(`fell back with Redis up: ${err.message}`);
        },
      }),
  ],
];

describe.each(rateLimitStores)('RateLimitStore conformance: %s', (_name, make) => {
  it('counts hits per key within a window and says when it resets', async () => {
    const store = make();
    const first = await store.hit('login:10.0.0.1', 60_000);
    expect(first.count).toBe(1);
    expect(first.resetMs).toBeGreaterThan(59_000);
    expect(first.resetMs).toBeLessThanOrEqual(60_000);
    expect((await store.hit('login:10.0.0.1', 60_000)).count).toBe(2);
    const third = await store.hit('login:10.0.0.1', 60_000);
    expect(third.count).toBe(3);
    expect(third.resetMs).toBeLessThanOrEqual(first.resetMs);
    expect((await store.hit('login:10.0.0.2', 60_000)).count).toBe(1);
    expect((await store.hit('signup:10.0.0.1', 60_000)).count).toBe(1);
  });

  it('starts a new window when the old one has passed', async () => {
    const store = make();
    await store.hit('k', 300);
    expect((await store.hit('k', 300)).count).toBe(2);
    await sleep(400);
    const next = await store.hit('k', 300);
    expect(next.count).toBe(1);
    expect(next.resetMs).toBeGreaterThan(200);
  });

  it('counts concurrent hits exactly once each', async () => {
    const store = make();
    const results = await Promise.all(Array.from({ length: 50 }, () => store.hit('burst', 60_000)));
    expect(results.map((r) => r.count).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
  });

  it('keeps hostile keys apart (colons, spaces, IPv6, glob characters)', async () => {
    const store = make();
    const keys = ['login:::1', 'login:* ', 'login:?[a]', 'login:\n\r', 'login:' + 'x'.repeat(300)];
    for (const k of keys) expect((await store.hit(k, 60_000)).count).toBe(1);
    for (const k of keys) expect((await store.hit(k, 60_000)).count).toBe(2);
  });
});

describe('Redis stores: what only they do', () => {
  it('writes sessions as ladder:sess:<id> JSON with the idle ttl', async () => {
    const store = new RedisSessionStore(conn.client);
    const id = sessionId();
    await store.set(id, { userId: 7, createdAt: 1234 }, 90);
    expect(JSON.parse((await admin.get(`ladder:sess:${id}`))!)).toEqual({ userId: 7, createdAt: 1234 });
    const ttl = await admin.ttl(`ladder:sess:${id}`);
    expect(ttl).toBeGreaterThan(85);
    expect(ttl).toBeLessThanOrEqual(90);
    await store.destroy(id);
    expect(await admin.exists(`ladder:sess:${id}`)).toBe(0);
  });

  it('reads malformed session data as no session', async () => {
    const p = prefix('sess');
    const store = new RedisSessionStore(conn.client, p);
    const bad = [
      'not json',
      '[]',
      'null',
      '{"userId":"1","createdAt":1}',
      '{"userId":1}',
      '{"userId":1,"createdAt":1,"tokens":{"s":1}}',
    ];
    for (const raw of bad) {
      const id = sessionId();
      await admin.set(p + id, raw);
      expect(await store.get(id)).toBeUndefined();
    }
  });

  it('fails with a RedisStoreError that never names the session id', async () => {
    const id = sessionId();
    // An error reply that quotes the key (as some do), from a fake client at the edge.
    const quoting = {
      get: async (key: string) => {
        throw Object.assign(new Error(`WRONGTYPE ${key}`), { command: { name: 'get', args: [key] } });
      },
      set: async () => 'OK' as const,
      del: async () => 0,
    };
    const err = await new RedisSessionStore(quoting as never).get(id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisStoreError);
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toContain(id);
    expect((err as Error).cause).toBeUndefined();

    // And a real client that cannot reach Redis fails at once, not after a hang.
    const down = createRedisConnection({ url: `redis://127.0.0.1:${await freePort()}`, role: 'test' });
    down.connect();
    try {
      const t = Date.now();
      const e2 = await new RedisSessionStore(down.client).get(id).catch((e: unknown) => e);
      expect(Date.now() - t).toBeLessThan(500);
      expect(e2).toBeInstanceOf(RedisStoreError);
      expect(JSON.stringify(e2, Object.getOwnPropertyNames(e2))).not.toContain(id);
    } finally {
      await down.close();
    }
  });

  it('counts in the process when Redis is unreachable, and says so', async () => {
    const down = createRedisConnection({ url: `redis://127.0.0.1:${await freePort()}`, role: 'test' });
    down.connect();
    let fallbacks = 0;
    try {
      const store = new RedisRateLimitStore(down.client, { onFallback: () => void fallbacks++ });
      expect((await store.hit('login:1', 60_000)).count).toBe(1);
      expect((await store.hit('login:1', 60_000)).count).toBe(2);
      expect(fallbacks).toBe(2);
    } finally {
      await down.close();
    }
  });

  it('reloads its script after Redis forgot it (SCRIPT FLUSH, as on a restart)', async () => {
    const store = new RedisRateLimitStore(conn.client, { prefix: prefix('rl') });
    expect((await store.hit('k', 60_000)).count).toBe(1);
    await admin.script('FLUSH');
    expect((await store.hit('k', 60_000)).count).toBe(2);
  });

  it('gives a counter left without expiry one, so it cannot count forever', async () => {
    const p = prefix('rl');
    await admin.set(`${p}k`, '5');
    const r = await new RedisRateLimitStore(conn.client, { prefix: p }).hit('k', 60_000);
    expect(r).toEqual({ count: 6, resetMs: 60_000 });
    expect(await admin.pttl(`${p}k`)).toBeGreaterThan(59_000);
  });
});
