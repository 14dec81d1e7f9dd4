// What every scenario against a launched topology shares: launch it (`ladder up`), give it
// the benchmark's data and start the pinned load driver (measure/warm-up.ts then warms its
// fresh web servers up); decide where the topology runs during fixed-rate phases; and
// describe it in the report (what ran, capped or not, the launcher's notes, health-check flaps).
import { Redis } from 'ioredis';
import pg from 'pg';
import { bumpCacheGeneration } from '../../kit/cache/cache-scripts.ts';
import { benchCode, benchUrl, seedLinks } from '../dataset/bench-links.ts';
import type { BenchOptions } from '../options/bench-options.ts';
import type { TopologyReport } from '../report/bench-report.ts';
import type { BenchSession } from '../machine/bench-session.ts';
import { BenchTopology } from './bench-topology.ts';
import { planTopologyPinning, type PinningPlan } from '../machine/cpu-pinning.ts';
import { LoadDriverProcess } from '../driver/load-driver-process.ts';
import type { Measurement, Medians } from '../measure/measurement.ts';
import { memoryUse, type MemoryUse } from '../machine/proc-stats.ts';

export { NO_READS, addReads, primaryShare, readsBetween, replicaShares, statementsPerRedirect, type ReadCounts } from '../measure/read-counts.ts';

export interface TopologyRun {
  topology: BenchTopology;
  driver: LoadDriverProcess;
  pinning: PinningPlan;
  /** select version() of the topology's Postgres. */
  postgresVersion: string;
  /** The `ladder up` flags, for the report. */
  up: UpFlags;
}

/** The `ladder up` flags a scenario launches with. */
export interface UpFlags {
  rung: number;
  web: number | undefined;
  cpu: number | undefined;
  /** `--replicas R`; undefined: the rung's default. */
  replicas?: number | undefined;
  /** `--db-cpu C`; undefined: database nodes uncapped. */
  dbCpu?: number | undefined;
}

/**
 * Launches the topology and the driver side by side, then empties the topology's database
 * (a bench topology's folder is kept between runs, like the lab's Postgres clusters:
 * initdb takes seconds) and runs `seed` on it.
 */
export async function startTopologyRun(
  session: BenchSession,
  up: UpFlags & { env?: Record<string, string>; folder?: string; upArgs?: readonly string[] },
  seed: (db: pg.Client) => Promise<void>,
): Promise<TopologyRun> {
  const pinning = planTopologyPinning();
  session.log(pinning.note);
  const [launched, driver] = await Promise.all([launchSeeded(session, up, pinning, seed), LoadDriverProcess.start(session, pinning.driver)]);
  return { ...launched, driver };
}

/**
 * Launches one topology (in `folder` of the session, for runs with several side by side),
 * pinned as `pinning` says, empties its database and runs `seed` on it.
 */
export async function launchSeeded(
  session: BenchSession,
  up: UpFlags & { env?: Record<string, string>; folder?: string; upArgs?: readonly string[] },
  pinning: PinningPlan,
  seed: (db: pg.Client) => Promise<void>,
): Promise<Omit<TopologyRun, 'driver'>> {
  const topology = await BenchTopology.launch(session, { ...up, pinning });
  let postgresVersion = '';
  await withDatabase(topology, async (db) => {
    // Every table the app has; sessions live in the web servers or Redis, not here.
    await db.query('truncate link_clicks_daily, links, users restart identity cascade');
    await seed(db);
    postgresVersion = (await db.query<{ v: string }>('select version() as v')).rows[0]!.v;
  });
  await dropCache(topology);
  const flags: UpFlags = { rung: up.rung, web: up.web, cpu: up.cpu };
  if (up.replicas !== undefined) flags.replicas = up.replicas;
  if (up.dbCpu !== undefined) flags.dbCpu = up.dbCpu;
  return { topology, pinning, postgresVersion, up: flags };
}

/**
 * From rung 5 the cache tier may hold what the links table held before the seed (values,
 * "no such code", a codes filter without the new codes): links written behind the app's
 * back need a new cache generation, which drops all of it (docs/cache.md).
 */
async function dropCache(topology: BenchTopology): Promise<void> {
  const node = topology.status().nodes.find((n) => n.name === 'cache');
  if (!node) return;
  const redis = new Redis(node.url, { maxRetriesPerRequest: 1 });
  try {
    await bumpCacheGeneration(redis);
  } finally {
    redis.disconnect();
  }
}

