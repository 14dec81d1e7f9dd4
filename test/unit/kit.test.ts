import { describe, expect, it } from 'vitest';
import { parseCookies, serializeCookie, sign, unsign } from '../../src/kit/http/cookies.ts';
import { InProcessQueue } from '../../src/kit/queue/queue.ts';
import { MemoryRateLimitStore, parseRateLimits } from '../../src/kit/security/rate-limiter.ts';
import { isCrossSite } from '../../src/kit/security/security-headers.ts';
import { MemorySessionStore } from '../../src/kit/session/session-store.ts';
import { loadServerConfig } from '../../src/kit/config.ts';

describe('cookies', () => {
  it('signs and verifies, refusing tampering', () => {
    const s = sign('abc', 'secret');
    expect(unsign(s, 'secret')).toBe('abc');
    expect(unsign(s, 'other')).toBeUndefined();
    expect(unsign(s.replace('abc', 'abd'), 'secret')).toBeUndefined();
    expect(unsign('garbage', 'secret')).toBeUndefined();
  });
  it('parses bounded, whitelisted cookie headers', () => {
    expect(parseCookies('a=1; b=2').get('b')).toBe('2');
    expect(parseCookies('a=1; a=2').get('a')).toBe('1');
    expect(parseCookies('x'.repeat(9000)).size).toBe(0);
    expect(serializeCookie('n', 'v', { maxAgeSeconds: 10, secure: true })).toBe('n=v; Path=/; Max-Age=10; HttpOnly; SameSite=Lax; Secure');
  });
});

