// Rung 9's pure pieces: the click log's format and batch ids, the relay's shipping of a log
// (write-ahead ranges, whole lines, resend of the same range after a crash), the retry
// backoff, and the checks a worker runs on a message before trusting it.
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { requestKeyOf } from '../../src/kit/http/request-key.ts';
import { backoffDelay } from '../../src/kit/queue/backoff.ts';
import {
  batchJobId,
  clickLine,
  countClicks,
  parseProducerId,
  producerId,
  producerOfFile,
  segmentFile,
  wholeLines,
} from '../../src/kit/queue/click-log-format.ts';
import { ClickLogQueue } from '../../src/kit/queue/click-log.ts';
import { ClickLogShipper, type ClickBatch } from '../../src/kit/queue/click-log-shipper.ts';
import { BadMessage, clickBatchBody, parseClickBatch, parseLinkEvent } from '../../src/server/queue-messages.ts';
import { buildTopology } from '../../src/topology/topology.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'ladder-queue-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('click log format', () => {
  it('names producers and segments, and reads them back; anything else is not a segment', () => {
    const id = producerId({ node: 'web1', startedMs: 1700000000000, pid: 4242, seq: 3 });
    expect(id).toBe('web1.1700000000000.4242.3');
    expect(parseProducerId(id)).toEqual({ node: 'web1', startedMs: 1700000000000, pid: 4242, seq: 3 });
    expect(producerOfFile(segmentFile(id))).toBe(id);
    for (const f of ['web1.clicks', 'click-offsets.json', '../x.1.2.3.clicks', 'Web1.1.2.3.clicks', `${id}.clicks.tmp`]) expect(producerOfFile(f)).toBeUndefined();
    expect(batchJobId(id, 130)).toBe('c.web1.1700000000000.4242.3.130');
    expect(batchJobId(id, 130)).not.toContain(':');
  });

  it('writes one whole line per click and refuses values that would break the format', () => {
    expect(clickLine('42', '2026-12-07')).toBe('42 2026-12-07\n');
    for (const [id, day] of [['0', '2026-12-07'], ['4 2', '2026-12-07'], ['42', '2026-12-07\n1 2026-12-07'], ['-1', '2026-12-07'], ['42', 'today']]) {
      expect(() => clickLine(id!, day!)).toThrow();
    }
  });

  it('counts clicks per link and day, skipping malformed lines and a partial last line', () => {
    const text = '1 2026-12-07\n2 2026-12-07\n1 2026-12-07\nbad line\n1 2026-12-08\n3 2026-12';
    const { clicks, lines, bad } = countClicks(text);
    expect(lines).toBe(5);
    expect(bad).toBe(1);
    expect(clicks).toEqual([
      { linkId: '1', day: '2026-12-07', count: 2 },
      { linkId: '2', day: '2026-12-07', count: 1 },
      { linkId: '1', day: '2026-12-08', count: 1 },
    ]);
    expect(wholeLines(Buffer.from(text))).toBe(text.lastIndexOf('\n') + 1);
    expect(wholeLines(Buffer.from('12 2026'))).toBe(0);
  });

  it('keeps the request keys of the clicks that have one, per link and day, repeats included', () => {
    const k1 = '0b6f1a52-3c1e-4d8a-9f3e-2a1b3c4d5e6f';
    const k2 = 'f0e1d2c3-b4a5-4968-8776-655443322110';
    expect(clickLine('42', '2026-12-07', k1)).toBe(`42 2026-12-07 ${k1}\n`);
    for (const key of ['', 'not-a-key', k1.toUpperCase(), `${k1} x`, `${k1}\n1 2026-12-07`]) expect(() => clickLine('42', '2026-12-07', key)).toThrow();
    const text = [`1 2026-12-07 ${k1}`, '1 2026-12-07', `1 2026-12-07 ${k2}`, `1 2026-12-07 ${k1}`, `2 2026-12-07 ${k2}`, `1 2026-12-07 nokey`, `1 2026-12-07 ${k1} extra`, ''].join('\n');
    const { clicks, lines, bad } = countClicks(text);
    expect({ lines, bad }).toEqual({ lines: 7, bad: 2 });
    expect(clicks).toEqual([
      { linkId: '1', day: '2026-12-07', count: 4, keys: [k1, k2, k1] },
      { linkId: '2', day: '2026-12-07', count: 1, keys: [k2] },
    ]);
  });

  it('takes a request key only as one UUID, lower-cased', () => {
    const k = '0B6F1A52-3C1E-4D8A-9F3E-2A1B3C4D5E6F';
    expect(requestKeyOf(k)).toBe(k.toLowerCase());
    for (const v of [undefined, '', `${k}, ${k}`, [k, k], `${k} `, 'x'.repeat(36), `{${k.slice(1, 35)}}`]) expect(requestKeyOf(v)).toBeUndefined();
  });

  it('any run of clicks counts back to the same totals, however it is cut into whole-line batches', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 20 }), fc.constantFrom('2026-12-06', '2026-12-07'))), fc.array(fc.nat()), (cs, cuts) => {
        const text = cs.map(([id, day]) => clickLine(String(id), day)).join('');
        const buf = Buffer.from(text);
        const totals = new Map<string, number>();
        let at = 0;
        for (const cut of [...cuts, buf.length]) {
          const upTo = Math.min(buf.length, at + (cut % 64) + 1);
          const whole = wholeLines(buf.subarray(at, upTo));
          for (const c of countClicks(buf.subarray(at, at + whole).toString('latin1')).clicks) totals.set(`${c.linkId} ${c.day}`, (totals.get(`${c.linkId} ${c.day}`) ?? 0) + c.count);
          at += whole;
        }
        // The rest, as the next pass would ship it.
        for (const c of countClicks(buf.subarray(at).toString('latin1')).clicks) totals.set(`${c.linkId} ${c.day}`, (totals.get(`${c.linkId} ${c.day}`) ?? 0) + c.count);
        const expected = new Map<string, number>();
        for (const [id, day] of cs) expected.set(`${id} ${day}`, (expected.get(`${id} ${day}`) ?? 0) + 1);
        expect(totals).toEqual(expected);
      }),
    );
  });
});

