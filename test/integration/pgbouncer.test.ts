// PgBouncer on real components: `ladder up --rung 3 --web 2 --pgbouncer --max-connections 50`
// with DATABASE_POOL_MAX=100 (two web servers that may open 200 connections together, four
// times the primary's limit). 200 concurrent connections through PgBouncer: 0 errors, where
// the same 200 straight to Postgres are refused; and the app (unnamed statements in
// transaction mode) answers 200 concurrent requests without an error.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/kit/process/pid.ts';
import { Visitor } from '../../src/lab/ha/steady-load.ts';
import { ensureDir } from '../../src/launcher/state-dir.ts';
import { uniqueEmail } from '../support/app.ts';
import { LADDER_BIN } from '../support/process.ts';

const stateDir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'bouncer-'));
chmodSync(stateDir, 0o755);

interface Node {
  name: string;
  role: string;
  pid: number | null;
  port: number;
}

function ladder(...args: string[]) {
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LADDER_STATE_DIR: stateDir, DATABASE_POOL_MAX: '100', LADDER_RATE_LIMITS: 'createLink=1000000/60,signup=100000/60' },
    timeout: 180_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const nodes = () => (JSON.parse(ladder('status', '--json').out) as { nodes: Node[] }).nodes;
let entry = '';

/** The primary's superuser URL at a port (the launcher keeps the password beside the data). */
function url(port: number): string {
  const pw = readFileSync(path.join(stateDir, 'up', 'postgres', 'pg-password'), 'utf8').trim();
  return `postgres://postgres:${encodeURIComponent(pw)}@127.0.0.1:${port}/links`;
}

/** n clients connected at once, each running one slow statement; the errors they got. */
async function concurrent(port: number, n: number): Promise<string[]> {
  const errors: string[] = [];
  const clients = Array.from({ length: n }, () => new pg.Client({ connectionString: url(port), connectionTimeoutMillis: 20_000 }));
  await Promise.all(
    clients.map(async (c) => {
      c.on('error', () => undefined);
      try {
        await c.connect();
        await c.query('select pg_sleep(0.2)');
      } catch (err) {
        errors.push((err as Error).message);
      }
    }),
  );
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  return errors;
}

beforeAll(async () => {
  const up = ladder('up', '--rung', '3', '--web', '2', '--pgbouncer', '--max-connections', '50', '--no-monitor');
  if (up.code !== 0) throw new Error(`ladder up failed: ${up.out}\n${up.err}`);
  entry = up.out.trim();
}, 200_000);

afterAll(async () => {
  const pids = nodes()
    .map((n) => n.pid)
    .filter((p): p is number => p !== null);
  expect(ladder('down').code).toBe(0);
  for (const pid of pids) expect(isAlive(pid)).toBe(false);
  rmSync(stateDir, { recursive: true, force: true });
}, 120_000);

describe('ladder up --pgbouncer --max-connections 50', () => {
  it('runs PgBouncer as node pgbouncer, between the web servers and the primary', () => {
    const ns = nodes();
    expect(ns.find((n) => n.name === 'pgbouncer')?.role).toBe('pgbouncer');
    expect(ladder('status').out).toMatch(/pgbouncer\s+pgbouncer\s+ready/);
  });

  it('the app through PgBouncer (transaction mode, unnamed statements): 200 concurrent requests, 0 errors, within max_connections', async () => {
    const users = await Promise.all(Array.from({ length: 20 }, () => Visitor.signUp(entry, uniqueEmail())));
    const statuses: number[] = [];
    const primary = nodes().find((n) => n.name === 'postgres')!;
    let peak = 0;
    const watcher = (async () => {
      const c = new pg.Client({ connectionString: url(primary.port) });
      await c.connect();
      try {
        for (let i = 0; i < 20; i++) {
          const n = Number((await c.query<{ n: string }>("select count(*)::text as n from pg_stat_activity where backend_type = 'client backend'")).rows[0]!.n);
          peak = Math.max(peak, n);
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        await c.end();
      }
    })();
    for (let round = 0; round < 5; round++) {
      const batch = Array.from({ length: 200 }, async (_, i) => {
        const u = users[i % users.length]!;
        const r = i % 2 === 0 ? await u.request('POST', '/api/links', { url: `https://example.com/pb/${round}/${i}` }) : await u.request('GET', '/api/links?limit=5');
        statuses.push(r.status);
      });
      await Promise.all(batch);
    }
    await watcher;
    const bad = statuses.filter((s) => s !== 200 && s !== 201);
    process.stderr.write(`pgbouncer: ${statuses.length} requests, ${bad.length} errors; at most ${peak} client backends on the primary (max_connections 50)\n`);
    expect(bad).toEqual([]);
    expect(statuses).toHaveLength(1000);
    expect(peak).toBeLessThanOrEqual(50);
  }, 90_000);
  // Last: the direct connections exhaust the primary for a moment, which takes the web servers
  // out of the balancer until their next health checks.
  it('200 concurrent connections through PgBouncer: 0 errors; the same 200 straight to Postgres are refused', async () => {
    const bouncer = nodes().find((n) => n.name === 'pgbouncer')!;
    const primary = nodes().find((n) => n.name === 'postgres')!;
    const direct = await concurrent(primary.port, 200);
    expect(direct.length).toBeGreaterThan(100);
    expect(direct.some((m) => /too many clients|reserved/.test(m))).toBe(true);
    expect(await concurrent(bouncer.port, 200)).toEqual([]);
  }, 60_000);

});