describe('in-process queue', () => {
  it('merges equal keys and flushes in one batch', async () => {
    const batches: { message: Record<string, string | number>; count: number }[][] = [];
    const q = new InProcessQueue();
    q.consume('click', { key: (m) => String(m.id), handle: async (b) => void batches.push(b) });
    for (let i = 0; i < 10; i++) q.publish('click', { id: i % 2 });
    expect(q.size).toBe(10);
    await q.flush();
    expect(q.size).toBe(0);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.map((e) => e.count).sort()).toEqual([5, 5]);
  });
  it('merges by group and key: equal keys in different groups stay apart', async () => {
    const batches: { message: Record<string, string | number>; count: number }[][] = [];
    const q = new InProcessQueue();
    q.consume('click', { key: (m) => String(m.id), group: (m) => String(m.day), handle: async (b) => void batches.push(b) });
    for (const day of ['d1', 'd2', 'd1']) for (const id of [1, 2, 1]) q.publish('click', { id, day });
    expect(q.size).toBe(9);
    await q.flush();
    const got = batches[0]!.map((e) => `${e.message.day}/${e.message.id}=${e.count}`).sort();
    expect(got).toEqual(['d1/1=4', 'd1/2=2', 'd2/1=2', 'd2/2=1']);
    await q.flush();
    expect(batches).toHaveLength(1);
  });
  it('a large flush goes out in chunks of maxBatch, each followed by a pause as long as it took', async () => {
    const calls: { size: number; start: number; end: number }[] = [];
    const q = new InProcessQueue({ maxBatch: 3 });
    q.consume('click', {
      key: (m) => String(m.id),
      handle: async (b) => {
        const start = performance.now();
        await new Promise((r) => setTimeout(r, 20));
        calls.push({ size: b.length, start, end: performance.now() });
      },
    });
    for (let i = 0; i < 7; i++) q.publish('click', { id: i });
    await q.flush();
    expect(calls.map((c) => c.size)).toEqual([3, 3, 1]);
    expect(q.size).toBe(0);
    for (let i = 1; i < calls.length; i++) {
      // Each chunk starts after a pause at least as long as the chunk before it took.
      expect(calls[i]!.start - calls[i - 1]!.end).toBeGreaterThanOrEqual(0.9 * (calls[i - 1]!.end - calls[i - 1]!.start));
    }
  });
  it('a chunk that fails goes back into the buffer with the chunks after it; those before it stay written', async () => {
    let calls = 0;
    const written: number[] = [];
    const q = new InProcessQueue({ maxBatch: 2, onError: () => undefined });
    q.consume('click', {
      key: (m) => String(m.id),
      handle: async (b) => {
        if (++calls === 2) throw new Error('db down');
        for (const e of b) written.push(Number(e.message.id));
      },
    });
    for (let i = 0; i < 5; i++) q.publish('click', { id: i });
    q.publish('click', { id: 4 });
    await q.flush();
    expect(written).toEqual([0, 1]);
    expect(q.size).toBe(4); // ids 2, 3 and two clicks of 4
    await q.close();
    expect(written.sort()).toEqual([0, 1, 2, 3, 4]);
    expect(q.size).toBe(0);
  });
  it('keeps a failed batch and writes it on the next flush', async () => {
    let fail = true;
    let written = 0;
    const errors: unknown[] = [];
    const q = new InProcessQueue({ onError: (_t, e) => errors.push(e) });
    q.consume('click', {
      key: (m) => String(m.id),
      handle: async (b) => {
        if (fail) throw new Error('db down');
        written += b.reduce((s, e) => s + e.count, 0);
      },
    });
    q.publish('click', { id: 1 });
    q.publish('click', { id: 1 });
    await q.flush();
    expect(errors).toHaveLength(1);
    expect(q.size).toBe(2);
    q.publish('click', { id: 1 });
    fail = false;
    await q.close();
    expect(written).toBe(3);
  });
  it('a full buffer during a slow flush queues one flush, not one per publish', async () => {
    // The database is slow: each batch takes 100 ms. Over the key bound, every publish asks
    // for a flush; they must share the one queued behind the running flush.
    let batches = 0;
    let written = 0;
    const q = new InProcessQueue({ maxKeys: 10 });
    q.consume('click', {
      key: (m) => String(m.id),
      handle: async (b) => {
        batches++;
        written += b.reduce((s, e) => s + e.count, 0);
        await new Promise((r) => setTimeout(r, 100));
      },
    });
    const running = q.flush(); // nothing buffered yet: returns at once
    await running;
    for (let i = 0; i < 10; i++) q.publish('click', { id: i }); // the 10th key starts a flush
    const started = performance.now();
    for (let i = 0; i < 20_000; i++) q.publish('click', { id: 100 + i }); // each over the bound
    const last = q.flush();
    await last;
    const ms = performance.now() - started;
    expect(batches).toBe(2); // the first 10 keys, then everything that came during them
    expect(written).toBe(20_010);
    expect(q.size).toBe(0);
    // Two 100 ms batches and a few ms of publishing; thousands of waiters each woken on every
    // flush took seconds.
    expect(ms).toBeLessThan(1000);
  });
  it('a flush that throws does not wedge the queue', async () => {
    // The write fails and so does its error reporter: that flush rejects. The flush queued
    // behind it still runs and writes everything.
    let fail = true;
    let written = 0;
    const q = new InProcessQueue({
      onError: () => {
        throw new Error('reporter failed');
      },
    });
    q.consume('click', {
      key: (m) => String(m.id),
      handle: async (b) => {
        if (fail) {
          fail = false;
          throw new Error('db down');
        }
        written += b.reduce((s, e) => s + e.count, 0);
      },
    });
    q.publish('click', { id: 1 });
    const first = q.flush();
    const second = q.flush(); // queued behind the first
    await expect(first).rejects.toThrow('reporter failed');
    await second;
    expect(written).toBe(1);
    expect(q.size).toBe(0);
  });
  it('refuses an unknown topic', () => {
    expect(() => new InProcessQueue().publish('nope', {})).toThrow(/no consumer/);
  });
});

describe('security helpers', () => {
  it('detects cross-site unsafe requests only', () => {
    expect(isCrossSite('POST', { host: 'a.test', origin: 'https://b.test' })).toBe(true);
    expect(isCrossSite('POST', { host: 'a.test', origin: 'https://a.test' })).toBe(false);
    expect(isCrossSite('DELETE', { host: 'a.test', referer: 'https://b.test/x' })).toBe(true);
    expect(isCrossSite('POST', { host: 'a.test' })).toBe(false);
    expect(isCrossSite('GET', { host: 'a.test', origin: 'https://b.test' })).toBe(false);
    expect(isCrossSite('POST', { host: 'a.test', origin: 'not a url' })).toBe(true);
  });
  it('counts per window and parses limit overrides', async () => {
    const store = new MemoryRateLimitStore();
    expect((await store.hit('k', 1000)).count).toBe(1);
    expect((await store.hit('k', 1000)).count).toBe(2);
    const limits = parseRateLimits('login=5/10', { login: { limit: 1, windowMs: 1 }, signup: { limit: 2, windowMs: 2 } });
    expect(limits.login).toEqual({ limit: 5, windowMs: 10_000 });
    expect(() => parseRateLimits('nope=1/1', { login: { limit: 1, windowMs: 1 } })).toThrow(/LADDER_RATE_LIMITS/);
  });
  it('bounds the in-memory session store', async () => {
    const s = new MemorySessionStore(2);
    await s.set('a', { userId: 1, createdAt: 0 }, 60);
    await s.set('b', { userId: 2, createdAt: 0 }, 60);
    await s.set('c', { userId: 3, createdAt: 0 }, 60);
    expect(await s.get('a')).toBeUndefined();
    expect((await s.get('c'))?.userId).toBe(3);
  });
});

