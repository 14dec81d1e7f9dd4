// Scenario `redirect`: GET /:code on the Links app against two bare Fastify references on
// the same machine, Postgres and driver: (a) a constant 302, no database, and (b) the
// app's own lookup through a pg.Pool of the app's size. app/(b) is what the kit and app
// layers cost on the hot path; app/(a) is what the database round trip costs on top.
// With --rung N it runs against a launched topology instead (redirect-rung.ts).
import { LoadDriverProcess } from '../driver/load-driver-process.ts';
import { mediansOf, type Measurement } from '../measure/measurement.ts';
import { fixedRate, saturationRounds } from '../measure/phases.ts';
import { target, type BenchReport } from '../report/bench-report.ts';
import { stallFigures, watchStalls } from '../measure/stall-probe.ts';
import { startApp, startReference } from '../targets/bench-servers.ts';
import { redirectRung } from './redirect-rung.ts';
import { databaseRow, requestErrors, serverMemory, serverRows, type Scenario, type ScenarioContext } from './scaffold.ts';

/** The app's pool size (PgDatabase's default); reference (b) uses the same. */
const POOL_SIZE = 10;
const MAX_APP_RSS_MB = 200;
const MIN_APP_VS_REF = 0.8;
/** The app's p99 at a fixed rate may be at most this multiple of reference (b)'s. */
const MAX_TAIL_VS_REF = 2;

/** app / ref-pg of a latency percentile in the fixed-rate phases (from the scheduled time). */
function tailRatio(fixed: readonly Measurement[], p: 'p99' | 'p999'): number {
  const of = (name: string) => fixed.find((m) => m.server === name)?.latency[p] ?? NaN;
  return of('app') / of('ref-pg');
}

export const redirectScenario: Scenario = {
  name: 'redirect',
  summary: 'GET /:code on the Links app vs bare Fastify references; with --rung N, at the entry of `ladder up --rung N`',
  options: [{ flag: '--rung', default: 'none: rung 1 in-process' }, { flag: '--web' }, { flag: '--cpu' }, { flag: '--replicas' }, { flag: '--db-cpu' }],
  // Without --rung, rung 1 in-process against the references, as it always was.
  run: (ctx) => (ctx.o.rung === undefined ? redirectRung1(ctx) : redirectRung(ctx)),
};

async function redirectRung1(ctx: ScenarioContext): Promise<BenchReport> {
  const { o, session, log } = ctx;
  const pinning = ctx.planPinning();
  const db = await ctx.startDatabase('embedded', pinning.servers);
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
  const fixedPlan = ctx.fixedRatePlan(mApp.throughput, "the app's");
  // The app's own view of the phase (event-loop delay, GC pauses), read from its /metrics.
  const stalls = await watchStalls(`http://${app.host}:${app.port}`);
  const fixedApp = await fixedRate(driver, [app], o, fixedPlan.rate, log);
  const appStalls = await stalls.finish();
  const fixed = [...fixedApp, ...(await fixedRate(driver, [refPg, refConstant], o, fixedPlan.rate, log))];

  const memory = serverMemory(servers);
  const appRss = memory.app?.rssMb ?? NaN;
  // Unsent requests (due in the window, still without a connection when the drain ended) are a stall, and
  // already show as late latency; they are reported in the table, not counted as errors.
  const errors = requestErrors([...saturation, ...fixed]);
  const ratios = {
    'app / ref-pg': mApp.throughput / mPg.throughput,
    'app / ref-constant': mApp.throughput / mConst.throughput,
    'ref-pg / ref-constant': mPg.throughput / mConst.throughput,
    // The same comparison by CPU cost per request (server + Postgres), steadier on a shared machine.
    'CPU per request, ref-pg / app': mPg.cpuPerRequestUs / mApp.cpuPerRequestUs,
    // The latency tail at a fixed arrival rate, from the scheduled send time (what users feel).
    'fixed-rate p99, app / ref-pg': tailRatio(fixed, 'p99'),
    'fixed-rate p99.9, app / ref-pg': tailRatio(fixed, 'p999'),
  };
  const appFixed = fixed.find((m) => m.server === 'app');
  const targets = [
    target('saturation throughput app / ref-pg', ratios['app / ref-pg'], '>=', MIN_APP_VS_REF),
    target(`app VmRSS after the run (${o.links.toLocaleString('en-US')} links)`, appRss, '<', MAX_APP_RSS_MB, 'MiB'),
    target('failed or non-302 requests', errors, '==', 0),
    target('fixed-rate p99 from the scheduled time, app / ref-pg', ratios['fixed-rate p99, app / ref-pg'], '<=', MAX_TAIL_VS_REF),
    target('fixed-rate requests left unsent by the app', appFixed?.unsent ?? NaN, '==', 0),
  ];
  return ctx.report({
    poolSize: POOL_SIZE,
    pinning,
    databases: [databaseRow(db)],
    servers: serverRows(servers),
    saturation: { measurements: saturation, medians },
    fixedRate: { ...fixedPlan, measurements: fixed },
    memory,
    ratios,
    figures: stallFigures('app', appStalls, o.warmup + o.duration),
    targets,
    notes: ctx.measurementNotes([...saturation, ...fixed]),
  });
}
