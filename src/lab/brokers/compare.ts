// The broker comparison for rung 9 (docs/decisions.md, "Rung 9: the broker"): every
// candidate's server started by us on its own loopback port and temporary folder, measured
// in one run so that the ratios between them mean something on a shared machine, then stopped.
//
//   npx tsx src/lab/brokers/compare.ts [--only bullmq,nats-jetstream,postgres-skip-locked,postgres-async-commit,bullmq-postgres] [--rounds 3] [--quick]
//   npm run build && node dist/lab/brokers/compare.js [same flags]
//
// Throughput rounds alternate the candidates (in a rotated order each round) so that a
// neighbour's burst does not land on one of them only; medians over rounds are reported.
// Writes bench/results/brokers-<time>.json and brokers-latest.json, and prints a table.
// Takes about 10 minutes on the shared 2-core machine (--quick: about 3).
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../launcher/state-dir.ts';
import { machineInfo } from '../machine/machine-info.ts';
import type { BrokerServer, Candidate } from './candidate.ts';
import { CANDIDATES, candidateNamed } from './candidates.ts';
import { recovery, redelivery, throughput, type RecoveryResult, type RedeliveryResult, type ThroughputResult } from './scenarios.ts';
import { BATCH, messageBytes, SMALL } from './workload.ts';

interface Options {
  only: Candidate[];
  rounds: number;
  quick: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { only: [...CANDIDATES], rounds: 3, quick: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--only') o.only = (argv[++i] ?? '').split(',').map(candidateNamed);
    else if (a === '--rounds') {
      o.rounds = Number(argv[++i]);
      if (!Number.isInteger(o.rounds) || o.rounds < 1 || o.rounds > 9) throw new Error('--rounds: an integer from 1 to 9');
    } else if (a === '--quick') o.quick = true;
    else throw new Error(`unknown argument ${a}; usage: compare.ts [--only a,b] [--rounds N] [--quick]`);
  }
  return o;
}

interface CandidateReport {
  name: string;
  describe: Record<string, string>;
  port: number;
  throughput: { small: ThroughputResult[]; batch: ThroughputResult[] };
  medians: { small: Medians; batch: Medians };
  redelivery?: RedeliveryResult;
  /** One per outage length (--outages). */
  recovery: RecoveryResult[];
  errors: string[];
}

type Medians = Pick<ThroughputResult, 'publishPerSec' | 'consumePerSec' | 'brokerCpuUsPerMsgPublish' | 'brokerCpuUsPerMsgConsume'>;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? 0 : s.length % 2 ? s[m]! : Math.round((s[m - 1]! + s[m]!) / 2);
}

function medians(rs: ThroughputResult[]): Medians {
  return {
    publishPerSec: median(rs.map((r) => r.publishPerSec)),
    consumePerSec: median(rs.map((r) => r.consumePerSec)),
    brokerCpuUsPerMsgPublish: median(rs.map((r) => r.brokerCpuUsPerMsgPublish)),
    brokerCpuUsPerMsgConsume: median(rs.map((r) => r.brokerCpuUsPerMsgConsume)),
  };
}

const opts = parseArgs(process.argv.slice(2));
const counts = opts.quick ? { small: 5000, batch: 500 } : { small: 10_000, batch: 1000 };
const phaseTimeoutMs = opts.quick ? 10_000 : 20_000;
/** How long the broker stays down in the recovery scenario: a quick restart, and an outage longer than the clients' first reconnect backoffs. */
const outages = opts.quick ? [1000] : [1000, 10_000];
const startedAt = new Date().toISOString();
const machine = machineInfo();
const root = mkdtempSync(path.join(os.tmpdir(), 'ladder-brokers-'));
chmodSync(root, 0o755);
const servers: { c: Candidate; s: BrokerServer; r: CandidateReport }[] = [];
const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

