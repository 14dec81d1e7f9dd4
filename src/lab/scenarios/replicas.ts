// Scenario `replicas`: do read replicas add database throughput? Redirects (plain reads, no
// cache tier) against two topologies launched side by side, every database node capped at
// --db-cpu core (0.15 by default) so that the database, not the uncapped web tier, is the
// bottleneck: rung 3 (HAProxy, web servers, a primary alone) and rung 4 (the same plus
// --replicas R streaming replicas, 2 by default; reads go to the replicas). Both are up for
// the whole run, in folders of their own; the saturation phases alternate between them in
// every round (rung 3 first in odd rounds, rung 4 first in even ones, so drift within a
// round favours neither), medians over rounds. The idle topology costs little meanwhile: its
// web servers' replica monitors poll (a few queries a second on its own capped nodes) and
// nothing else runs. Why not one topology changed between phases: rung 3 has no replicas to
// switch off in the running web servers, and restarting web servers between phases would
// measure them cold.
// Reported: throughput of each, the ratio rung 4 / rung 3 (target >= 1.7; the limit with 2
// replicas taking every read is 2), the primary's share of plain reads at rung 4 (target
// <= 10%), counted by the web servers (ladder_db_reads_total, before and after each phase),
// and every database node's CPU and cgroup throttling, to show that the primary was the
// bottleneck at rung 3 (a note says so when it was not).
// Note: rung 3 runs the embedded Postgres build (as `ladder up --rung 3` does), rung 4 the
// machine's PostgreSQL 15 (pg_basebackup is needed for replicas); the report names both.
import { ConfigError } from '../../kit/errors.ts';
import { planTopologyPinning } from '../machine/cpu-pinning.ts';
import type { MemoryUse } from '../machine/proc-stats.ts';
import { LoadDriverProcess } from '../driver/load-driver-process.ts';
import { measure, median, mediansOf, type Measurement, type Medians } from '../measure/measurement.ts';
import { plan } from '../measure/phases.ts';
import { warmUp } from '../measure/warm-up.ts';
import { target, type BenchReport, type TopologyReport } from '../report/bench-report.ts';
import {
  NO_READS,
  addReads,
  replicaShares,
  statementsPerRedirect,
  checkRedirects,
  databaseBottleneckNotes,
  describeTopology,
  healthCheckNotes,
  launchSeeded,
  primaryShare,
  readsBetween,
  seedRedirectLinks,
  webMemory,
  type ReadCounts,
  type TopologyRun,
  type UpFlags,
} from '../targets/topology-run.ts';
import { MAX_PRIMARY_SHARE } from './redirect-rung.ts';
import { requestErrors, type Scenario, type ScenarioContext } from './scaffold.ts';

/**
 * Cores each database node is capped at unless --db-cpu: small enough that the database is
 * the limit at both rungs, and that the rest of rung 4 (web servers, HAProxy, the driver, at
 * about twice rung 3's rate) fits the machine's two cores. Since lookups batch across
 * requests, a 0.15 core primary serves about 10,000 redirects a second, and 1.7 times that
 * needs more CPU for the web tier, HAProxy and the driver than two cores have: the ratio
 * then measured the machine, not the replicas (docs/performance.md, "Read replicas").
 */
export const DEFAULT_DB_CPU = 0.1;
export const DEFAULT_REPLICAS = 2;
/** The target: rung 4 with 2 replicas serves at least this many times rung 3's throughput. */
const MIN_RATIO = 1.7;
/** Each replica's share of replica reads, relative to an even split (0.8 to 1.2: 40% to 60% of two). */
const EVEN_SHARE = [0.8, 1.2] as const;
const POOL_SIZE = 10;

const f0 = (n: number) => Math.round(n).toLocaleString('en-US');
const pc = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '-' : `${Math.round(n * 100)}%`);

interface Side {
  name: string;
  run: Omit<TopologyRun, 'driver'>;
  reads: ReadCounts;
  warmup: { seconds: number; flat: boolean };
}

export const replicasScenario: Scenario = {
  name: 'replicas',
  summary: 'redirects on rung 3 (primary alone) vs rung 4 (2 replicas) side by side, database nodes capped; ratio rung 4 / rung 3',
  options: [{ flag: '--web' }, { flag: '--cpu' }, { flag: '--replicas', default: String(DEFAULT_REPLICAS) }, { flag: '--db-cpu', default: String(DEFAULT_DB_CPU) }],
  run: replicas,
};

