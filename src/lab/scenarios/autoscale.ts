// Scenario `autoscale`: the load step. Web servers capped with --cpu (0.15 core unless told)
// behind HAProxy (rung 3 unless --rung). The requests are redirects with a query string
// (`/CODE?via=route`, uniform over the links): a query string takes the app's Fastify route
// instead of the in-process fast path, which answers a cached redirect in about 30 us of CPU;
// at that cost 150% of one capped server is more requests per second than this two-core
// machine can send and route besides (the first run saw 7,800 req/s asked and the driver
// fall behind), while the route's cost keeps the step within reach of one load process.
// First one server's capacity: closed loop through HAProxy on a topology of one server
// without the autoscaler (so nothing scales while it is measured). Then `ladder up ...
// --autoscale 1:4 --autoscale-sync S --scale-in-window W`, a warm-up at the low rate (a
// fresh server's first requests cost several times a warm one's, which the autoscaler
// would answer with servers), a wait until the tier is back at one server, and the
// open-loop arrival rate, second by second:
//   20% of that capacity for BASE_S, 150% for HIGH_S, 5% for W + LOW_EXTRA_S.
// The target CPU is 80%, not the HPA's 60%, and the load drops to 5%, not back to 20%, for
// one reason measured on this VM: a capped node server's CPU hardly follows its load below
// saturation (at 0.15 core: 53% of its cap at 100 req/s, 72% at 200, 64% at 400, 75% at 800,
// 99% at 1,600: per request 790 us at 100 req/s, 93 us at 1,600, as wake-ups and system
// calls are shared by more requests). At a 60% target one server at 20% of its capacity
// already asks for a second; and 20% spread over the servers the step added keeps each near
// 50%, which the HPA's rule (ceil(current x utilisation / target)) never scales in from.
// Targets (issue 17): the first server is added (serving) within 15 s of the step; p99 at the
// fixed rate recovers within 45 s of it (the median p99 of every 5 s from then to the end of
// the high phase under the base phase's p99 times 2 plus 25 ms); after the drop, no
// server goes before the window has passed and the tier is back to one by the end; no
// request fails. The report's `timeSeries` has servers, rate and p99 per second, and the
// run writes the chart of it to docs/autoscale-step.svg (docs/performance.md shows it).
// The step load runs in this process, pinned to the load driver's CPU; the topology, and
// the servers the autoscaler adds (children of the supervisor, pinned with it), on the others.
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../kit/errors.ts';
import { preciseCpuSeconds } from '../../kit/process/process-cpu.ts';
import { benchCode } from '../dataset/bench-links.ts';
import { runStepLoad, type LoadSecond } from '../driver/step-load.ts';
import { allowedCpus, pin } from '../machine/cpu-pinning.ts';
import { measure, mediansOf, median } from '../measure/measurement.ts';
import { plan } from '../measure/phases.ts';
import { warmUp } from '../measure/warm-up.ts';
import { target, type BenchReport, type TimeSeriesRow } from '../report/bench-report.ts';
import { timeSeriesSvg } from '../report/time-series-svg.ts';
import { launchSeeded, checkRedirects, seedRedirectLinks, startTopologyRun, upFlags } from '../targets/topology-run.ts';
import { requestErrors, topologyParts, type Scenario, type ScenarioContext } from './scaffold.ts';

const DEFAULT_RUNG = 3;
const DEFAULT_CPU = 0.15;
const MIN = 1;
const MAX = 4;
const TARGET_CPU = 0.8;
const LOW_SHARE = 0.2;
const HIGH_SHARE = 1.5;
const AFTER_SHARE = 0.05;
const BASE_S = 20;
const HIGH_S = 60;
/** After the window, long enough for the removals (drain, stop) and a few quiet seconds. */
const LOW_EXTRA_S = 40;
/** Issue 17's targets. */
const FIRST_SERVER_WITHIN_S = 15;
const P99_RECOVERS_WITHIN_S = 45;
const POOL_SIZE = 10;
/** Warm-up of the autoscaled topology at the low rate, not recorded. */
const WARM_S = 15;

