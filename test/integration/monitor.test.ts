// Monitoring on real components (`ladder up --rung 7 --web 3 --monitor`): Prometheus scrapes
// every node of `ladder status` (web servers, HAProxy's built-in exporter, the Postgres and
// Redis exporters beside their nodes, Prometheus and Alertmanager themselves) with `node` and
// `role` labels; targets follow `ladder scale`; a web server killed is `up == 0` within 15 s
// and an alert for it fires through Alertmanager (`ladder alerts --json`); a Redis node
// killed takes its exporter down with it; `ladder down` leaves no process behind.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/kit/process/pid.ts';
import { ensureDir } from '../../src/launcher/state-dir.ts';
import { LADDER_BIN } from '../support/process.ts';

const stateDir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'monitor-'));
chmodSync(stateDir, 0o755);

interface Node {
  name: string;
  role: string;
  pid: number | null;
  url: string;
  state: string;
  exporter?: { pid: number | null; port: number };
}
interface Status {
  entry: string;
  dashboard: string | null;
  nodes: Node[];
}

function ladder(...args: string[]) {
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LADDER_STATE_DIR: stateDir, LOG_LEVEL: 'warn' },
    timeout: 180_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const status = (): Status => JSON.parse(ladder('status', '--json').out) as Status;
/** The state file itself: it also keeps each node's exporter pid. */
const stateFile = (): { nodes: Node[] } => JSON.parse(readFileSync(path.join(stateDir, 'up', 'state.json'), 'utf8'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(250);
  }
}

let prometheus: string;