async function replicas(ctx: ScenarioContext): Promise<BenchReport> {
  const { o, session, log } = ctx;
  if (o.rung !== undefined) {
    throw new ConfigError('--rung', 'the replicas scenario compares rung 3 with rung 4 itself', 'leave out --rung');
  }
  const replicas = o.replicas ?? DEFAULT_REPLICAS;
  if (replicas < 1) throw new ConfigError('--replicas', 'rung 4 needs at least one replica to compare', 'use --replicas 1 or more');
  const dbCpu = o.dbCpu ?? DEFAULT_DB_CPU;
  const base: UpFlags = { rung: 3, web: o.web, cpu: o.cpu, dbCpu };
  const withReplicas: UpFlags = { rung: 4, web: o.web, cpu: o.cpu, replicas, dbCpu };

  const pinning = planTopologyPinning();
  log(pinning.note);
  const seed = seedRedirectLinks(session, o.links);
  // One after the other: each launch initdbs or clones, which is enough load on two cores.
  const launches = (async () => {
    const r3 = await launchSeeded(session, { ...base, folder: 'topology' }, pinning, seed);
    const r4 = await launchSeeded(session, { ...withReplicas, folder: 'topology-rung4' }, pinning, seed);
    return { r3, r4 };
  })();
  const [{ r3: rung3, r4: rung4 }, driver] = await Promise.all([launches, LoadDriverProcess.start(session, pinning.driver)]);
  const sides: Side[] = [
    { name: 'rung 3', run: rung3, reads: NO_READS, warmup: { seconds: 0, flat: true } },
    { name: 'rung 4', run: rung4, reads: NO_READS, warmup: { seconds: 0, flat: true } },
  ];
  for (const s of sides) await checkRedirects(s.run.topology, o.links);
  for (const s of sides) {
    log(`warming up the ${s.name} web servers until their throughput is flat…`);
    s.warmup = await warmUp(driver, s.run.topology.target(s.name), o, log);
  }

  const downsBefore = await Promise.all(sides.map((s) => s.run.topology.healthCheckDowns()));
  const saturation: Measurement[] = [];
  const readsOf = new Map<Measurement, ReadCounts>();
  for (let round = 1; round <= o.rounds; round++) {
    const order = round % 2 === 1 ? sides : [...sides].reverse();
    for (const s of order) {
      const topology = s.run.topology;
      const before = await topology.databaseReads();
      const m = await measure(driver, topology.target(s.name), plan(o, 'closed'), round);
      const reads = readsBetween(before, await topology.databaseReads());
      s.reads = addReads(s.reads, reads);
      readsOf.set(m, reads);
      const nodes = Object.entries(m.databaseNodeCpu ?? {})
        .map(([n, cpu]) => `${n} ${pc(cpu)} (throttled ${pc(m.databaseThrottled?.[n])})`)
        .join(', ');
      log(
        `saturation ${round}/${o.rounds} ${s.name}: ${f0(m.throughput)} req/s, p50 ${m.latency.p50.toFixed(2)} ms, ` +
          `web CPU ${pc(m.serverCpu)}, ${nodes}, haproxy ${pc(m.componentCpu?.haproxy)}, driver ${pc(m.driverCpu)}, ` +
          `primary share of reads ${(primaryShare(reads) * 100).toFixed(1)}%, errors ${m.non302 + m.failed}`,
      );
      saturation.push(m);
    }
  }
  const downs = (await Promise.all(sides.map((s) => s.run.topology.healthCheckDowns()))).reduce((a, d, i) => a + d - downsBefore[i]!, 0);
  const medians = sides.map((s) => mediansOf(saturation, s.name));
  const [m3, m4] = medians as [Medians, Medians];
  const ratio = m4.throughput / m3.throughput;
  const share4 = primaryShare(sides[1]!.reads);
  const share3 = primaryShare(sides[0]!.reads);

  const figures: Record<string, number> = {};
  for (const [s, m] of sides.map((s, i) => [s, medians[i]!] as const)) {
    figures[`${s.name}: reads served by the primary`] = s.reads.primary;
    figures[`${s.name}: reads served by replicas`] = s.reads.replica;
    figures[`${s.name}: primary share of reads, %`] = primaryShare(s.reads) * 100;
    // Batched lookups: concurrent redirects share statements (below 1 under load).
    figures[`${s.name}: database statements per redirect`] = statementsPerRedirect(s.reads);
    for (const [replica, share] of Object.entries(replicaShares(s.reads))) figures[`${s.name}: ${replica} share of replica reads, %`] = share * 100;
    for (const [node, cpu] of Object.entries(m.databaseNodeCpu ?? {})) {
      figures[`${s.name}: ${node} CPU, % of its ${dbCpu} core cap`] = (cpu / dbCpu) * 100;
      const t = m.databaseThrottled?.[node];
      if (t !== undefined) figures[`${s.name}: ${node} throttled, % of CFS periods`] = t * 100;
    }
    figures[`${s.name}: postgres CPU per request, us`] = m.throughput > 0 ? ((m.databaseCpu ?? 0) / m.throughput) * 1e6 : NaN;
    figures[`${s.name}: web CPU per request, us`] = m.throughput > 0 ? (m.serverCpu / m.throughput) * 1e6 : NaN;
    // What one read costs where reads are served (the primary alone at rung 3, the replicas at
    // rung 4, replay of the primary's WAL included): compares the two Postgres builds too.
    const servingCpu = Object.entries(m.databaseNodeCpu ?? {})
      .filter(([node]) => (s.run.up.replicas ? node !== 'postgres' : node === 'postgres'))
      .reduce((sum, [, cpu]) => sum + cpu, 0);
    const servedShare = s.run.up.replicas ? 1 - primaryShare(s.reads) : 1;
    figures[`${s.name}: CPU per read on the nodes serving reads, us`] = m.throughput > 0 ? (servingCpu / (m.throughput * servedShare)) * 1e6 : NaN;
    figures[`${s.name}: initial warm-up, s`] = s.warmup.seconds;
  }
  const shares = saturation.filter((m) => m.server === 'rung 4').map((m) => primaryShare(readsOf.get(m)!));
  figures['rung 4: primary share of reads, median of phases, %'] = median(shares) * 100;

  const described = sides.map((s) => describeTopology({ ...s.run, driver }));
  const capped = sides.every((s) => s.run.topology.databaseCapped());
  const errors = requestErrors(saturation);
  const targets = [
    target(`median throughput rung 4 (${replicas} replica${replicas === 1 ? '' : 's'}) / rung 3`, ratio, '>=', MIN_RATIO),
    target('rung 4: primary share of reads, %', share4 * 100, '<=', MAX_PRIMARY_SHARE * 100),
    // Token-less reads rotate over the replicas: each does its part of the replicas' work.
    ...Object.entries(replicaShares(sides[1]!.reads)).flatMap(([replica, share]) => [
      target(`rung 4: ${replica} share of replica reads, %`, share * 100, '>=', (100 * EVEN_SHARE[0]) / replicas),
      target(`rung 4: ${replica} share of replica reads, %`, share * 100, '<=', (100 * EVEN_SHARE[1]) / replicas),
    ]),
    target(`database nodes capped at ${dbCpu} core (cgroup cpu controller writable)`, capped ? 1 : 0, '==', 1),
    target('failed or non-302 requests', errors, '==', 0),
  ];
  const notes = [
    ...described.flatMap((d, i) => d.notes.map((n) => `${sides[i]!.name}: ${n}`)),
    ...ctx.measurementNotes(saturation),
    ...databaseBottleneckNotes(m3, capped ? dbCpu : undefined, ['postgres']),
    ...replicaBoundNotes(m4, capped),
    ...healthCheckNotes(downs, 'the saturation phases'),
  ];
  if (!capped) notes.push('the database nodes were NOT capped: the ratio does not measure what this scenario is for');
  if (ratio > replicas * 1.02) {
    const perRead = (name: string) => figures[`${name}: CPU per read on the nodes serving reads, us`]!;
    notes.push(
      `the ratio ${ratio.toFixed(2)} is above ${replicas} (the replicas' share of database CPU) because a read cost the rung 3 primary ` +
        `${perRead('rung 3').toFixed(1)} us of CPU and a rung 4 replica ${perRead('rung 4').toFixed(1)} us: at rung 3 the primary's cap also ` +
        'pays for the click-count writes (at rung 4 the primary does them, beside its own cap), and the two rungs run different Postgres builds',
    );
  }
  // With the database capped, the web servers should have CPU to spare at both rungs.
  const cpus = pinning.servers === undefined ? undefined : pinning.servers.split(',').length;
  for (const m of medians) {
    if (cpus !== undefined && m.serverCpu > 0.9 * cpus) {
      notes.push(`${m.server}: the web servers used ${pc(m.serverCpu)} of CPU ${pinning.servers}: they, not the database, may have limited throughput`);
    }
  }
  if (sides[0]!.run.postgresVersion !== sides[1]!.run.postgresVersion) {
    notes.push(
      `the two rungs ran different Postgres builds (rung 3: ${shortVersion(sides[0]!.run.postgresVersion)}; rung 4: ${shortVersion(sides[1]!.run.postgresVersion)}), ` +
        'as `ladder up` launches them: rung 4 needs the machine\'s PostgreSQL for pg_basebackup; see docs/performance.md ("Engines") for what the build alone changes',
    );
  }
  for (const s of sides) if (!s.warmup.flat) notes.push(`${s.name}: the warm-up throughput was not flat yet after ${s.warmup.seconds} s: early rounds may be low`);
  if (!Number.isFinite(share3) || share3 < 0.999) {
    notes.push(`rung 3 (primary only): the primary served ${pc(share3)} of reads, expected all of them: the read counter is suspect`);
  }

  const memory: Record<string, MemoryUse> = {};
  for (const s of sides) for (const [name, m] of Object.entries(webMemory(s.run.topology))) memory[`${s.name.replace(' ', '')} ${name}`] = m;
  const topologies: TopologyReport[] = described.map((d) => d.report);
  return ctx.report({
    resolved: { replicas, dbCpu },
    poolSize: POOL_SIZE,
    pinning: { ...pinning, note: `${pinning.note.split('. Fixed rate')[0]} (both topologies). No fixed-rate phase in this scenario` },
    databases: sides.map((s) => ({
      engine: `${s.name}'s Postgres (${s.run.up.replicas ? `primary + ${s.run.up.replicas} replicas` : 'primary alone'}, each at ${dbCpu} core)`,
      version: s.run.postgresVersion,
      pid: s.run.topology.nodes('postgres')[0]?.pid ?? undefined,
    })),
    servers: sides.map((s, i) => ({
      name: s.name,
      label: `${topologies[i]!.command}: ${s.run.topology.webs().length} web servers${o.cpu === undefined ? ' (uncapped)' : ` at ${o.cpu} core`}, driven at HAProxy ${topologies[i]!.entry ?? ''}`,
      pid: s.run.topology.nodes('haproxy')[0]?.pid ?? 0,
    })),
    saturation: { measurements: saturation, medians },
    fixedRate: { rate: 0, rateSource: 'not measured: this scenario compares saturation throughput', measurements: [] },
    memory,
    ratios: { 'rung 4 / rung 3': ratio },
    figures,
    topology: topologies[1]!,
    topologies,
    targets,
    notes,
  });
}