const SVG = fileURLToPath(new URL('../../../docs/autoscale-step.svg', import.meta.url));

export const autoscaleScenario: Scenario = {
  name: 'autoscale',
  summary: 'a load step from 20% to 150% of one capped server, then 5%, with `ladder up --autoscale 1:4`: servers, rate and p99 per second',
  options: [{ flag: '--rung', default: String(DEFAULT_RUNG) }, { flag: '--cpu', default: String(DEFAULT_CPU) }, { flag: '--sync' }, { flag: '--window' }],
  run: autoscale,
};

async function autoscale(ctx: ScenarioContext): Promise<BenchReport> {
  const { o, session, log } = ctx;
  const up = upFlags(o, { rung: DEFAULT_RUNG, cpu: DEFAULT_CPU });
  if (up.rung < 3) throw new ConfigError('--rung', `rung ${up.rung} has no load balancer to scale behind`, 'use --rung 3 or more');
  if (o.web !== undefined && o.web !== MIN) throw new ConfigError('--web', 'the autoscaled tier starts at one server', 'leave out --web');

  // 1. One server's capacity, on a topology that cannot scale.
  const seed = seedRedirectLinks(session, o.links);
  const capacityRun = await startTopologyRun(session, { ...up, web: 1, folder: 'capacity' }, seed);
  const { driver, pinning } = capacityRun;
  await checkRedirects(capacityRun.topology, o.links);
  if (!capacityRun.topology.capped()) log('WARNING: the web servers are not capped (the cgroup cpu controller is not writable): the step means little');
  const entry1 = capacityRun.topology.target('1 server');
  const paths = Array.from({ length: o.links }, (_, i) => `/${benchCode(i)}?via=route`);
  // The driver's logged-in-user workload with a cookie no session has: only the paths matter here.
  const workload = { session: { cookies: ['bench=autoscale'], paths }, expectStatus: 302 };
  const warmup = await warmUp(driver, entry1, o, log, workload, o.connections);
  const saturation = [];
  for (let round = 1; round <= o.rounds; round++) {
    const m = await measure(driver, entry1, plan(o, 'closed', undefined, workload), round);
    log(`capacity ${round}/${o.rounds}: ${Math.round(m.throughput)} req/s through HAProxy, web CPU ${Math.round(m.serverCpu * 100)}%, errors ${m.non302 + m.failed}`);
    saturation.push(m);
  }
  const closed = mediansOf(saturation, '1 server');
  // What the step is a share of: the arrival rate at which the server runs out of CPU. Not the
  // closed-loop figure: with 32 requests always waiting, node answers many per event-loop
  // turn and spends a fraction of the CPU per request that it spends on requests arriving
  // one by one (5x less, measured on this machine), so 20% of the closed-loop figure would
  // already ask for more servers. A ramp of the arrival rate finds it.
  const web1 = capacityRun.topology.webs()[0]!;
  const cap = up.cpu ?? 1;
  // Pinned as the step will be: the topology on the servers' CPUs, the load (this process) alone.
  capacityRun.topology.pin('fixed-rate');
  pin(process.pid, pinning.driver);
  const ramp = await rampToCapacity(capacityRun.topology.entry, web1.pid!, cap, closed.throughput, paths, log);
  pin(process.pid, allowedCpus().join(','));
  const capacityTopology = topologyParts(capacityRun, '').topology;
  await capacityRun.topology.down();
  const capacity = { throughput: ramp.capacity };

  // 2. The autoscaled topology and the step.
  const upArgs = ['--autoscale', `${MIN}:${MAX}`, '--target-cpu', String(TARGET_CPU), '--autoscale-sync', String(o.sync), '--scale-in-window', String(o.window)];
  const launched = await launchSeeded(session, { ...up, web: undefined, folder: 'autoscaled', upArgs }, pinning, seed);
  const run = { ...launched, driver };
  const { topology } = run;
  await checkRedirects(topology, o.links);
  // Fixed-rate pinning: the topology on the servers' CPUs and the driver (this process) alone;
  // the supervisor too, so that the servers it adds start there.
  topology.pin('fixed-rate');
  const supervisor = (topology.status() as { supervisor?: number | null }).supervisor;
  if (supervisor) pin(supervisor, pinning.servers);
  pin(process.pid, pinning.driver);

  const low = Math.max(1, Math.round(capacity.throughput * LOW_SHARE));
  const high = Math.max(1, Math.round(capacity.throughput * HIGH_SHARE));
  const after = Math.max(1, Math.round(capacity.throughput * AFTER_SHARE));
  const highEnd = BASE_S + HIGH_S;
  const total = highEnd + o.window + LOW_EXTRA_S;
  const rate = (t: number) => (t < BASE_S ? low : t < highEnd ? high : after);
  const servingNow = () => topology.webs().filter((w) => w.state === 'ready').length;
  const url = topology.entry;
  log(`step: ${low} req/s for ${BASE_S} s, ${high} req/s for ${HIGH_S} s, ${after} req/s for ${o.window + LOW_EXTRA_S} s (one server: ${Math.round(capacity.throughput)} req/s arriving, ${Math.round(closed.throughput)} req/s closed loop)`);
  let n = 0;
  const path = () => paths[n++ % paths.length]!;
  const common = { host: url.hostname, port: Number(url.port), path, ok: (s: number) => s === 302, maxConnections: 512 };
  log(`warming the autoscaled topology up: ${low} req/s for ${WARM_S} s`);
  const warm = await runStepLoad({ ...common, rate: () => low, durationS: WARM_S });
  const settleUntil = Date.now() + (o.window + 30) * 1000;
  if (servingNow() > MIN) log(`the warm-up scaled the tier to ${servingNow()}: waiting for it to come back to ${MIN} (up to ${o.window + 30} s)`);
  while (servingNow() > MIN && Date.now() < settleUntil) await new Promise((r) => setTimeout(r, 500));
  const serversAtStart = servingNow();

  // Servers serving, sampled four times a second, kept per second (the most of that second).
  const servers: number[] = [];
  const t0 = performance.now();
  const stepStartedAt = new Date().toISOString();
  const sampler = setInterval(() => {
    const s = Math.floor((performance.now() - t0) / 1000);
    servers[s] = Math.max(servers[s] ?? 0, servingNow());
  }, 250);
  const load = await runStepLoad({
    ...common,
    rate,
    durationS: total,
    onSecond: (s: LoadSecond) => {
      if (s.second % 10 === 0 || s.failed > 0) log(`t=${s.second} s: ${servers[s.second]} server(s), ${s.rate} req/s asked, ${s.sent} sent, p99 ${s.p99.toFixed(1)} ms, failed ${s.failed}`);
    },
  });
  clearInterval(sampler);
  pin(process.pid, allowedCpus().join(','));

  const series: TimeSeriesRow[] = load.series.map((s) => ({
    t: s.second,
    servers: servers[s.second] ?? servers[s.second - 1] ?? 1,
    rate: s.rate,
    sent: s.sent,
    ok: s.ok,
    failed: s.failed,
    p50: s.p50,
    p99: s.p99,
  }));
  // NaN when it never happened: every target on it then fails.
  const firstAdded = series.find((r) => r.t >= BASE_S && r.servers > serversAtStart);
  const firstAddedS = firstAdded ? firstAdded.t - BASE_S + 1 : NaN; // counted to the end of the second it was seen in
  const baseP99 = median(series.filter((r) => r.t >= 5 && r.t < BASE_S).map((r) => r.p99));
  const recoveredBelow = baseP99 * 2 + 25;
  const high_ = series.filter((r) => r.t >= BASE_S && r.t < highEnd);
  // Recovered from the first second after which every 5-second window's median p99 stays under
  // the bound to the end of the high phase: a one-second stall of a busy neighbour does not
  // undo it, a queue that is still draining does.
  const windowP99 = high_.map((_, i) => median(high_.slice(i, i + 5).map((r) => r.p99)));
  let recoveredAt = NaN;
  for (let i = windowP99.length - 1; i >= 0 && windowP99[i]! <= recoveredBelow; i--) recoveredAt = high_[i]!.t - BASE_S;
  const peak = Math.max(...series.map((r) => r.servers));
  const afterDrop = series.filter((r) => r.t >= highEnd);
  const firstRemoved = afterDrop.find((r, i) => i > 0 && r.servers < afterDrop[i - 1]!.servers);
  const firstRemovedS = firstRemoved ? firstRemoved.t - highEnd : NaN;
  const endServers = series[series.length - 1]?.servers ?? NaN;
  // This run's (the supervisor's log of the bench folder keeps earlier runs' too).
  const decisions = topology.autoscalerDecisions().filter((l) => (/^autoscaler: (\S+)/.exec(l)?.[1] ?? '') >= stepStartedAt);

  const svg = timeSeriesSvg(
    `ladder bench autoscale: ${low} → ${high} → ${after} req/s, servers at ${up.cpu} core, sync ${o.sync} s, scale-in window ${o.window} s`,
    series.map((r) => ({ t: r.t, servers: r.servers, rate: r.rate, p99: r.p99 })),
    [
      { t: BASE_S, label: 'step up' },
      ...(firstAdded ? [{ t: firstAdded.t + 1, label: `+1 server (${firstAddedS} s)` }] : []),
      { t: highEnd, label: 'step down' },
      { t: highEnd + o.window, label: 'window ends' },
    ],
  );
  writeFileSync(SVG, svg);
  log(`chart written to ${SVG}`);

  const parts = topologyParts(run, `step load: the topology and the servers the autoscaler adds on CPU ${pinning.servers ?? 'any'}, the step load (this process) on CPU ${pinning.driver ?? 'any'}`);
  const errors = load.failed + warm.failed + ramp.failed;
  const notes = [...parts.notes, ...ctx.measurementNotes(saturation)];
  if (!warmup.flat) notes.push(`the capacity warm-up was not flat after ${warmup.seconds} s`);
  if (errors > 0) notes.push(`failed requests: ${JSON.stringify({ ...warm.failures, ...load.failures })}`);
  if (serversAtStart !== MIN) notes.push(`the tier still ran ${serversAtStart} servers when the step load started (the warm-up had scaled it out)`);
  notes.push(`the p99 of the base phase was ${baseP99.toFixed(1)} ms; "recovered" means the median p99 of every 5 s from then to the end of the high phase stayed under ${recoveredBelow.toFixed(1)} ms`);
  for (const d of decisions.filter((l) => / \((out|in)\): /.test(l))) notes.push(d);
  return ctx.report({
    resolved: { rung: up.rung, cpu: up.cpu },
    poolSize: POOL_SIZE,
    pinning: parts.pinning,
    databases: parts.databases,
    servers: [
      { name: '1 server', label: `web1 at ${up.cpu} core behind HAProxy, no autoscaler (capacity)`, pid: 0 },
      { name: 'autoscaled', label: `ladder up --rung ${up.rung} --cpu ${up.cpu} ${upArgs.join(' ')}`, pid: topology.nodes('haproxy')[0]?.pid ?? 0 },
    ],
    saturation: { measurements: saturation, medians: [closed] },
    fixedRate: { rate: high, rateSource: `${HIGH_SHARE * 100}% of the arrival rate at which 1 server ran out of CPU on a ramp (the step; ${LOW_SHARE * 100}% before, ${AFTER_SHARE * 100}% after)`, measurements: [] },
    memory: parts.memory,
    ratios: {},
    figures: {
      '1 server capacity, arriving req/s (ramp)': capacity.throughput,
      '1 server closed-loop throughput, req/s': closed.throughput,
      'ramp: web1 CPU at the capacity, share of its cap': ramp.cpuAtCapacity,
      'low rate, req/s': low,
      'high rate, req/s': high,
      'rate after the drop, req/s': after,
      'first server added after the step, s': firstAddedS,
      'p99 recovered after the step, s': recoveredAt,
      'most servers': peak,
      'first server removed after the drop, s': firstRemovedS,
      'servers at the end': endServers,
      'p99 of the base phase, ms': baseP99,
      'p99 of the high phase, ms': median(high_.map((r) => r.p99)),
      'requests sent': load.sent,
      'web servers when the step load started': serversAtStart,
      'initial warm-up, s': warmup.seconds,
    },
    topology: parts.topology,
    topologies: [capacityTopology, parts.topology],
    targets: [
      target(`web servers capped at ${up.cpu} core (cgroup cpu controller writable)`, parts.topology.capped ? 1 : 0, '==', 1),
      target('web servers when the step load started', serversAtStart, '==', MIN),
      target('first server added (serving) after the step', firstAddedS, '<=', FIRST_SERVER_WITHIN_S, 's'),
      target('p99 recovered after the step', recoveredAt, '<=', P99_RECOVERS_WITHIN_S, 's'),
      target('first server removed after the drop (not before the window)', firstRemovedS, '>=', o.window, 's'),
      target('web servers at the end', endServers, '==', MIN),
      target('failed or non-302 requests', errors + requestErrors(saturation), '==', 0),
    ],
    notes,
    timeSeries: series,
  });
}

