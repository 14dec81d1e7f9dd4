// The load lab at tiny scale: every process starts, the driver measures both modes, the
// report has sane numbers, and nothing is left running afterwards.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/kit/process/pid.ts';
import { ensureDir } from '../../src/launcher/state-dir.ts';
import type { BenchOptions } from '../../src/lab/options/bench-options.ts';
import type { BenchReport } from '../../src/lab/report/bench-report.ts';
import { runBench } from '../../src/lab/bench-command.ts';

const TINY: BenchOptions = {
  links: 2000,
  duration: 1,
  warmup: 0.25,
  connections: 8,
  rate: undefined,
  rounds: 1,
  zipf: 1,
  seed: 7,
  json: false,
  rung: undefined,
  web: undefined,
  cpu: undefined,
  users: 10,
  sizes: [1],
  replicas: undefined,
  dbCpu: undefined,
  sync: 5,
  window: 60,
};

const root = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'bench-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function run(scenario: string): Promise<{ report: BenchReport; file: string }> {
  return runBench(scenario, TINY, {
    stateDir: path.join(root, scenario, 'state'),
    resultsDir: path.join(root, scenario, 'results'),
    log: () => undefined,
  });
}

function expectSane(report: BenchReport, servers: string[]): void {
  expect(report.saturation.medians.map((m) => m.server)).toEqual(servers);
  for (const m of report.saturation.measurements) {
    expect(m.throughput, m.server).toBeGreaterThan(0);
    expect(m.responses).toBeGreaterThan(0);
    expect(m.non302, m.server).toBe(0);
    expect(m.failed, `${m.server}: ${m.firstError}`).toBe(0);
    expect(m.latency.p99).toBeGreaterThanOrEqual(m.latency.p50);
    expect(m.latency.max).toBeGreaterThanOrEqual(m.latency.p99);
    expect(m.serverCpu).toBeGreaterThan(0);
  }
  expect(report.fixedRate.rate).toBeGreaterThan(0);
  expect(report.fixedRate.measurements.map((m) => m.server)).toEqual(servers);
  for (const m of report.fixedRate.measurements) {
    expect(m.scheduled).toBeGreaterThan(0);
    expect(m.responses).toBeGreaterThan(0);
    expect(m.non302, m.server).toBe(0);
    expect(m.failed, `${m.server}: ${m.firstError}`).toBe(0);
    expect(m.latency.p99).toBeGreaterThanOrEqual(m.latency.p50);
    // Timed from the scheduled send, latency is never below the time from the actual send.
    expect(m.latency.p99).toBeGreaterThanOrEqual(m.serviceTime!.p99);
  }
  for (const v of Object.values(report.ratios)) {
    expect(Number.isFinite(v)).toBe(true);
    expect(v).toBeGreaterThan(0);
  }
  expect(report.targets.length).toBeGreaterThan(0);
  expect(report.machine.cpus).toBeGreaterThan(0);
  // Every process the run started has stopped.
  for (const p of [...report.servers.map((s) => s.pid), ...report.databases.map((d) => d.pid)]) {
    if (p !== undefined) expect(isAlive(p), `pid ${p}`).toBe(false);
  }
}

describe('ladder bench', () => {
  it('redirect: app and both references, both modes, saved report', { timeout: 60_000 }, async () => {
    const { report, file } = await run('redirect');
    expectSane(report, ['app', 'ref-pg', 'ref-constant']);
    expect(Object.keys(report.ratios)).toEqual(expect.arrayContaining(['app / ref-pg', 'app / ref-constant']));
    expect(report.memory.app!.rssMb).toBeGreaterThan(10);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ scenario: 'redirect', command: report.command });
    expect(existsSync(path.join(path.dirname(file), 'redirect-latest.json'))).toBe(true);
  });

  it.skipIf(!existsSync('/usr/bin/redis-server'))('cache: the cached app, the app and the constant reference; queries per redirect', { timeout: 90_000 }, async () => {
    const { report } = await run('cache');
    expectSane(report, ['app-cached', 'app', 'ref-constant']);
    expect(Object.keys(report.ratios)).toEqual(expect.arrayContaining(['app-cached / ref-constant', 'app-cached / app']));
    const perRedirect = report.figures?.['steady state: database queries per redirect'];
    expect(Number.isFinite(perRedirect)).toBe(true);
    // Warm after the saturation rounds: the fixed-rate phase hardly touches the database.
    expect(perRedirect).toBeLessThan(0.05);
    expect(report.figures?.['steady state: L1 hit ratio']).toBeGreaterThan(0.9);
    expect(report.targets.find((t) => t.name.startsWith('failed'))?.pass).toBe(true);
  });

  it.skipIf(!existsSync('/usr/lib/postgresql/15/bin/postgres'))(
    'engines: embedded vs system Postgres vs PGlite, identical settings',
    { timeout: 60_000 },
    async () => {
      const { report } = await run('engines');
      expectSane(report, ['embedded', 'system', 'pglite']);
      expect(report.targets.find((t) => t.name.startsWith('Postgres settings'))?.value).toBe(0);
      expect(report.ratios['embedded / system']).toBeGreaterThan(0);
    },
  );
});