/**
 * Rung 4 should be limited by its replicas' caps too; when their cgroups were throttled in
 * under half the CFS periods, CPU elsewhere (the web servers, HAProxy and the driver need
 * about twice rung 3's, on a shared machine) held it back, and the ratio understates what
 * the replicas add.
 */
function replicaBoundNotes(m: Medians, capped: boolean): string[] {
  if (!capped || !m.databaseThrottled) return [];
  const loose = Object.entries(m.databaseThrottled).filter(([node, t]) => node !== 'postgres' && t < 0.5);
  if (loose.length === 0) return [];
  return [
    `WARNING ${m.server}: ${loose.map(([n, t]) => `${n} was throttled in only ${pc(t)}`).join(', ')} of CFS periods: ` +
      'something other than the replicas\' caps (CPU for the web servers, HAProxy or the driver; a neighbour) limited rung 4, ' +
      'so the ratio understates what the replicas add; rerun on a quieter machine',
  ];
}

/** "PostgreSQL 15.18 on x86_64-pc-linux-gnu, compiled by gcc …" -> "PostgreSQL 15.18, gcc …". */
function shortVersion(v: string): string {
  const m = /^(PostgreSQL \S+).*compiled by (\S+ \S+(?: \S+)?)/.exec(v);
  return m ? `${m[1]}, ${m[2]!.replace(/,$/, '')}` : v.split(' on ')[0]!;
}
