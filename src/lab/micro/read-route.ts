// Micro-benchmark: what routing one redirect's lookup costs the web process at rung 4 (a
// request handle, the caller's token from its cookie, the choice of a replica, the pin kept
// in a signed Set-Cookie) against rungs 1-3 (the process-wide handle on the primary). The
// lookup itself is a resolved promise here: the statements it batches into are measured by
// the scenarios (`ladder bench replicas`: database statements per redirect).
//
//   npm run build && node dist/lab/micro/read-route.js [iterations=1000000]
//
// Figures: docs/performance.md, "Read replicas".
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Db, ReadDb } from '../../kit/db/database.ts';
import { PgDatabase } from '../../kit/db/pg-database.ts';
import { ReplicaRouter } from '../../kit/db/replica-router.ts';
import { ConsistencyCookie } from '../../kit/http/consistency-cookie.ts';
import { createMetrics } from '../../kit/metrics/metrics.ts';
import type { RequestSession } from '../../kit/session/request-session.ts';

const iterations = Number(process.argv[2] ?? 1_000_000);
const quiet = { info: () => undefined, warn: () => undefined };
// Nothing listens there: no statement is sent (the lookup below never reads), and the
// monitor is not started; its view of the replicas is set by hand.
const nowhere = 'postgres://bench@127.0.0.1:1/none';
const router = new ReplicaRouter({
  primaryUrl: nowhere,
  replicaUrls: [nowhere, nowhere],
  metrics: createMetrics({ defaultMetrics: false }),
  pollMs: 50,
  maxLagMs: 5000,
  readTimeoutMs: 1000,
  log: quiet,
});
const nodes = (router.monitor as unknown as { nodes: { inRotation: boolean; replayLsn: bigint; epoch: string; stalenessMs: number }[] }).nodes;
for (const n of nodes) Object.assign(n, { inRotation: true, replayLsn: 1000n, epoch: 'e1', stalenessMs: 0 });
const primary = new PgDatabase({ url: nowhere, metrics: createMetrics({ defaultMetrics: false }) });

const row = { code: 'b00000001', id: '1', url: 'https://example.com/' };
const lookup = async (_db: ReadDb) => row;
const secret = 'a-secret-of-the-bench-that-is-long-enough';
const session = { peek: () => undefined, setToken: async () => undefined } as unknown as RequestSession;

/** A request without cookies (an anonymous visitor, as the bench's) and a reply that keeps headers. */
function exchange(): { req: FastifyRequest; reply: FastifyReply } {
  const headers = new Map<string, unknown>();
  const reply = {
    header(name: string, value: unknown) {
      headers.set(name, value);
      return reply;
    },
    getHeader: (name: string) => headers.get(name),
    removeHeader: (name: string) => headers.delete(name),
  };
  return { req: { headers: {}, protocol: 'http' } as unknown as FastifyRequest, reply: reply as unknown as FastifyReply };
}

async function rung4(): Promise<void> {
  const { req, reply } = exchange();
  const db: Db = router.forRequest(new ConsistencyCookie(req, reply, session, secret));
  await db.joinBatch!(lookup);
}

async function rung1(): Promise<void> {
  exchange(); // the same allocation, for a fair difference
  const db: ReadDb = primary.forRequest();
  await (db.joinBatch ? db.joinBatch(lookup) : lookup(db));
}

async function time(op: () => Promise<void>): Promise<number> {
  let best = Infinity;
  for (let pass = 0; pass < 5; pass++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await op();
    const ns = Number(process.hrtime.bigint() - t0) / iterations;
    if (pass > 0) best = Math.min(best, ns); // the first pass warms up
  }
  return best;
}

const a = await time(rung1);
const b = await time(rung4);
console.log(`per lookup, best of 4 passes of ${iterations.toLocaleString('en-US')}:`);
console.log(`  rungs 1-3 (process-wide handle)        ${a.toFixed(0)} ns`);
console.log(`  rung 4 (token, replica, pin cookie)    ${b.toFixed(0)} ns`);
console.log(`  the router's cost per request          ${(b - a).toFixed(0)} ns`);
await Promise.all([router.close(), primary.close()]);
