// Scenario `redirect`: GET /:code on the Links app against two bare Fastify references on
// the same machine, Postgres and driver: (a) a constant 302, no database, and (b) the
// app's own lookup through a pg.Pool of the app's size. app/(b) is what the kit and app
// layers cost on the hot path; app/(a) is what the database round trip costs on top.
import type { BenchOptions } from '../options/bench-options.ts';
import { commandLine } from '../options/bench-options.ts';
import type { BenchReport } from '../report/bench-report.ts';
import { target } from '../report/bench-report.ts';
import { startBenchDatabase } from '../targets/bench-database.ts';
import { startApp, startReference } from '../targets/bench-servers.ts';
import type { BenchSession } from '../machine/bench-session.ts';
import { planPinning } from '../machine/cpu-pinning.ts';
import { LoadDriverProcess } from '../driver/load-driver-process.ts';
import { machineInfo } from '../machine/machine-info.ts';
import { mediansOf } from '../measure/measurement.ts';
import { fixedRate, measurementNotes, saturationRounds } from '../measure/phases.ts';
import { memoryUse, type MemoryUse } from '../machine/proc-stats.ts';
import { ZipfSampler } from '../driver/zipf.ts';

/** The app's pool size (PgDatabase's default); reference (b) uses the same. */
const POOL_SIZE = 10;
const MAX_APP_RSS_MB = 200;
const MIN_APP_VS_REF = 0.8;

export async function redirectScenario(session: BenchSession, o: BenchOptions): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const pinning = planPinning();
  const log = session.log;
  log(pinning.note);

  const db = await startBenchDatabase(session, { engine: 'embedded', links: o.links, cpus: pinning.servers });
  const common = { cpus: pinning.servers, links: o.links };
  // Started side by side: each is its own process and startup is mostly waiting.
  const [app, refPg, refConstant, driver] = await Promise.all([
    startApp(session, { ...common, databaseUrl: db.url, databasePid: db.server.pid }),
    startReference(session, {
      ...common,
      name: 'ref-pg',
      label: `reference (b): bare Fastify + pg.Pool(${POOL_SIZE}), same query`,
      kind: 'pg',
      databaseUrl: db.url,
      databasePid: db.server.pid,
      pool: POOL_SIZE,
    }),
    startReference(session, {
      ...common,
      name: 'ref-constant',
      label: 'reference (a): bare Fastify, constant 302, no database',
      kind: 'constant',
    }),
    LoadDriverProcess.start(session, pinning.driver),
  ]);
  const servers = [app, refPg, refConstant];

  const saturation = await saturationRounds(driver, servers, o, log);
  const medians = servers.map((s) => mediansOf(saturation, s.name));
  const [mApp, mPg, mConst] = medians as [(typeof medians)[0], (typeof medians)[0], (typeof medians)[0]];
  const rate = o.rate ?? Math.max(1, Math.round(mApp.throughput / 2));
  const fixed = await fixedRate(driver, servers, o, rate, log);

  const memory: Record<string, MemoryUse> = {};
  for (const s of servers) {
    const m = memoryUse(s.proc.pid);
    if (m) memory[s.name] = m;
  }
  const appRss = memory.app?.rssMb ?? NaN;
  // Unsent requests (due, but the run ended before a connection was free) are a stall, and
  // already show as late latency; they are reported in the table, not counted as errors.
  const errors = [...saturation, ...fixed].reduce((n, m) => n + m.non302 + m.failed, 0);
  const ratios = {
    'app / ref-pg': mApp.throughput / mPg.throughput,
    'app / ref-constant': mApp.throughput / mConst.throughput,
    'ref-pg / ref-constant': mPg.throughput / mConst.throughput,
    // The same comparison by CPU cost per request (server + Postgres), steadier on a shared machine.
    'CPU per request, ref-pg / app': mPg.cpuPerRequestUs / mApp.cpuPerRequestUs,
  };
  const targets = [
    target('saturation throughput app / ref-pg', ratios['app / ref-pg'], '>=', MIN_APP_VS_REF),
    target(`app VmRSS after the run (${o.links.toLocaleString('en-US')} links)`, appRss, '<', MAX_APP_RSS_MB, 'MiB'),
    target('failed or non-302 requests', errors, '==', 0),
  ];
  const loadAverageAtEnd = machineInfo().loadAverage;
  return {
    scenario: 'redirect',
    command: commandLine('redirect', o),
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: { ...machine, loadAverageAtEnd },
    pinning,
    parameters: { ...o, poolSize: POOL_SIZE, zipfTop1PercentShare: new ZipfSampler(o.links, o.zipf).share(o.links / 100) },
    databases: [{ engine: db.engine, version: db.version, pid: db.server.pid }],
    servers: servers.map((s) => ({ name: s.name, label: s.label, pid: s.proc.pid })),
    saturation: { measurements: saturation, medians },
    fixedRate: {
      rate,
      rateSource: o.rate === undefined ? "half the app's median saturation throughput" : 'set with --rate',
      measurements: fixed,
    },
    memory,
    ratios,
    targets,
    notes: measurementNotes([...saturation, ...fixed], machine.loadAverage),
    pass: targets.every((t) => t.pass),
  };
}
