// Scenario `queue` (rung 9): what the queue and its workers carry, against one launched
// topology (`ladder up --rung 9 --workers 2`, `--replicas 0` unless told):
//  1. The redirect saturation rate of the topology at its entry (saturation rounds).
//  2. End-to-end click capacity of the asynchronous path (relay -> broker -> workers ->
//     Postgres): a backlog of clicks appears at once in the click log folder as the segment of
//     a writer that has exited (what a web server leaves after a crash), and the time until
//     every one is applied (click_batches) gives clicks per second. Target: at least 3x the
//     redirect saturation rate, so the workers keep up with the web tier at full load.
//  3. Outbox-to-stats lag at 50% load: during a fixed-rate phase at half the saturation rate,
//     links are created through the entry (10 a second); for each, from its outbox row's
//     commit time to its application by a worker (outbox_applied), both Postgres clocks.
//     Target: p99 <= 2 s.
//  4. The redirect's p99 with durable capture (a click appended to the local log before the
//     302) against the in-process buffer (rung 1 to 7): two `ladder start` servers on the
//     topology's Postgres, one with CLICK_LOG_DIR (the topology's, so the relay ships it), one
//     without, at the same fixed rate (the share of the 50% load one web server carried),
//     alternating over the rounds. Target: the medians' ratio <= 1.10.
import { randomBytes, randomUUID } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { clickLine } from '../../kit/queue/click-log-format.ts';
import { upDir } from '../../launcher/up-state.ts';
import { cgroupAvailable, lowestWeight, releaseGroupDir } from '../../launcher/cgroup-cpu.ts';
import { pinTree } from '../machine/cpu-pinning.ts';
import { mediansOf, type Measurement } from '../measure/measurement.ts';
import { fixedRate, saturationRounds } from '../measure/phases.ts';
import { warmUp } from '../measure/warm-up.ts';
import { target, type BenchReport } from '../report/bench-report.ts';
import { startApp } from '../targets/bench-servers.ts';
import type { BenchTopology } from '../targets/bench-topology.ts';
import {
  checkRedirects,
  fixedRateNotes,
  healthCheckNotes,
  pinForFixedRate,
  seedRedirectLinks,
  startTopologyRun,
  upFlags,
  withDatabase,
} from '../targets/topology-run.ts';
import { requestErrors, serverRows, topologyParts, type Scenario, type ScenarioContext } from './scaffold.ts';

const DEFAULT_RUNG = 9;
const WORKERS = 2;
const POOL_SIZE = 10;
/** The targets. */
export const MIN_CAPACITY_VS_REDIRECTS = 3;
export const MAX_OUTBOX_LAG_P99_S = 2;
export const MAX_DURABLE_P99_RATIO = 1.1;
/** Links created per second during the lag phase. */
const CREATES_PER_SECOND = 10;
/** A pid no process has (above Linux's pid_max), so the relay treats the backlog's writer as gone. */
const GONE_PID = 4_194_999;

export const queueScenario: Scenario = {
  name: 'queue',
  summary: 'rung 9: click capacity of relay, broker and workers vs the redirect rate; outbox-to-stats lag; redirect p99, durable capture vs in-process buffer',
  options: [{ flag: '--rung', default: String(DEFAULT_RUNG) }, { flag: '--web' }, { flag: '--cpu' }, { flag: '--replicas', default: '0' }, { flag: '--db-cpu' }],
  run: queueBench,
};

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