async function stopAll(): Promise<void> {
  await Promise.allSettled(servers.map(({ s }) => s.stop()));
  rmSync(root, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping the brokers`);
    void stopAll().finally(() => process.exit(130));
  });
}

const childEntry = new URL(`./consumer-child${path.extname(new URL(import.meta.url).pathname)}`, import.meta.url);
const sizes = { small: { size: SMALL, bytes: messageBytes(SMALL), count: counts.small }, batch: { size: BATCH, bytes: messageBytes(BATCH), count: counts.batch } };

try {
  for (const c of opts.only) {
    const port = await freePort();
    const dir = path.join(root, c.name);
    mkdirSync(dir, { recursive: true });
    const s = c.server(dir, port);
    log(`${c.name}: starting on 127.0.0.1:${port}`);
    await s.start();
    servers.push({ c, s, r: { name: c.name, describe: c.describe(), port, throughput: { small: [], batch: [] }, medians: { small: medians([]), batch: medians([]) }, recovery: [], errors: [] } });
  }

  for (let round = 0; round < opts.rounds; round++) {
    for (const key of ['small', 'batch'] as const) {
      const order = servers.map((_, i) => servers[(i + round) % servers.length]!);
      for (const { c, s, r } of order) {
        const { size, bytes, count } = sizes[key];
        try {
          const t = await throughput(c, s, size, bytes, count, phaseTimeoutMs, `tp_${key}_${round}`);
          r.throughput[key].push(t);
          log(`${c.name}: ${key} round ${round + 1}: publish ${t.publishPerSec}/s, consume ${t.consumePerSec}/s${t.timedOut ? ' (timed out)' : ''}`);
        } catch (err) {
          r.errors.push(`throughput ${key} round ${round + 1}: ${String(err)}`);
          log(`${c.name}: throughput ${key} failed: ${String(err)}`);
        }
      }
    }
  }
  for (const { r } of servers) r.medians = { small: medians(r.throughput.small), batch: medians(r.throughput.batch) };

  for (const { c, s, r } of servers) {
    if (c.variantOf) continue; // the same client code as its base candidate: nothing new to see
    try {
      r.redelivery = await redelivery(c, s, childEntry, 'redeliver');
      log(`${c.name}: redelivered ${r.redelivery.redeliveredAfterKillMs} ms after the kill; dead-lettered: ${r.redelivery.deadLettered}`);
    } catch (err) {
      r.errors.push(`redelivery: ${String(err)}`);
      log(`${c.name}: redelivery failed: ${String(err)}`);
    }
  }
  for (const downForMs of outages) {
    for (const { c, s, r } of servers) {
      try {
        const rec = await recovery(c, s, `recovery_${downForMs}`, BATCH, sizes.batch.bytes, downForMs);
        r.recovery.push(rec);
        log(`${c.name}: down ${downForMs} ms: lost ${rec.ackedLost}, consumers back in ${rec.consumersResumedMs} ms, duplicates ${rec.duplicates}`);
      } catch (err) {
        r.errors.push(`recovery (${downForMs} ms down): ${String(err)}`);
        log(`${c.name}: recovery (${downForMs} ms down) failed: ${String(err)}`);
      }
    }
  }
} finally {
  await stopAll();
}

const report = {
  scenario: 'brokers',
  command: `${import.meta.url.endsWith('.ts') ? 'npx tsx src/lab/brokers/compare.ts' : 'node dist/lab/brokers/compare.js'} ${process.argv.slice(2).join(' ')}`.trim(),
  startedAt,
  finishedAt: new Date().toISOString(),
  machine: { ...machine, loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100) },
  parameters: {
    rounds: opts.rounds,
    counts,
    phaseTimeoutMs,
    outagesMs: outages,
    messageBytes: { small: sizes.small.bytes, batch: sizes.batch.bytes },
    consumerConcurrency: 2,
    publishChunk: 100,
  },
  candidates: servers.map(({ r }) => r),
};

const resultsDir = path.join(process.cwd(), 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
const stamp = startedAt.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
const file = path.join(resultsDir, `brokers-${stamp}.json`);
const text = JSON.stringify(report, null, 2) + '\n';
writeFileSync(file, text);
writeFileSync(path.join(resultsDir, 'brokers-latest.json.tmp'), text);
renameSync(path.join(resultsDir, 'brokers-latest.json.tmp'), path.join(resultsDir, 'brokers-latest.json'));

const na = (v: number | null | undefined, unit = '') => (v === null || v === undefined ? '–' : `${v.toLocaleString('en-US')}${unit}`);
const rows: [string, (r: CandidateReport) => string][] = [
  [`publish/s, small (${sizes.small.bytes} B)`, (r) => na(r.medians.small.publishPerSec)],
  [`consume+ack/s, small`, (r) => na(r.medians.small.consumePerSec)],
  [`publish/s, batch (${sizes.batch.bytes} B)`, (r) => na(r.medians.batch.publishPerSec)],
  [`consume+ack/s, batch`, (r) => na(r.medians.batch.consumePerSec)],
  ['broker CPU µs/msg, batch, publish', (r) => na(r.medians.batch.brokerCpuUsPerMsgPublish)],
  ['broker CPU µs/msg, batch, consume', (r) => na(r.medians.batch.brokerCpuUsPerMsgConsume)],
  ['redelivery after consumer kill (5 s visibility)', (r) => na(r.redelivery?.redeliveredAfterKillMs, ' ms')],
  ['attempt seen on redelivery', (r) => na(r.redelivery?.attemptSeenOnRedelivery)],
  ['failing message: attempts, then DLQ', (r) => (r.redelivery ? `${r.redelivery.failingAttemptsSeen.join(',')} → ${r.redelivery.deadLettered ? `DLQ in ${r.redelivery.deadLetteredAfterMs} ms` : 'no DLQ'}` : '–')],
  [
    'crash loop: attempts seen, then DLQ',
    (r) =>
      r.redelivery
        ? `${r.redelivery.crashLoopAttemptsSeen.join(',')} → ${r.redelivery.crashLoopDeadLettered ? `DLQ in ${r.redelivery.crashLoopDeadLetteredAfterMs} ms` : 'no DLQ'}`
        : '–',
  ],
  [
    'hung handler: redelivered after',
    (r) => (r.redelivery ? (r.redelivery.hungRedeliveredAfterMs === null ? 'never (12 s)' : `${r.redelivery.hungRedeliveredAfterMs} ms`) : '–'),
  ],
  ...outages.flatMap((down): [string, (r: CandidateReport) => string][] => {
    const rec = (r: CandidateReport) => r.recovery.find((x) => x.downForMs === down);
    const ms = (v: number | null | undefined) => (v === null || v === undefined ? 'did not' : `${v.toLocaleString('en-US')} ms`);
    const k = `SIGKILL, ${down / 1000} s down:`;
    return [
      [`${k} broker back after`, (r) => (rec(r) ? ms(rec(r)!.downMs) : '–')],
      [`${k} fresh client publishes after`, (r) => (rec(r) ? ms(rec(r)!.probePublishedMs) : '–')],
      [`${k} consumers resumed after`, (r) => (rec(r) ? ms(rec(r)!.consumersResumedMs) : '–')],
      [`${k} publisher resumed after`, (r) => (rec(r) ? ms(rec(r)!.publisherResumedMs) : '–')],
      [`${k} acked publishes lost`, (r) => (rec(r) ? `${rec(r)!.ackedLost} of ${rec(r)!.publishAcked}` : '–')],
      [`${k} duplicate deliveries`, (r) => na(rec(r)?.duplicates)],
      [`${k} publishes failed / timed out`, (r) => (rec(r) ? `${rec(r)!.publishFailed} / ${rec(r)!.publishTimedOut}` : '–')],
    ];
  }),
];
const cands = servers.map(({ r }) => r);
const width = Math.max(...rows.map(([k]) => k.length));
const colW = cands.map((c) => Math.max(c.name.length, ...rows.map(([, f]) => f(c).length)));
console.log(['', ''.padEnd(width), ...cands.map((c, i) => c.name.padStart(colW[i]!))].join(' | '));
for (const [k, f] of rows) console.log(['', k.padEnd(width), ...cands.map((c, i) => f(c).padStart(colW[i]!))].join(' | '));
for (const c of cands) for (const e of c.errors) console.log(`${c.name}: ${e}`);
console.log(`\nload average ${machine.loadAverage.join(' ')} at the start, ${report.machine.loadAverageAtEnd.join(' ')} at the end; report: ${path.relative(process.cwd(), file)}`);
