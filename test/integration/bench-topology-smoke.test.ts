// The topology scenarios at tiny scale, on real components (`ladder up`: Postgres, HAProxy,
// Redis, web servers, the edge): `scaling` with 1 and 2 servers for one short round, `edge`
// (rung 6), `session` with a few users, and `replicas` (rung 3 and rung 4 side by side, database nodes capped). The reports must be sane (throughput > 0, zero errors), and nothing of
// the topology may be left running afterwards.
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/kit/process/pid.ts';
import { ensureDir } from '../../src/launcher/state-dir.ts';
import { runBench } from '../../src/lab/bench-command.ts';
import type { BenchOptions } from '../../src/lab/options/bench-options.ts';
import type { BenchReport } from '../../src/lab/report/bench-report.ts';
import type { Measurement } from '../../src/lab/measure/measurement.ts';

const TINY: BenchOptions = {
  links: 2000,
  duration: 2,
  warmup: 0.5,
  connections: 8,
  rate: undefined,
  rounds: 1,
  zipf: 1,
  seed: 11,
  json: false,
  rung: undefined,
  web: undefined,
  cpu: undefined,
  users: 12,
  sizes: [1, 2],
  replicas: undefined,
  dbCpu: undefined,
  sync: 5,
  window: 60,
};

const root = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'bench-topology-'));
// The Postgres server account must reach its data folder (mkdtemp makes mode 700).
chmodSync(root, 0o755);
afterAll(() => rmSync(root, { recursive: true, force: true }));

function run(scenario: string, o: Partial<BenchOptions> = {}): Promise<{ report: BenchReport; file: string }> {
  return runBench(scenario, { ...TINY, ...o }, {
    stateDir: path.join(root, scenario, 'state'),
    resultsDir: path.join(root, scenario, 'results'),
    log: () => undefined,
  });
}

function expectClean(ms: Measurement[]): void {
  expect(ms.length).toBeGreaterThan(0);
  for (const m of ms) {
    const where = `${m.server} ${m.mode}${m.round === undefined ? '' : ` r${m.round}`}`;
    expect(m.throughput, where).toBeGreaterThan(0);
    expect(m.non302, `${where}: ${JSON.stringify(m.statuses)}`).toBe(0);
    expect(m.failed, `${where}: ${m.firstError}`).toBe(0);
    expect(m.latency.p99, where).toBeGreaterThanOrEqual(m.latency.p50);
    expect(m.serverCpu, where).toBeGreaterThan(0);
    expect(m.databaseCpu, where).toBeGreaterThan(0);
  }
}

/** PIDs of CPU-floor spinners (src/lab/machine/cpu-floor.ts) still running. */
function floorSpinners(): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('const parent = process.ppid, deadline')) found.push(Number(pid));
    } catch {
      // exited while listing
    }
  }
  return found;
}

/** Every process of the topology (or topologies) has stopped (the run ends with `ladder down`). */
function expectStopped(report: BenchReport): void {
  for (const topology of report.topologies ?? [report.topology!]) {
    const pids = topology.nodes.map((n) => n.pid).filter((p): p is number => p !== null);
    expect(pids.length).toBe(topology.nodes.length);
    for (const pid of pids) expect(isAlive(pid), `pid ${pid}`).toBe(false);
  }
}

