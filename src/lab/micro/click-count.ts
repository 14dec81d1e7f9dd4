// Micro-benchmark: what one cached redirect's L1 lookup and click count cost when the CPU
// caches are cold, as they are between requests on a busy server (the kernel's network
// path and the other requests evict them). Before every operation a few hundred random
// writes into a buffer larger than the caches evict them; that loop alone is measured
// too and subtracted.
//
//   npm run build && node dist/lab/micro/click-count.js [links=100000] [evict MiB=4]
//
// Compared: counting a click under a key built per click (`${linkId}|${day}`, how the
// queue merged clicks before) against the queue as it is (grouped by day, keyed by the
// link id the cached value already holds). Figures: docs/performance.md, "A third VM".
import { L1Cache } from '../../kit/cache/l1-cache.ts';
import { InProcessQueue } from '../../kit/queue/queue.ts';
import { benchCode, benchUrl } from '../dataset/bench-links.ts';
import { seededRandom } from '../driver/seeded-random.ts';
import { ZipfSampler } from '../driver/zipf.ts';

const links = Number(process.argv[2] ?? 100_000);
const evictBytes = Number(process.argv[3] ?? 4) * 1024 * 1024;
const random = seededRandom(1);

// L1 filled in random order, values parsed from JSON as a Redis fill stores them.
const l1 = new L1Cache(1024 * 1024 * 1024);
const order = Array.from({ length: links }, (_, i) => i).sort(() => random() - 0.5);
const now = Date.now();
for (const i of order) {
  const value: unknown = JSON.parse(JSON.stringify({ id: String(1000 + i), url: benchUrl(i) }));
  l1.set(`link:${benchCode(i)}`, value, 80, 3_600_000, now + 3_600_000, now);
}
const zipf = new ZipfSampler(links, 1);
const paths = Array.from({ length: 200_000 }, () => `/${benchCode(zipf.next(random))}`);

const junk = new Float64Array(evictBytes / 8);
let seed = 1;
function evict(): void {
  for (let i = 0; i < 512; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    junk[seed % junk.length]! += 1;
  }
}

const day = new Date().toISOString().slice(0, 10);
type Target = { id: string; url: string };
const lookup = (path: string) => l1.get(`link:${path.slice(1)}`, Date.now())!.value as Target;

// The queue's merge as it was: one map per topic, keyed by a string built per click.
const before = new Map<string, { message: Record<string, string>; count: number }>();
function countBefore(linkId: string): void {
  const message = { linkId, day };
  const key = `${message.linkId}|${message.day}`;
  const entry = before.get(key);
  if (entry) entry.count++;
  else before.set(key, { message, count: 1 });
}

const queue = new InProcessQueue({ flushIntervalMs: 3_600_000 });
queue.consume('click', { key: (m) => String(m.linkId), group: (m) => String(m.day), handle: async () => undefined });

/** Best ns per operation over four timed passes (after one untimed). */
async function time(op: (path: string) => number): Promise<number> {
  let best = Infinity;
  for (let pass = 0; pass < 5; pass++) {
    const started = process.hrtime.bigint();
    let sink = 0;
    for (const p of paths) {
      evict();
      sink += op(p);
    }
    const ns = Number(process.hrtime.bigint() - started) / paths.length;
    if (pass > 0) best = Math.min(best, ns);
    if (sink < 0) console.log(sink);
    // About a second of clicks per pass, as the queue holds between flushes.
    before.clear();
    await queue.flush();
  }
  return best;
}

const alone = await time(() => 1);
const l1Only = (await time((p) => lookup(p).url.length)) - alone;
const withBefore = (await time((p) => (countBefore(lookup(p).id), 1))) - alone;
const withQueue = (await time((p) => (queue.publish('click', { linkId: lookup(p).id, day }), 1))) - alone;
const f = (ns: number) => `${Math.round(ns)} ns`;
console.log(`${links.toLocaleString('en-US')} links, caches evicted before each operation (${f(alone)} per eviction, subtracted)`);
console.log(`L1 lookup:                                  ${f(l1Only)}`);
console.log(`L1 lookup + click, key built per click:     ${f(withBefore)}  (click ${f(withBefore - l1Only)})`);
console.log(`L1 lookup + click, queue by (day, link id): ${f(withQueue)}  (click ${f(withQueue - l1Only)})`);