describe('click log writer', () => {
  it('has every click in the file when publish returns, and rolls to a new segment when full', async () => {
    const dir = tmp();
    const q = new ClickLogQueue({ dir, node: 'web7', segmentMaxBytes: 40 });
    q.start();
    const first = q.producer;
    for (let i = 1; i <= 3; i++) q.publish('click', { linkId: String(i), day: '2026-12-07' });
    // Written before publish returned: no flush, no close.
    expect(readFileSync(path.join(dir, segmentFile(first)), 'utf8')).toBe('1 2026-12-07\n2 2026-12-07\n3 2026-12-07\n');
    q.publish('click', { linkId: '4', day: '2026-12-07' });
    expect(q.producer).not.toBe(first);
    expect(readFileSync(path.join(dir, segmentFile(q.producer)), 'utf8')).toBe('4 2026-12-07\n');
    expect(q.size).toBe(0);
    expect(() => q.publish('other', { linkId: '1', day: '2026-12-07' })).toThrow(/no consumer/);
    await q.close();
  });
});

describe('click log shipper', () => {
  const setup = (opts: { maxBatchBytes?: number; alive?: boolean } = {}) => {
    const dir = tmp();
    mkdirSync(path.join(dir, 'log'));
    const sent: ClickBatch[] = [];
    let failNext = false;
    const make = () =>
      new ClickLogShipper({
        dir: path.join(dir, 'log'),
        statePath: path.join(dir, 'relay', 'offsets.json'),
        maxBatchBytes: opts.maxBatchBytes ?? 1024,
        writerAlive: () => opts.alive ?? true,
        send: async (b) => {
          if (failNext) {
            failNext = false;
            throw new Error('broker away');
          }
          sent.push(b);
        },
      });
    return { dir, sent, make, failOnce: () => (failNext = true), log: (p: string) => path.join(dir, 'log', segmentFile(p)) };
  };
  const P = 'web1.1700000000000.999999.0';

  it('ships whole lines only, in contiguous ranges, and resumes from its saved offset', async () => {
    const s = setup();
    let shipper = s.make();
    writeFileSync(s.log(P), '1 2026-12-07\n2 2026-12-07\n3 2026');
    await shipper.pass();
    expect(s.sent.map((b) => [b.start, b.end])).toEqual([[0, 26]]);
    appendFileSync(s.log(P), '-12-07\n');
    await shipper.pass();
    expect(s.sent.map((b) => [b.start, b.end])).toEqual([[0, 26], [26, 39]]);
    expect(s.sent[1]!.clicks).toEqual([{ linkId: '3', day: '2026-12-07', count: 1 }]);
    // A new relay process starts where the last one stopped.
    shipper = s.make();
    await shipper.pass();
    expect(s.sent).toHaveLength(2);
  });

  it('splits a large log into batches of at most maxBatchBytes', async () => {
    const s = setup({ maxBatchBytes: 30 });
    writeFileSync(s.log(P), '1 2026-12-07\n'.repeat(10));
    await s.make().pass();
    expect(s.sent.map((b) => b.end - b.start)).toEqual([26, 26, 26, 26, 26]);
    expect(s.sent.reduce((n, b) => n + b.clicks[0]!.count, 0)).toBe(10);
  });

  it('takes the segments in turn: a log that always has a new line does not hold the others back', async () => {
    const s = setup({ maxBatchBytes: 13 });
    const Q = 'web2.1700000000000.999998.0';
    writeFileSync(s.log(P), '1 2026-12-07\n');
    writeFileSync(s.log(Q), '2 2026-12-07\n'.repeat(3));
    const order: string[] = [];
    const dir = s.dir;
    const shipper = new ClickLogShipper({
      dir: path.join(dir, 'log'),
      statePath: path.join(dir, 'relay', 'offsets.json'),
      maxBatchBytes: 13,
      writerAlive: () => true,
      send: async (b) => {
        order.push(b.producer === P ? 'P' : 'Q');
        // P's writer is busy: a new line arrives with every batch sent (up to a point).
        if (b.producer === P && order.length < 20) appendFileSync(s.log(P), '1 2026-12-07\n');
      },
    });
    await shipper.pass();
    expect(order.slice(0, 6)).toEqual(['P', 'Q', 'P', 'Q', 'P', 'Q']);
    expect(order.filter((x) => x === 'Q')).toHaveLength(3);
  });

  it('sends the very same range again after a failed send, even if the log grew meanwhile', async () => {
    const s = setup();
    writeFileSync(s.log(P), '1 2026-12-07\n');
    const shipper = s.make();
    s.failOnce();
    await expect(shipper.pass()).rejects.toThrow(/broker away/);
    appendFileSync(s.log(P), '2 2026-12-07\n');
    // As a restarted relay would: from the offsets file, with the range written ahead.
    await s.make().pass();
    expect(s.sent.map((b) => [b.producer, b.start, b.end])).toEqual([[P, 0, 13], [P, 13, 26]]);
  });

  it('deletes a segment once shipped to its end and its writer is gone, never before', async () => {
    const alive = setup({ alive: true });
    writeFileSync(alive.log(P), '1 2026-12-07\n');
    await alive.make().pass();
    expect(existsSync(alive.log(P))).toBe(true);
    const gone = setup({ alive: false });
    writeFileSync(gone.log(P), '1 2026-12-07\n');
    const shipper = gone.make();
    await shipper.pass();
    expect(gone.sent).toHaveLength(1);
    expect(existsSync(gone.log(P))).toBe(false);
    expect(JSON.parse(readFileSync(path.join(gone.dir, 'relay', 'offsets.json'), 'utf8'))).toEqual({});
  });
});