describe('ladder bench on a launched topology', () => {
  it.skipIf(!existsSync('/usr/sbin/haproxy'))('scaling: 1 and 2 web servers at 0.2 core behind HAProxy', { timeout: 90_000 }, async () => {
    const { report } = await run('scaling');
    expect(report.topology).toMatchObject({ rung: 3, cpu: 0.2 });
    // With the CPU floor (chrt and taskset here and in CI), the smallest and largest sizes
    // also run without it, and no spinner outlives the run.
    const floored = report.notes.some((n) => n.startsWith('CPU floor:'));
    expect(report.saturation.medians.map((m) => m.server)).toEqual(
      floored ? ['1 server', '2 servers', '1 server, no CPU floor', '2 servers, no CPU floor'] : ['1 server', '2 servers'],
    );
    if (floored) expect(Number.isFinite(report.ratios['2 servers / 1 server, both without the CPU floor'])).toBe(true);
    expect(floorSpinners()).toEqual([]);
    expectClean(report.saturation.measurements);
    for (const m of report.saturation.measurements) expect(m.componentCpu?.haproxy, m.server).toBeGreaterThan(0);
    expect(report.fixedRate.measurements.map((m) => m.server).sort()).toEqual(['direct', 'haproxy']);
    expectClean(report.fixedRate.measurements);
    expect(report.ratios['2 servers / 1 server']).toBeGreaterThan(0);
    expect(Number.isFinite(report.figures?.['p50 added by HAProxy, ms'])).toBe(true);
    expect(report.targets.find((t) => t.name.startsWith('failed'))?.pass).toBe(true);
    // Where the cgroup cpu controller is writable (it is here and in CI), the caps held.
    // Held: no phase used more CPU than its servers' caps, and the cap was reached. Not every
    // phase reaches it: with 8 connections and the CPU floor running, one server at 0.2 core
    // used 0.16 core on one VM (the floor slows the driver's CPU too).
    if (report.topology!.capped) {
      for (const m of report.saturation.measurements) expect(m.serverCpu, m.server).toBeLessThanOrEqual(0.2 * Number(/^(\d+) server/.exec(m.server)?.[1]) * 1.1);
      expect(report.saturation.measurements.some((m) => (m.throttled ?? 0) > 0)).toBe(true);
    } else {
      expect(report.notes.join('\n')).toMatch(/UNCAPPED/);
    }
    expectStopped(report);
  });

  it.skipIf(!existsSync('/usr/sbin/varnishd'))('edge: origin requests per 1,000 page views without and with the edge, asset and page rates', { timeout: 90_000 }, async () => {
    const { report } = await run('edge', { replicas: 0 });
    expect(report.topology?.rung).toBe(6);
    expect(report.topology?.nodes.map((n) => n.role)).toEqual(expect.arrayContaining(['varnish', 'haproxy', 'web']));
    const f = report.figures!;
    // A page and its three assets per view without the edge; the edge's first fetches with it.
    expect(f['origin requests per 1,000 page views, without the edge']).toBe(4000);
    expect(f['origin requests per 1,000 page views, with the edge']).toBeLessThan(40);
    expect(f['assets fetched from the origin by the edge']).toBe(f['assets a page links']);
    expect(report.saturation.medians.map((m) => m.server)).toEqual(['edge-assets', 'origin-pages', 'origin-pages-haproxy', 'origin-previews-haproxy']);
    for (const m of report.saturation.measurements) {
      expect(m.throughput, m.server).toBeGreaterThan(0);
      expect(Object.keys(m.statuses), m.server).toEqual(['200']);
      expect(m.failed, m.server).toBe(0);
    }
    // Per core: HAProxy's CPU is counted on the origin's side, so a page costs more there than at one web server.
    expect(report.ratios['edge asset rate / origin page rate per core (HAProxy + web servers, home page)']).toBeGreaterThan(0);
    expect(f['HAProxy + web servers CPU µs per home page']).toBeGreaterThan(f['one web server CPU µs per home page']!);
    expect(report.ratios['edge asset rate / one web server page rate, req/s at the same cap (the first comparison)']).toBeGreaterThan(0);
    expect(report.targets.find((t) => t.name.startsWith('failed'))?.pass).toBe(true);
    expectStopped(report);
  });

  it.skipIf(!existsSync('/usr/bin/redis-server'))('session: logged-in users on rung 7 read /api/me and /api/links', { timeout: 90_000 }, async () => {
    const { report } = await run('session');
    expect(report.topology?.rung).toBe(7);
    expect(report.topology?.nodes.map((n) => n.role)).toEqual(expect.arrayContaining(['redis', 'haproxy', 'web']));
    expectClean([...report.saturation.measurements, ...report.fixedRate.measurements]);
    for (const m of report.saturation.measurements) {
      expect(Object.keys(m.statuses)).toEqual(['200']);
      expect(m.componentCpu?.redis, 'sessions are read from Redis').toBeGreaterThan(0);
    }
    expect(report.targets.every((t) => t.pass)).toBe(true);
    expectStopped(report);
  });

  it.skipIf(!existsSync('/usr/sbin/haproxy') || !existsSync('/usr/lib/postgresql/15/bin/pg_basebackup'))(
    'replicas: rung 3 vs rung 4 with 2 replicas, every database node capped; primary share of reads',
    { timeout: 120_000 },
    async () => {
      const { report } = await run('replicas', { links: 1000 });
      expect(report.topologies?.map((t) => t.command)).toEqual(['ladder up --rung 3 --db-cpu 0.1', 'ladder up --rung 4 --replicas 2 --db-cpu 0.1']);
      expect(report.saturation.medians.map((m) => m.server)).toEqual(['rung 3', 'rung 4']);
      expectClean(report.saturation.measurements);
      for (const m of report.saturation.measurements) {
        const nodes = m.server === 'rung 3' ? ['postgres'] : ['postgres', 'replica1', 'replica2'];
        expect(Object.keys(m.databaseNodeCpu ?? {}), m.server).toEqual(nodes);
        if (report.topology!.nodes.some((n) => n.cpu !== undefined)) expect(Object.keys(m.databaseThrottled ?? {}), m.server).toEqual(nodes);
      }
      expect(report.ratios['rung 4 / rung 3']).toBeGreaterThan(0);
      const f = report.figures!;
      // The read counter: every read at rung 3 is the primary's; at rung 4 the replicas serve most.
      expect(f['rung 3: reads served by the primary']).toBeGreaterThan(0);
      expect(f['rung 3: primary share of reads, %']).toBe(100);
      expect(f['rung 4: reads served by replicas']).toBeGreaterThan(0);
      expect(f['rung 4: primary share of reads, %']).toBeGreaterThanOrEqual(0);
      expect(f['rung 4: primary share of reads, %']).toBeLessThan(50);
      expect(report.targets.find((t) => t.name.startsWith('rung 4: primary share'))?.threshold).toBe(10);
      // The regression guard of rung 4's read path, from the web servers' counters (nothing
      // timed): concurrent redirects share statements on the replicas as they do on the rung
      // 3 primary (before, each rung 4 redirect was a statement of its own: 1.0 or more; 0.2 to
      // 0.81 since, by the load on the machine), and
      // rotation spreads them evenly over the two replicas.
      const perRedirect = (rung: number) => f[`rung ${rung}: database statements per redirect`]!;
      expect(perRedirect(3)).toBeGreaterThan(0);
      expect(perRedirect(4), `rung 3: ${perRedirect(3)}`).toBeLessThan(0.9);
      expect(perRedirect(4), `rung 3: ${perRedirect(3)}`).toBeLessThan(3 * perRedirect(3));
      for (const replica of ['replica1', 'replica2']) {
        const share = f[`rung 4: ${replica} share of replica reads, %`];
        expect(share, replica).toBeGreaterThan(35);
        expect(share, replica).toBeLessThan(65);
      }
      expect(report.targets.find((t) => t.name.startsWith('failed'))?.pass).toBe(true);
      expectStopped(report);
    },
  );
});