/** Runs fn with a connection to the topology's database (the primary). */
export async function withDatabase(topology: BenchTopology, fn: (db: pg.Client) => Promise<void>): Promise<void> {
  const db = new pg.Client({ connectionString: topology.databaseUrl() });
  await db.connect();
  try {
    await fn(db);
  } finally {
    await db.end();
  }
}

/** The redirect data set (bench-links.ts) in the topology's database. */
export function seedRedirectLinks(session: BenchSession, links: number): (db: pg.Client) => Promise<void> {
  return async (db) => {
    const started = Date.now();
    session.log(`seeding ${links.toLocaleString('en-US')} links into the topology's database…`);
    await seedLinks(db, links);
    session.log(`seeded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  };
}

/**
 * Checks that the entry redirects the first and the last seeded code right, several times
 * over (so that, behind HAProxy, every web server answers). Retried for a while: from rung 4
 * plain reads may go to a replica that is still replaying the seed.
 */
export async function checkRedirects(topology: BenchTopology, links: number): Promise<void> {
  const base = topology.entry.href.replace(/\/$/, '');
  const tries = 2 * Math.max(1, topology.webs().length);
  const deadline = performance.now() + 60_000;
  for (;;) {
    let problem: string | undefined;
    for (let t = 0; t < tries && !problem; t++) {
      for (const i of [0, links - 1]) {
        const res = await fetch(`${base}/${benchCode(i)}`, { redirect: 'manual' });
        await res.arrayBuffer();
        const location = res.headers.get('location');
        if (res.status !== 302 || location !== benchUrl(i)) {
          problem = `GET /${benchCode(i)} answered ${res.status} ${location ?? ''}, expected 302 to ${benchUrl(i)}`;
          break;
        }
      }
    }
    if (!problem) return;
    if (performance.now() > deadline) throw new Error(`the topology does not serve the seeded links: ${problem}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** What ran, for the report, and notes on what the reader must know (no caps, restarts). */
export function describeTopology(run: TopologyRun): { report: TopologyReport; notes: string[] } {
  const { topology, up } = run;
  const status = topology.status();
  const capped = topology.capped();
  const notes: string[] = [];
  if (up.cpu !== undefined && !capped) {
    notes.push(
      `web servers ran UNCAPPED: --cpu ${up.cpu} was asked, but the cgroup cpu controller is not writable here ` +
        `(${status.notes.find((n) => /cap/i.test(n)) ?? 'see `ladder status`'}); figures that depend on the cap mean nothing`,
    );
  }
  const restarted = status.nodes.filter((n) => (n.restarts ?? 0) > 0);
  if (restarted.length > 0) notes.push(`nodes restarted during the run: ${restarted.map((n) => n.name).join(', ')}`);
  if (up.dbCpu !== undefined && !topology.databaseCapped()) {
    notes.push(
      `database nodes ran UNCAPPED: --db-cpu ${up.dbCpu} was asked, but the cgroup cpu controller is not writable here; ` +
        'figures that depend on the cap mean nothing',
    );
  }
  const flags = [
    `--rung ${up.rung}`,
    up.web === undefined ? '' : ` --web ${up.web}`,
    up.cpu === undefined ? '' : ` --cpu ${up.cpu}`,
    up.replicas === undefined ? '' : ` --replicas ${up.replicas}`,
    up.dbCpu === undefined ? '' : ` --db-cpu ${up.dbCpu}`,
  ].join('');
  return {
    report: {
      command: `ladder up ${flags}`,
      rung: up.rung,
      entry: status.entry,
      cpu: up.cpu ?? null,
      capped,
      nodes: status.nodes.map((n) => ({ name: n.name, role: n.role, pid: n.pid, ...(n.cpu !== undefined ? { cpu: n.cpu } : {}) })),
      launcherNotes: status.notes,
    },
    notes,
  };
}

/** Share of the web servers' CPUs the topology may be expected to use for it to move there. */
const FITS_SHARE = 0.7;

/**
 * Pins the topology for a fixed-rate phase (see planTopologyPinning): onto the web servers'
 * CPUs, leaving the driver's spinning open loop a CPU of its own, when the CPU the whole
 * topology used at saturation, scaled down to the fixed rate, fits in FITS_SHARE of them;
 * else it stays where it was, and the driver shares its CPU with Postgres, HAProxy and Redis.
 * Returns whether it moved, and a note saying which.
 */
export function pinForFixedRate(topology: BenchTopology, saturation: Medians, rate: number): { moved: boolean; note: string } {
  const { servers, driver } = topology.pinning;
  if (servers === undefined) return { moved: false, note: 'fixed rate: nothing pinned' };
  const used = saturation.serverCpu + (saturation.databaseCpu ?? 0) + Object.values(saturation.componentCpu ?? {}).reduce((a, b) => a + b, 0);
  const expected = saturation.throughput > 0 ? (used * rate) / saturation.throughput : Infinity;
  const cpus = servers.split(',').length;
  if (expected <= FITS_SHARE * cpus) {
    topology.pin('fixed-rate');
    return {
      moved: true,
      note: `fixed rate: the whole topology on CPU ${servers} (expected to use ${Math.round(expected * 100)}% of it), the load driver alone on CPU ${driver}`,
    };
  }
  return {
    moved: false,
    note:
      `fixed rate: pinned as for saturation, because the topology would need about ${Math.round(expected * 100)}% of CPU ${servers}; ` +
      `the load driver's open loop spins on CPU ${driver} beside Postgres, HAProxy and Redis, which adds to their latency`,
  };
}

/**
 * When what ran on the web servers' CPUs during a fixed-rate phase (the whole topology, if
 * pinForFixedRate moved it there; else the web servers) used most of them, part of each
 * latency is waiting for a CPU, and the reader must know.
 */
export function fixedRateNotes(ms: Measurement[], pinning: PinningPlan, moved: boolean): string[] {
  if (pinning.servers === undefined) return [];
  const cpus = pinning.servers.split(',').length;
  const notes: string[] = [];
  for (const m of ms) {
    const others = moved ? (m.databaseCpu ?? 0) + Object.values(m.componentCpu ?? {}).reduce((a, b) => a + b, 0) : 0;
    const used = m.serverCpu + others;
    if (used > 0.85 * cpus) {
      notes.push(
        `fixed rate, ${m.server}${m.round === undefined ? '' : ` round ${m.round}`}: ${moved ? 'the topology' : 'the web servers'} used ${Math.round(used * 100)}% of ` +
          `CPU ${pinning.servers}: its latencies include waiting for a CPU (lower the rate with --rate)`,
      );
    }
  }
  return notes;
}

/** What the reader must know when HAProxy took web servers out of rotation during phases. */
export function healthCheckNotes(downs: number, during: string): string[] {
  if (downs === 0) return [];
  return [
    `HAProxy took a web server out of rotation ${downs} time(s) during ${during}: its /readyz health check ` +
      '(every 500 ms, 500 ms timeout, 2 failures) timed out behind the queue of a saturated server; ' +
      'the others then carried its share, and throughput and tails reflect that',
  ];
}

/** Resident memory of each web server after the run. */
export function webMemory(topology: BenchTopology): Record<string, MemoryUse> {
  const memory: Record<string, MemoryUse> = {};
  for (const w of topology.webs()) {
    const m = w.pid === null ? undefined : memoryUse(w.pid);
    if (m) memory[w.name] = m;
  }
  return memory;
}

/** `ladder up` flags a scenario resolves from the bench flags and its own defaults. */
export function upFlags(o: BenchOptions, defaults: { rung: number; cpu?: number }): UpFlags {
  const up: UpFlags = { rung: o.rung ?? defaults.rung, web: o.web, cpu: o.cpu ?? defaults.cpu };
  if (o.replicas !== undefined) up.replicas = o.replicas;
  if (o.dbCpu !== undefined) up.dbCpu = o.dbCpu;
  return up;
}


/**
 * With capped database nodes: was the database the bottleneck? Notes when a capped node's
 * CPU (median over the phases) stayed well under its cap and its cgroup was seldom throttled,
 * i.e. something else (web servers, HAProxy, the driver, a neighbour) limited throughput.
 * `nodes` picks which nodes must have been limiting (e.g. the primary at rung 3).
 */
export function databaseBottleneckNotes(m: Medians, cap: number | undefined, nodes: string[]): string[] {
  if (cap === undefined || !m.databaseNodeCpu) return [];
  const notes: string[] = [];
  for (const name of nodes) {
    const cpu = m.databaseNodeCpu[name];
    if (cpu === undefined) continue;
    const throttled = m.databaseThrottled?.[name];
    if (cpu < 0.8 * cap && (throttled === undefined || throttled < 0.5)) {
      notes.push(
        `WARNING ${m.server}: ${name} used ${Math.round(cpu * 100)}% of a core, under its cap of ${Math.round(cap * 100)}%, ` +
          `throttled in ${throttled === undefined ? 'an unknown share' : `${Math.round(throttled * 100)}%`} of CFS periods: ` +
          'the database was not the bottleneck, something else limited throughput',
      );
    }
  }
  return notes;
}