/** Writes `clicks` clicks over the first `links` link ids as one segment of an exited writer; resolves once all are applied. */
async function clickCapacity(topology: BenchTopology, clicks: number, links: number, log: (m: string) => void): Promise<{ seconds: number; batches: number }> {
  const dir = path.join(upDir(topology.stateDir), 'clicklog');
  const producer = `bench.${Date.now()}.${GONE_PID}.0`;
  const day = new Date().toISOString().slice(0, 10);
  // Each with a request key of its own, as every redirect through the balancer has at rung 9
  // (the workers record each key: docs/operations.md, "Request keys").
  const lines: string[] = [];
  for (let i = 0; i < clicks; i++) lines.push(clickLine(String((i % links) + 1), day, randomUUID()));
  const tmp = path.join(dir, `${producer}.tmp`);
  writeFileSync(tmp, lines.join(''));
  log(`click capacity: ${clicks.toLocaleString('en-US')} clicks appear at once in the click log folder…`);
  const started = performance.now();
  renameSync(tmp, path.join(dir, `${producer}.clicks`));
  let applied = 0;
  let batches = 0;
  const deadline = performance.now() + 300_000;
  while (applied < clicks) {
    if (performance.now() > deadline) throw new Error(`only ${applied} of ${clicks} clicks applied after 300 s`);
    await new Promise((r) => setTimeout(r, 20));
    await withDatabase(topology, async (db) => {
      const row = (await db.query<{ n: string; b: string }>('select coalesce(sum(clicks), 0) as n, count(*) as b from click_batches where producer = $1', [producer])).rows[0]!;
      applied = Number(row.n);
      batches = Number(row.b);
    });
  }
  return { seconds: (performance.now() - started) / 1000, batches };
}

/** Creates links through the entry, CREATES_PER_SECOND a second, until `stop` resolves; returns the first outbox id it may have made. */
async function createLinks(entry: string, stop: Promise<unknown>): Promise<{ created: number; failed: number }> {
  const email = `bench-${randomBytes(6).toString('hex')}@example.com`;
  const signup = await fetch(`${entry}/api/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'correct horse battery' }) });
  if (signup.status !== 201) throw new Error(`signup failed: ${signup.status}`);
  const cookie = signup.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  let done = false;
  void stop.then(() => (done = true));
  let created = 0;
  let failed = 0;
  const pending: Promise<void>[] = [];
  for (let i = 0; !done; i++) {
    pending.push(
      fetch(`${entry}/api/links`, { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify({ url: `https://example.com/lag/${i}` }) }).then(
        async (r) => {
          await r.arrayBuffer();
          if (r.status === 201) created++;
          else failed++;
        },
        () => void failed++,
      ),
    );
    await new Promise((r) => setTimeout(r, 1000 / CREATES_PER_SECOND));
  }
  await Promise.all(pending);
  return { created, failed };
}

