// The kit's broker interface (src/kit/queue/broker.ts) against a real redis-server of its
// own: the SQS model every adapter must keep (BullMQ here; an SQS adapter would have to pass
// the same checks): a message id sent twice is one message; a consumer that dies without
// finishing lets its message reappear after the visibility timeout; a failing message is
// received exactly maxReceives times, with growing delays, then becomes a dead letter that
// redrive sends back once; close() lets a message in flight finish; stats count what waits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROKER_DEFAULTS, BrokerConsumer, BrokerQueue, type BrokerSettings, type JobResult } from '../../src/kit/queue/broker.ts';
import { TestRedis } from '../support/redis-server.ts';

let redis: TestRedis;
let settings: BrokerSettings;

beforeAll(async () => {
  redis = await TestRedis.start();
  settings = { ...BROKER_DEFAULTS, url: redis.url, maxReceives: 3, visibilityTimeoutMs: 1500, backoff: { baseMs: 100, capMs: 1000 } };
});

afterAll(async () => {
  await redis.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await ok())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// Each test uses its own queue (the two rung 9 names, one test each, and a flushed Redis in between).
describe('broker (BullMQ on Redis) keeps the SQS model', () => {
  it('sends a message id once, counts what waits, and delivers each message to one consumer', async () => {
    const q = new BrokerQueue('clicks', settings);
    await q.send([{ id: 'a-1', body: { n: 1 } }, { id: 'a-2', body: { n: 2 } }]);
    await q.send([{ id: 'a-1', body: { n: 99 } }]); // a resend after a crash: ignored
    await sleep(20);
    const s = await q.stats();
    expect(s).toMatchObject({ name: 'clicks', depth: 2, deadLetters: 0 });
    expect(s.oldestAgeSeconds).toBeGreaterThanOrEqual(0);
    const seen: unknown[] = [];
    const results: JobResult[] = [];
    const c = new BrokerConsumer({ settings, name: 'clicks', concurrency: 2, handle: async (b) => void seen.push(b), onResult: (_q, r) => results.push(r) });
    c.start();
    await until('both handled', () => results.length === 2);
    await c.close();
    expect(seen).toEqual(expect.arrayContaining([{ n: 1 }, { n: 2 }]));
    expect(seen).toHaveLength(2);
    expect(results).toEqual(['done', 'done']);
    expect(await q.stats()).toMatchObject({ depth: 0, oldestAgeSeconds: 0 });
    await q.close();
  });

  it('a message whose consumer stopped without finishing is received again after the visibility timeout', async () => {
    const q = new BrokerQueue('link-events', settings);
    await q.send([{ id: 'v-1', body: 'x' }]);
    let started = 0;
    let release: () => void = () => undefined;
    const stuck = new BrokerConsumer({
      settings,
      name: 'link-events',
      concurrency: 1,
      handle: () => {
        started++;
        return new Promise<void>((r) => (release = r));
      },
    });
    stuck.start();
    await until('received', () => started === 1);
    // The consumer goes away without finishing or renewing (a crash): force-close releases nothing.
    await stuck.close(true);
    const receives: number[] = [];
    const second = new BrokerConsumer({ settings, name: 'link-events', concurrency: 1, handle: async (_b, meta) => void receives.push(meta.receive) });
    const t0 = Date.now();
    second.start();
    await until('received again', () => receives.length === 1, 20_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(settings.visibilityTimeoutMs / 2);
    release();
    await second.close();
    expect(await q.stats()).toMatchObject({ depth: 0, deadLetters: 0 });
    await q.close();
  });

  it('a handler that hangs (its consumer alive, renewing the lock) gives the message up after the visibility timeout: it is received again', async () => {
    // SQS hands a message to another consumer once its visibility timeout passes, whatever
    // the first one is doing; BullMQ renews the lock while the handler runs, so without a bound
    // of its own a handler stuck on a dead socket would hold the message for ever.
    const q = new BrokerQueue('link-events', settings);
    await q.send([{ id: 'h-1', body: 'x' }]);
    const receives: number[] = [];
    const c = new BrokerConsumer({
      settings,
      name: 'link-events',
      concurrency: 1,
      handle: (_b, meta) => {
        receives.push(meta.receive);
        return meta.receive === 1 ? new Promise<void>(() => undefined) : Promise.resolve();
      },
    });
    const t0 = Date.now();
    c.start();
    await until('received again', () => receives.length === 2, 20_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(settings.visibilityTimeoutMs);
    await until('applied', async () => (await q.stats()).depth === 0);
    expect(await q.stats()).toMatchObject({ depth: 0, deadLetters: 0 });
    await c.close(true);
    await q.close();
  });

  it('a failing message is received exactly maxReceives times with growing delays, then is a dead letter; redrive applies it once', async () => {
    const q = new BrokerQueue('link-events', settings);
    await q.send([{ id: 'p-1', body: { poison: true } }, { id: 'ok-1', body: { poison: false } }]);
    const at: number[] = [];
    let fixed = false;
    let applied = 0;
    const results: JobResult[] = [];
    const c = new BrokerConsumer({
      settings,
      name: 'link-events',
      concurrency: 2,
      onResult: (_q, r) => results.push(r),
      handle: async (b) => {
        if ((b as { poison: boolean }).poison) {
          if (!fixed) {
            at.push(Date.now());
            throw new Error('poison');
          }
          applied++;
        }
      },
    });
    c.start();
    await until('the dead letter', async () => (await q.stats()).deadLetters === 1);
    expect(at).toHaveLength(settings.maxReceives);
    // Backoff: each wait at least half its exponential step (equal jitter), and growing overall.
    const waits = at.slice(1).map((t, i) => t - at[i]!);
    expect(waits[0]).toBeGreaterThanOrEqual(settings.backoff.baseMs / 2 - 20);
    expect(waits[1]).toBeGreaterThanOrEqual(settings.backoff.baseMs - 20);
    expect(results.filter((r) => r === 'retried')).toHaveLength(settings.maxReceives - 1);
    expect(results.filter((r) => r === 'dead')).toHaveLength(1);
    expect(results.filter((r) => r === 'done')).toHaveLength(1); // the other message was unaffected
    const letters = await q.deadLetters();
    expect(letters).toEqual([expect.objectContaining({ queue: 'link-events', id: 'p-1', receives: settings.maxReceives, reason: 'poison', body: { poison: true } })]);
    fixed = true;
    expect(await q.redrive()).toEqual(['p-1']);
    await until('applied after the redrive', () => applied === 1);
    expect(await q.redrive()).toEqual([]);
    await sleep(300);
    expect(applied).toBe(1);
    expect(await q.stats()).toMatchObject({ depth: 0, deadLetters: 0 });
    await c.close();
    await q.close();
  });

  it('close() lets the message in flight finish (graceful shutdown), and nothing is received after', async () => {
    const q = new BrokerQueue('clicks', settings);
    await q.send([{ id: 'g-1', body: 1 }]);
    let finished = false;
    let started = false;
    const c = new BrokerConsumer({
      settings,
      name: 'clicks',
      concurrency: 1,
      handle: async () => {
        started = true;
        await sleep(500);
        finished = true;
      },
    });
    c.start();
    await until('started', () => started);
    await c.close();
    expect(finished).toBe(true);
    await q.send([{ id: 'g-2', body: 2 }]);
    await sleep(300);
    expect((await q.stats()).depth).toBe(1);
    await q.close();
  });
});