describe('server config', () => {
  it('validates and freezes, naming the field', () => {
    const c = loadServerConfig({}, { LADDER_SECRET: 'x'.repeat(32), PORT: '4000' });
    expect(c.port).toBe(4000);
    expect(Object.isFrozen(c)).toBe(true);
    expect(JSON.stringify(c)).not.toContain('x'.repeat(32)); // the secret never reaches logs
    expect(() => loadServerConfig({}, { LADDER_SECRET: 'short' })).toThrow(/^LADDER_SECRET: /);
    expect(() => loadServerConfig({}, { LADDER_SECRET: 'x'.repeat(32), PORT: 'abc' })).toThrow(/^PORT: /);
    expect(() => loadServerConfig({}, { LADDER_SECRET: 'x'.repeat(32), PUBLIC_URL: 'ftp://x' })).toThrow(/^PUBLIC_URL: /);
  });

  it('takes REDIS_URL as a redis:// URL, keeps it out of logs, and masks its password in errors', () => {
    const env = { LADDER_SECRET: 'x'.repeat(32) };
    expect(loadServerConfig({}, env).redisUrl).toBeUndefined();
    expect(loadServerConfig({}, { ...env, REDIS_URL: '' }).redisUrl).toBeUndefined();
    for (const ok of ['redis://127.0.0.1:6400', 'redis://localhost', 'redis://:pw@10.0.0.5:6379/2', 'rediss://user:pw@cache.example:6380/0']) {
      expect(loadServerConfig({}, { ...env, REDIS_URL: ok }).redisUrl).toBe(ok);
    }
    const c = loadServerConfig({ redisUrl: 'redis://:hunter2hunter2@127.0.0.1:6400' }, env);
    expect(JSON.stringify(c)).not.toContain('hunter2');
    for (const bad of ['127.0.0.1:6379', 'http://127.0.0.1:6379', 'redis://', 'redis://h:1/x', 'redis://h:1/0?family=6', 'not a url']) {
      expect(() => loadServerConfig({}, { ...env, REDIS_URL: bad }), bad).toThrow(/^REDIS_URL: .*Fix: use redis:\/\//);
    }
    let message = '';
    try {
      loadServerConfig({}, { ...env, REDIS_URL: 'redis://:hunter2hunter2@h:1/db?x=1' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^REDIS_URL: /);
    expect(message).not.toContain('hunter2');
  });
});

describe('hot histogram series', () => {
  it('adds plain-number observations to the scraped histogram, onto the same series or as a new one', async () => {
    const { createMetrics } = await import('../../src/kit/metrics/metrics.ts');
    const { sumSeries } = await import('../../src/lab/measure/prom-text.ts');
    const m = createMetrics({ defaultMetrics: false });
    const labels = { method: 'GET', route: '/:code', status_code: '302' };
    m.httpDuration.labels(labels).observe(0.002);
    const hot = m.hotDuration(labels);
    hot.observe(0.0001);
    hot.observe(0.003);
    const fresh = m.hotDuration({ method: 'GET', route: '/:code', status_code: '404' });
    fresh.observe(0.0002);
    const text = await m.registry.metrics();
    const sel = '{method="GET",route="/:code",status_code="302"}';
    expect(sumSeries(text, 'http_request_duration_seconds_count', sel)).toBe(3);
    expect(sumSeries(text, 'http_request_duration_seconds_sum', sel)).toBeCloseTo(0.0051, 6);
    expect(text).toContain('http_request_duration_seconds_bucket{le="0.0005",method="GET",route="/:code",status_code="302"} 1');
    expect(text).toContain('http_request_duration_seconds_bucket{le="0.0025",method="GET",route="/:code",status_code="302"} 2');
    expect(text).toContain('http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/:code",status_code="302"} 3');
    expect(text).toContain('http_request_duration_seconds_bucket{le="0.0005",method="GET",route="/:code",status_code="404"} 1');
    expect(text).toContain('http_request_duration_seconds_count{method="GET",route="/:code",status_code="404"} 1');
    // A scrape reads, never resets: the next one shows the same.
    expect(await m.registry.metrics()).toBe(text);
  });
});