async function queueBench(ctx: ScenarioContext): Promise<BenchReport> {
  const { o, session, log } = ctx;
  const up = upFlags(o, { rung: DEFAULT_RUNG });
  if (up.rung < 9) throw new Error(`queues and workers run from rung 9: use --rung 9 or more (not ${up.rung})`);
  up.replicas ??= 0;
  const run = await startTopologyRun(session, { ...up, upArgs: ['--workers', String(WORKERS)] }, seedRedirectLinks(session, o.links));
  const { topology, driver } = run;
  await checkRedirects(topology, o.links);

  // 1. Redirect saturation.
  const name = `rung${up.rung}`;
  const entry = topology.target(name);
  log('warming up the web servers until their throughput is flat…');
  const warmup = await warmUp(driver, entry, o, log);
  const downsBefore = await topology.healthCheckDowns();
  const saturation = await saturationRounds(driver, [entry], o, log);
  const m = mediansOf(saturation, name);

  // 2. Click capacity of the asynchronous path.
  const clicks = Math.max(200_000, Math.round(m.throughput * 20));
  const capacity = await clickCapacity(topology, clicks, Math.min(o.links, 10_000), log);
  const clicksPerSecond = clicks / capacity.seconds;
  log(`click capacity: ${Math.round(clicksPerSecond).toLocaleString('en-US')} clicks/s (${capacity.batches} batches in ${capacity.seconds.toFixed(2)} s)`);

  // 3. Outbox lag at 50% load.
  const fixedPlan = ctx.fixedRatePlan(m.throughput, "the topology's");
  const fixedPinning = pinForFixedRate(topology, m, fixedPlan.rate);
  log(fixedPinning.note);
  let firstEvent = '0';
  await withDatabase(topology, async (db) => {
    firstEvent = (await db.query<{ id: string }>('select coalesce(max(id), 0) as id from outbox')).rows[0]!.id;
  });
  const phase = fixedRate(driver, [entry], o, fixedPlan.rate, log);
  const creates = createLinks(topology.entry.href.replace(/\/$/, ''), phase);
  const fixed = await phase;
  const made = await creates;
  let lags: number[] = [];
  const lagDeadline = Date.now() + 30_000;
  for (;;) {
    await withDatabase(topology, async (db) => {
      const rows = await db.query<{ lag: number | null }>(
        `select extract(epoch from a.applied_at - o.created_at)::float8 as lag
         from outbox o left join outbox_applied a on a.event_id = o.id where o.id > $1`,
        [firstEvent],
      );
      lags = rows.rows.every((r) => r.lag !== null) ? rows.rows.map((r) => r.lag!) : [];
    });
    if (lags.length >= made.created || Date.now() > lagDeadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  lags.sort((a, b) => a - b);
  const lagP99 = lags.length >= made.created && made.created > 0 ? percentile(lags, 0.99) : NaN;
  log(`outbox-to-stats lag over ${lags.length} events: p50 ${percentile(lags, 0.5).toFixed(3)} s, p99 ${lagP99.toFixed(3)} s`);

  // 4. Durable capture vs the in-process buffer, one server each, at one web server's share of the 50% load.
  // The broker and the workers move to the load driver's CPU for this phase: deployed, they
  // run on hosts of their own (ElastiCache and the worker service in the AWS app), never beside
  // a web server, while the relay runs beside the web servers (a sidecar in the web task) and
  // stays, as does Postgres. Left on the measured server's CPU, their batches took it in turns
  // with the durable server and not with the other (p99 ratio 1.6 to 1.8; 0.95 with the log
  // written and not shipped), which measured where the workers run, not the capture.
  // There they take only the time the driver leaves (the lowest cgroup weight): with equal
  // weight their batches made the driver send the durable server's requests late (120-170
  // late sends a round against 40-70), and latency counts from the scheduled time.
  const offHost = [...topology.nodes('queue'), ...topology.nodes('worker')].filter((n) => n.pid);
  let offHostGroup: string | undefined;
  if (run.pinning.driver !== undefined) {
    for (const n of offHost) pinTree(n.pid!, run.pinning.driver);
    if (cgroupAvailable()) offHostGroup = lowestWeight(`ladder-offhost-${process.pid}`, offHost.map((n) => n.pid!));
  }
  const offHostNote =
    run.pinning.driver !== undefined
      ? `durable vs in-process: the broker and the workers (${offHost.map((n) => n.name).join(', ')}) on the load driver's CPU ${run.pinning.driver}${offHostGroup ? ' at the lowest CPU weight' : ''}, as on hosts of their own; the relay and Postgres with the servers`
      : 'durable vs in-process: nothing pinned; the broker and the workers shared the servers\' CPUs';
  log(offHostNote);
  const databaseUrl = topology.databaseUrl();
  const databasePid = topology.nodes('postgres')[0]?.pid ?? undefined;
  const common = { cpus: run.pinning.servers, links: o.links, databaseUrl, databasePid };
  const [durable, buffered] = await Promise.all([
    startApp(session, {
      ...common,
      name: 'app-durable',
      label: 'Links app, clicks appended to the local log before the 302 (rung 9), shipped by the topology\'s relay',
      env: { CLICK_LOG_DIR: path.join(path.resolve(upDir(topology.stateDir)), 'clicklog'), LADDER_NODE: 'benchdurable' },
    }),
    startApp(session, { ...common, name: 'app-buffered', label: 'Links app, clicks in the in-process buffer flushed every second (rungs 1 to 7)' }),
  ]);
  const perServer = Math.max(1, Math.round(fixedPlan.rate / Math.max(1, topology.webs().length)));
  for (const s of [durable, buffered]) await warmUp(driver, s, o, log);
  const pairs: Measurement[] = [];
  try {
    for (let round = 1; round <= o.rounds; round++) pairs.push(...(await fixedRate(driver, [durable, buffered], o, perServer, log, {}, round)));
  } finally {
    if (offHostGroup) releaseGroupDir(offHostGroup);
  }
  const p99 = (n: string) => {
    const v = pairs.filter((x) => x.server === n).map((x) => x.latency.p99).sort((a, b) => a - b);
    return v[Math.floor((v.length - 1) / 2)]!;
  };
  const p99Ratio = p99('app-durable') / p99('app-buffered');

  const downs = (await topology.healthCheckDowns()) - downsBefore;
  const parts = topologyParts(run, fixedPinning.note);
  const errors = requestErrors([...saturation, ...fixed, ...pairs]);
  const ratios = {
    'click capacity / redirect saturation': clicksPerSecond / m.throughput,
    'redirect p99 at a fixed rate, durable / in-process': p99Ratio,
  };
  const targets = [
    target('click capacity / redirect saturation rate', ratios['click capacity / redirect saturation'], '>=', MIN_CAPACITY_VS_REDIRECTS),
    target('outbox-to-stats lag p99 at 50% load, s', lagP99, '<=', MAX_OUTBOX_LAG_P99_S),
    target('redirect p99 at a fixed rate, durable capture / in-process buffer', p99Ratio, '<=', MAX_DURABLE_P99_RATIO),
    target('failed or non-302 requests', errors, '==', 0),
  ];
  const webs = topology.webs();
  return ctx.report({
    resolved: { rung: up.rung, replicas: up.replicas },
    poolSize: POOL_SIZE,
    pinning: parts.pinning,
    databases: parts.databases,
    servers: [
      { name, label: `${parts.topology.command} --workers ${WORKERS}: ${webs.length} web server(s), driven at the entry ${parts.topology.entry ?? ''}`, pid: 0 },
      ...serverRows([durable, buffered]),
    ],
    saturation: { measurements: saturation, medians: [m] },
    fixedRate: { ...fixedPlan, measurements: [...fixed, ...pairs] },
    memory: parts.memory,
    ratios,
    figures: {
      'initial warm-up, s': warmup.seconds,
      'redirect saturation, req/s': m.throughput,
      'click backlog, clicks': clicks,
      'click backlog applied in, s': capacity.seconds,
      'click capacity, clicks/s': clicksPerSecond,
      'click batches': capacity.batches,
      'links created during the 50% phase': made.created,
      'link creations that failed': made.failed,
      'outbox-to-stats lag p50, s': percentile(lags, 0.5),
      'outbox-to-stats lag p99, s': lagP99,
      'outbox-to-stats lag max, s': lags[lags.length - 1] ?? NaN,
      'fixed rate per server (durable vs in-process), req/s': perServer,
      'redirect p99, durable capture (median of rounds), ms': p99('app-durable'),
      'redirect p99, in-process buffer (median of rounds), ms': p99('app-buffered'),
      'web servers taken out of rotation by a failed health check': downs,
    },
    topology: parts.topology,
    targets,
    notes: [
      ...parts.notes,
      ...ctx.measurementNotes([...saturation, ...fixed, ...pairs]),
      ...fixedRateNotes(fixed, run.pinning, fixedPinning.moved),
      ...healthCheckNotes(downs, 'the run'),
      offHostNote,
      'click capacity is the asynchronous path after the log (relay, broker, 2 workers, Postgres) on a backlog that appears at once; the log write itself is in the redirect p99 comparison',
    ],
  });
}
