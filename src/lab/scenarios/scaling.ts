// Scenario `scaling`: does adding web servers add throughput? The redirect scenario against
// a topology behind HAProxy (rung 3 unless --rung) whose web servers are each capped at
// 0.2 core (--cpu), for 1, 2 and 4 of them (--sizes), in one invocation. `ladder up` starts
// as many servers as the largest size, all are warmed up together, and the size changes
// between phases by taking servers in and out of HAProxy's rotation through its runtime API
// (see BenchTopology.balanceOver for why not `ladder scale`), alternating the sizes in every
// round (1, 2, 4, 1, 2, 4, …) so that a busy neighbour's minute lands on all of them;
// medians over rounds are reported with the ratio to 1 server. HAProxy's health checks are
// paused for the saturation phases (BenchTopology.balanceOver says why). The driver keeps --connections
// requests in flight PER SERVER in rotation (32 for 1 server, 128 for 4), so every server
// sees the same concurrency at every size: node's CPU per request falls with the requests it
// finds waiting per event-loop turn (measured at 0.2 core: about 310 us at 32 in flight,
// 380 us at 8), and a fixed total would charge the larger sizes for less batching, not for
// scaling. docs/performance.md has the figures both ways.
// Every CPU is held busy at idle priority during the saturation phases (the CPU floor,
// src/lab/machine/cpu-floor.ts: this VM's CPUs run slower while their neighbours are busy, which
// would favour the lightly loaded 1-server phase); the smallest and largest sizes are also
// run without it in every round, and both ratios are reported.
// Then, with 1 server, the same fixed arrival rate (a quarter of what 1 server sustains, so
// both keep up and the cap never throttles) straight at the web server and through HAProxy,
// alternating over the rounds: the difference of the median p50s is what HAProxy adds.
import { ConfigError } from '../../kit/errors.ts';
import { CpuFloor } from '../machine/cpu-floor.ts';
import { measure, median, mediansOf, type Measurement } from '../measure/measurement.ts';
import { fixedRate, plan } from '../measure/phases.ts';
import { warmUp } from '../measure/warm-up.ts';
import { target, type BenchReport } from '../report/bench-report.ts';
import { checkRedirects, fixedRateNotes, healthCheckNotes, pinForFixedRate, seedRedirectLinks, startTopologyRun, upFlags } from '../targets/topology-run.ts';
import { requestErrors, topologyParts, type Scenario, type ScenarioContext } from './scaffold.ts';

const DEFAULT_RUNG = 3;
/** A small instance: a fifth of a core per web server. */
const DEFAULT_CPU = 0.2;
/** The target: K servers give at least this share of K times 1 server (4 servers >= 3.2x). */
const MIN_EFFICIENCY = 0.8;
/** The fixed rate of the HAProxy comparison, as a share of 1 server's saturation throughput. */
const LATENCY_RATE_SHARE = 0.25;
const POOL_SIZE = 10;

const label = (k: number) => `${k} server${k === 1 ? '' : 's'}`;
/** The smallest and largest sizes are also run with the CPU floor paused (see cpu-floor.ts). */
const noFloor = (k: number) => `${label(k)}, no CPU floor`;
const f0 = (n: number) => Math.round(n).toLocaleString('en-US');

export const scalingScenario: Scenario = {
  name: 'scaling',
  summary: 'redirects with 1, 2, 4 web servers at 0.2 core behind HAProxy, alternating; ratio to 1 server; what HAProxy adds to p50',
  options: [{ flag: '--rung', default: String(DEFAULT_RUNG) }, { flag: '--cpu', default: String(DEFAULT_CPU) }, { flag: '--sizes' }, { flag: '--replicas' }, { flag: '--db-cpu' }],
  run: scaling,
};