describe('backoff', () => {
  it('grows exponentially within its jitter band and is capped', () => {
    const s = { baseMs: 100, capMs: 2000 };
    expect([1, 2, 3, 4].map((a) => backoffDelay(a, s, () => 0))).toEqual([50, 100, 200, 400]);
    expect([1, 2, 3, 4].map((a) => backoffDelay(a, s, () => 0.999999))).toEqual([100, 200, 400, 800]);
    expect(backoffDelay(30, s, () => 0.5)).toBe(1500);
    expect(backoffDelay(1e9, s, () => 0.999999)).toBe(2000);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 0.9999, noNaN: true }), (a, r) => {
        const d = backoffDelay(a, s, () => r);
        const ceiling = Math.min(2000, 100 * 2 ** (a - 1));
        expect(d).toBeGreaterThanOrEqual(Math.round(ceiling / 2));
        expect(d).toBeLessThanOrEqual(ceiling);
      }),
    );
  });
});

describe('message checks', () => {
  it('takes a click batch as the relay sends it, and refuses anything else', () => {
    const body = clickBatchBody({ producer: 'web1.1.2.0', start: 0, end: 13, clicks: [{ linkId: '7', day: '2026-12-07', count: 1 }] });
    expect(parseClickBatch(JSON.parse(JSON.stringify(body)))).toEqual({ producer: 'web1.1.2.0', start: 0, end: 13, clicks: [{ linkId: '7', day: '2026-12-07', count: 1 }] });
    for (const bad of [null, {}, { ...body, producer: "x'; drop table links;--" }, { ...body, end: 0 }, { ...body, clicks: [['7', '2026-12-07', 0]] }, { ...body, clicks: [['0x7', '2026-12-07', 1]] }]) {
      expect(() => parseClickBatch(bad)).toThrow(BadMessage);
    }
  });

  it('takes a click batch with request keys, and refuses keys that are not UUIDs or outnumber the clicks', () => {
    const k = '0b6f1a52-3c1e-4d8a-9f3e-2a1b3c4d5e6f';
    const clicks = [{ linkId: '7', day: '2026-12-07', count: 3, keys: [k, k] }, { linkId: '8', day: '2026-12-07', count: 1 }];
    const body = clickBatchBody({ producer: 'web1.1.2.0', start: 0, end: 130, clicks });
    expect(body.clicks).toEqual([['7', '2026-12-07', 3, [k, k]], ['8', '2026-12-07', 1]]);
    expect(parseClickBatch(JSON.parse(JSON.stringify(body))).clicks).toEqual(clicks);
    for (const entry of [['7', '2026-12-07', 1, [k, k]], ['7', '2026-12-07', 1, []], ['7', '2026-12-07', 1, ["'); drop table click_keys;--"]], ['7', '2026-12-07', 1, k], ['7', '2026-12-07', 1, [k], 'x']]) {
      expect(() => parseClickBatch({ ...body, clicks: [entry] })).toThrow(BadMessage);
    }
  });

  it('takes a link event as the relay sends it, and refuses one without an owner', () => {
    const e = { id: '12', type: 'link.created', key: '5', payload: { linkId: '5', ownerId: '3', code: 'abc', url: 'https://e.com' } };
    expect(parseLinkEvent(e)).toEqual({ id: '12', type: 'link.created', ownerId: '3', url: 'https://e.com' });
    expect(() => parseLinkEvent({ ...e, payload: { linkId: '5' } })).toThrow(BadMessage);
    expect(() => parseLinkEvent({ ...e, id: '1; drop' })).toThrow(BadMessage);
  });
});

describe('rung 9 topology', () => {
  it('runs 2 workers unless told, refuses workers below rung 9 and counts outside 1..16', () => {
    expect(buildTopology({ rung: 9 }).workers).toBe(2);
    expect(buildTopology({ rung: 9, workers: 5 }).workers).toBe(5);
    expect(buildTopology({ rung: 7 }).workers).toBe(0);
    expect(buildTopology({ rung: 9 }).features.queue).toBe(true);
    expect(buildTopology({ rung: 9 }).skipped).toEqual(['rung 8 (several regions)']);
    expect(() => buildTopology({ rung: 7, workers: 2 })).toThrow(/no queue/);
    for (const w of [0, 17, 1.5]) expect(() => buildTopology({ rung: 9, workers: w })).toThrow(/workers/);
    // Its relay and workers do not follow a Patroni failover yet: refused, never half-run.
    expect(() => buildTopology({ rung: 9, ha: true })).toThrow(/do not follow a Patroni failover/);
  });
});