/** Seconds of the capacity ramp, from 0 to the closed-loop throughput. */
const RAMP_S = 40;
/** Out of CPU: this share of its cap, over five seconds running (a shorter or lower bar caught
 * the 75-90% plateau a capped server sits on well below where it stops keeping up). */
const SATURATED = 0.95;
const SATURATED_S = 5;

/**
 * An open-loop ramp of the arrival rate, from 0 to `upTo` over RAMP_S, against one server
 * capped at `cap` cores; returns the rate at which its CPU first averaged SATURATED of the
 * cap over SATURATED_S seconds (`upTo` if it never did). Past that point the server still keeps up
 * for a while, because it answers more requests per event-loop turn and per database
 * lookup as they crowd in (its CPU per request falls), but it has no idle CPU left: what
 * a CPU-tracking autoscaler sees as full.
 */
async function rampToCapacity(entry: URL, pid: number, cap: number, upTo: number, paths: string[], log: (m: string) => void) {
  let n = 0;
  const cpu: number[] = [];
  let last = preciseCpuSeconds(pid) ?? 0;
  let lastAt = performance.now();
  const sampler = setInterval(() => {
    const now = performance.now();
    const c = preciseCpuSeconds(pid) ?? last;
    // One sample a second, in order (a late timer still fills the next one, never leaves a hole).
    cpu.push((c - last) / ((now - lastAt) / 1000) / cap);
    last = c;
    lastAt = now;
  }, 1000);
  const rate = (t: number) => (upTo * t) / RAMP_S;
  const saturatedAt = () => cpu.findIndex((_, i) => i + SATURATED_S <= cpu.length && cpu.slice(i, i + SATURATED_S).reduce((a, b) => a + b, 0) / SATURATED_S >= SATURATED);
  // The ramp ends once the server has been out of CPU for SATURATED_S seconds: driven on to
  // `upTo` (several times its capacity), its backlog outgrew what the drain answers, and
  // requests failed that say nothing about the autoscaler (3,153 in one run).
  const load = await runStepLoad({
    host: entry.hostname,
    port: Number(entry.port),
    rate,
    durationS: RAMP_S,
    path: () => paths[n++ % paths.length]!,
    ok: (s) => s === 302,
    maxConnections: 512,
    stop: () => saturatedAt() >= 0,
  });
  clearInterval(sampler);
  let at = saturatedAt();
  if (at < 0) at = RAMP_S;
  const capacity = Math.max(1, Math.round(rate(at)));
  log(`ramp: web1 ran out of CPU at ${capacity} req/s arriving (t=${at} s; CPU per second ${cpu.map((u) => Math.round(u * 100)).join(' ')}%; failed ${load.failed})`);
  return { capacity, cpuAtCapacity: cpu[at] ?? NaN, failed: load.failed };
}