async function scaling(ctx: ScenarioContext): Promise<BenchReport> {
  const { o, session, log } = ctx;
  const up = upFlags(o, { rung: DEFAULT_RUNG, cpu: DEFAULT_CPU });
  if (up.rung < 3) throw new ConfigError('--rung', `rung ${up.rung} has no load balancer to scale behind`, 'use --rung 3 or more');
  const sizes = o.sizes;
  const largest = Math.max(...sizes);
  const run = await startTopologyRun(session, { ...up, web: largest }, seedRedirectLinks(session, o.links));
  const { topology, driver } = run;
  await checkRedirects(topology, o.links);
  if (!topology.capped()) log(`WARNING: the web servers are not capped (the cgroup cpu controller is not writable): the ratios mean little`);

  // Saturation phases run without health checks (see BenchTopology.balanceOver for why).
  let current = 0;
  const resize = async (k: number) => {
    if (k === current) return;
    await topology.balanceOver(k, { healthChecks: false });
    current = k;
  };
  await resize(largest);

  const entry = topology.target('entry');
  // Every saturation phase runs on equally busy CPUs (src/lab/machine/cpu-floor.ts says why); the
  // smallest and largest sizes also run without, to show what the floor changes: the
  // largest should not move (the floor takes no time from the topology), the smallest does.
  const floor = CpuFloor.start(session, 900 + o.rounds * (sizes.length + 1) * (o.duration + o.warmup + 60));
  log(floor.note);
  log(`warming up all ${largest} web servers until their throughput is flat…`);
  const warmup = await warmUp(driver, entry, o, log, {}, o.connections * largest);

  const saturation: Measurement[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    for (const k of sizes) {
      await resize(k);
      const m = await measure(driver, { ...entry, name: label(k) }, { ...plan(o, 'closed'), connections: o.connections * k }, round);
      log(
        `saturation ${round}/${o.rounds} ${label(k)}: ${f0(m.throughput)} req/s, p50 ${m.latency.p50.toFixed(2)} ms, ` +
          `web CPU ${Math.round(m.serverCpu * 100)}%, throttled ${Math.round((m.throttled ?? 0) * 100)}% of periods, ` +
          `postgres ${Math.round((m.databaseCpu ?? 0) * 100)}%, haproxy ${Math.round((m.componentCpu?.haproxy ?? 0) * 100)}%, ` +
          `driver ${Math.round(m.driverCpu * 100)}%, errors ${m.non302 + m.failed}`,
      );
      saturation.push(m);
      if ((k === 1 || k === largest) && floor.active) {
        floor.pause();
        const bare = await measure(driver, { ...entry, name: noFloor(k) }, { ...plan(o, 'closed'), connections: o.connections * k }, round);
        floor.resume();
        log(`saturation ${round}/${o.rounds} ${noFloor(k)}: ${f0(bare.throughput)} req/s, web CPU ${Math.round(bare.serverCpu * 100)}%, throttled ${Math.round((bare.throttled ?? 0) * 100)}% of periods`);
        saturation.push(bare);
      }
    }
  }
  await floor.stop();
  const medians = sizes.map((k) => mediansOf(saturation, label(k)));
  const unfloored = floor.active && sizes.includes(1) ? [mediansOf(saturation, noFloor(1)), mediansOf(saturation, noFloor(largest))] : [];
  const base = sizes.includes(1) ? mediansOf(saturation, label(1)) : undefined;

  // HAProxy's cost in latency: one server, reached directly or through the balancer.
  // The latency comparison runs as deployed: health checks on (at a quarter of the load
  // they answer at once), the whole topology on the web servers' CPU (it fits at this
  // rate), the driver alone.
  const oneServer = base?.throughput ?? medians[0]!.throughput / sizes[0]!;
  const rate = o.rate ?? Math.max(1, Math.round(oneServer * LATENCY_RATE_SHARE));
  await topology.balanceOver(1, { healthChecks: true });
  const fixedPinning = pinForFixedRate(topology, base ?? medians[0]!, rate);
  log(fixedPinning.note);
  const downsBefore = await topology.healthCheckDowns();
  const direct = topology.target('direct', 'web1');
  const viaHaproxy = topology.target('haproxy');
  const fixed: Measurement[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    // Alternate which goes first, so that drift within a round favours neither.
    const order = round % 2 === 1 ? [direct, viaHaproxy] : [viaHaproxy, direct];
    fixed.push(...(await fixedRate(driver, order, o, rate, log, {}, round)));
  }
  const downs = (await topology.healthCheckDowns()) - downsBefore;
  const p50 = (name: string) => median(fixed.filter((m) => m.server === name).map((m) => m.latency.p50));
  const p99 = (name: string) => median(fixed.filter((m) => m.server === name).map((m) => m.latency.p99));

  const ratios: Record<string, number> = {};
  if (base) for (const m of medians) if (m.server !== base.server) ratios[`${m.server} / 1 server`] = m.throughput / base.throughput;
  const [bareBase, bareTop] = unfloored;
  if (bareBase && bareTop && largest > 1) ratios[`${label(largest)} / 1 server, both without the CPU floor`] = bareTop.throughput / bareBase.throughput;
  const figures: Record<string, number> = {
    'p50 direct to web1, ms': p50('direct'),
    'p50 through HAProxy, ms': p50('haproxy'),
    'p50 added by HAProxy, ms': p50('haproxy') - p50('direct'),
    'p99 direct to web1, ms': p99('direct'),
    'p99 through HAProxy, ms': p99('haproxy'),
  };
  for (const m of medians) {
    figures[`${m.server}: req/s per web server`] = m.throughput / Number(m.server.split(' ')[0]);
  }
  for (const bare of unfloored) {
    const k = Number(bare.server.split(' ')[0]);
    const floored = medians.find((m) => m.server === label(k));
    if (floored) figures[`${label(k)}: req/s without / with the CPU floor`] = bare.throughput / floored.throughput;
  }

  const parts = topologyParts(run, fixedPinning.note);
  const topo = parts.topology;
  const errors = requestErrors([...saturation, ...fixed]);
  const targets = [
    target(`web servers capped at ${up.cpu} core (cgroup cpu controller writable)`, topo.capped ? 1 : 0, '==', 1),
    target('failed or non-302 requests', errors, '==', 0),
  ];
  if (base && largest > 1) {
    targets.unshift(
      target(`median throughput ${label(largest)} / 1 server`, ratios[`${label(largest)} / 1 server`] ?? NaN, '>=', MIN_EFFICIENCY * largest),
    );
  }
  const notes = [
    floor.active
      ? `${floor.note}: an idle-priority task yields to any other at once, so it takes no time from the topology, but a CPU of this kind of VM runs slower ` +
        `while its neighbour is busy, and the floor makes every size see the same. The "no CPU floor" phases are the same sizes without it`
      : floor.note,
    ...parts.notes, ...ctx.measurementNotes([...saturation, ...fixed]), ...fixedRateNotes(fixed, run.pinning, fixedPinning.moved)];
  notes.push(...healthCheckNotes(downs, 'the fixed-rate phases'));
  if (!warmup.flat) notes.push(`the warm-up throughput was not flat yet after ${warmup.seconds} s: early rounds may be low`);
  for (const m of medians) {
    if (m.throttled !== undefined && m.throttled < 0.5 && topo.capped) {
      notes.push(
        `${m.server}: the web servers were throttled in only ${Math.round(m.throttled * 100)}% of CFS periods: ` +
          'something other than their CPU cap (Postgres, HAProxy, the driver, a neighbour) limited throughput',
      );
    }
  }
  const webs = topology.webs();
  return ctx.report({
    resolved: { rung: up.rung, cpu: up.cpu },
    poolSize: POOL_SIZE,
    pinning: parts.pinning,
    databases: parts.databases,
    servers: [
      ...sizes.map((k) => ({
        name: label(k),
        label: `web1..web${k} at ${up.cpu} core${topo.capped ? '' : ' (NOT capped)'} in HAProxy's rotation, the others idle`,
        pid: topology.nodes('haproxy')[0]?.pid ?? 0,
      })),
      ...unfloored.map((m) => ({ name: m.server, label: `as "${m.server.split(',')[0]}", the CPU floor paused`, pid: topology.nodes('haproxy')[0]?.pid ?? 0 })),
      { name: 'direct', label: 'web1 alone, reached directly (fixed rate)', pid: webs[0]?.pid ?? 0 },
      { name: 'haproxy', label: 'web1 alone, through HAProxy (fixed rate)', pid: topology.nodes('haproxy')[0]?.pid ?? 0 },
    ],
    saturation: { measurements: saturation, medians: [...medians, ...unfloored] },
    fixedRate: {
      rate,
      rateSource: o.rate === undefined ? `${LATENCY_RATE_SHARE * 100}% of 1 server's median saturation throughput` : 'set with --rate',
      measurements: fixed,
    },
    memory: parts.memory,
    ratios,
    figures: { ...figures, 'initial warm-up, s': warmup.seconds },
    topology: topo,
    targets,
    notes,
  });
}