/** `up` of every target, by its node label. */
async function upByNode(): Promise<Map<string, string>> {
  const res = await fetch(`${prometheus}/api/v1/query?query=up`);
  const body = (await res.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  return new Map(body.data.result.map((r) => [r.metric.node!, r.value[1]]));
}

async function alerts(): Promise<{ alertname: string; node: string | null; severity: string | null }[]> {
  const r = ladder('alerts', '--json');
  expect(r.code, r.err).toBe(0);
  return (JSON.parse(r.out) as { alerts: { alertname: string; node: string | null; severity: string | null }[] }).alerts;
}

beforeAll(async () => {
  const up = ladder('up', '--rung', '7', '--web', '3', '--monitor');
  if (up.code !== 0) throw new Error(`ladder up failed:\n${up.err}`);
  prometheus = status().nodes.find((n) => n.name === 'prometheus')!.url;
}, 240_000);

afterAll(() => {
  ladder('down');
  rmSync(stateDir, { recursive: true, force: true });
}, 120_000);

describe('ladder up --rung 7 --monitor', () => {
  it('lists prometheus, alertmanager and the dashboard in `ladder status --json`', () => {
    const s = status();
    const roles = Object.fromEntries(s.nodes.map((n) => [n.name, n.role]));
    expect(roles.prometheus).toBe('prometheus');
    expect(roles.alertmanager).toBe('alertmanager');
    expect(s.dashboard).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(ladder('dashboard').out.trim()).toBe(s.dashboard);
    // Exporters run beside Postgres, Redis and edge nodes, on loopback ports of their own.
    for (const n of stateFile().nodes.filter((x) => ['postgres', 'postgres-replica', 'redis', 'varnish'].includes(x.role))) {
      expect(n.exporter?.pid, n.name).toBeGreaterThan(0);
      expect(isAlive(n.exporter!.pid!)).toBe(true);
    }
  });

  it('has every node of `ladder status` as a target with up == 1, labelled node and role', async () => {
    const names = status().nodes.map((n) => n.name).sort();
    expect(names).toHaveLength(12); // postgres, 2 replicas, redis, cache, 3 web, haproxy, edge, prometheus, alertmanager
    const up = await waitFor('every target up', async () => {
      const m = await upByNode();
      return names.every((n) => m.get(n) === '1') ? m : undefined;
    });
    expect([...up.keys()].sort()).toEqual(names);
    // Each exporter reports its own program: Postgres' and Redis' own up, HAProxy's frontend.
    const q = async (expr: string) => {
      const body = (await (await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as { data: { result: { metric: Record<string, string> }[] } };
      return body.data.result.map((r) => r.metric.node).sort();
    };
    expect(await q('pg_up == 1')).toEqual(['postgres', 'replica1', 'replica2']);
    expect(await q('redis_up == 1')).toEqual(['cache', 'redis']);
    expect(await q('haproxy_process_nbthread')).toEqual(['haproxy']);
  }, 40_000);

  it('follows `ladder scale`: a new web server becomes a target, a removed one stops being one', async () => {
    expect(ladder('scale', '--web', '4').code).toBe(0);
    await waitFor('web4 up', async () => (await upByNode()).get('web4') === '1');
    expect(ladder('scale', '--web', '3').code).toBe(0);
    await waitFor('web4 gone from the targets', async () => !(await upByNode()).has('web4'));
  }, 90_000);

  it('sees web2 killed: up 0 within 15 s, an alert for it within the rule\'s for (3 s) + 15 s', async () => {
    await waitFor('web2 up', async () => (await upByNode()).get('web2') === '1');
    const killedAt = Date.now();
    expect(ladder('chaos', 'kill', 'web2').code).toBe(0);
    await waitFor('up{node="web2"} == 0', async () => (await upByNode()).get('web2') === '0', 15_000);
    const upZeroAfter = Date.now() - killedAt;
    const fired = await waitFor('an alert for web2', async () => (await alerts()).find((a) => a.node === 'web2'), 18_000 - (Date.now() - killedAt));
    expect(['LadderNodeDown', 'LadderNodeRestarted']).toContain(fired.alertname);
    process.stderr.write(`monitor: web2 up 0 after ${upZeroAfter} ms; ${fired.alertname} after ${Date.now() - killedAt} ms\n`);
    const text = ladder('alerts');
    expect(text.out).toMatch(new RegExp(`${fired.alertname} +web2 \\(web\\) `));
    // The supervisor brings it back after the chaos hold (5 s), and Prometheus sees it.
    await waitFor('web2 up again', async () => (await upByNode()).get('web2') === '1', 30_000);
  }, 60_000);

  it('takes a Redis node\'s exporter down with it, and starts it again with the node', async () => {
    const before = stateFile().nodes.find((n) => n.name === 'cache')!;
    expect(ladder('chaos', 'kill', 'cache', '--down', '3').code).toBe(0);
    await waitFor('cache exporter stopped', () => !isAlive(before.exporter!.pid!), 10_000);
    await waitFor('up{node="cache"} == 0', async () => (await upByNode()).get('cache') === '0', 15_000);
    await waitFor('cache up again', async () => (await upByNode()).get('cache') === '1', 30_000);
    const after = stateFile().nodes.find((n) => n.name === 'cache')!;
    expect(after.exporter!.pid).not.toBe(before.exporter!.pid);
  }, 60_000);

  it('`ladder down` stops Prometheus, Alertmanager and every exporter', () => {
    const pids = stateFile().nodes.flatMap((n) => [n.pid, n.exporter?.pid ?? null]).filter((p): p is number => p !== null);
    expect(pids.length).toBe(18); // 12 nodes and 6 exporters (Postgres, 2 replicas, 2 Redis, the edge)
    const down = ladder('down');
    expect(down.code, down.err).toBe(0);
    expect(pids.filter((p) => isAlive(p))).toEqual([]);
    const r = ladder('alerts', '--json');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/NOT_RUNNING/);
  }, 120_000);

  it('runs none of it with --no-monitor, and says so', () => {
    const up = ladder('up', '--rung', '3', '--web', '1', '--no-monitor');
    expect(up.code, up.err).toBe(0);
    try {
      const s = status();
      expect(s.nodes.map((n) => n.role).sort()).toEqual(['haproxy', 'postgres', 'web']);
      expect(s.dashboard).toBeNull();
      expect(stateFile().nodes.every((n) => n.exporter === undefined)).toBe(true);
      for (const cmd of ['alerts', 'dashboard']) {
        const r = ladder(cmd);
        expect(r.code, cmd).toBe(1);
        expect(r.err, cmd).toMatch(/NOT_MONITORED: this topology runs no (alertmanager|dashboard): start it with `ladder up --rung 3 --monitor`/);
      }
    } finally {
      expect(ladder('down').code).toBe(0);
    }
  }, 120_000);
});
