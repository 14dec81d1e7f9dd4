// Redis Sentinel on real components: `ladder up --rung 7 --ha --web 2 --no-cache --replicas 1`
// (sessions in `redis`, its replica `redis-replica`, sentinel1..3; the web servers' clients
// in sentinel mode). kill -9 of the session primary: logged-in users are logged in again
// within 10 s (the replica had their sessions) and stay so; the replica is the primary now,
// and the old primary comes back as its replica.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/kit/process/pid.ts';
import { Visitor } from '../../src/lab/ha/steady-load.ts';
import { ensureDir } from '../../src/launcher/state-dir.ts';
import { uniqueEmail } from '../support/app.ts';
import { LADDER_BIN } from '../support/process.ts';

const stateDir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'sentinel-'));
chmodSync(stateDir, 0o755);

interface Node {
  name: string;
  role: string;
  pid: number | null;
  state: string;
}

function ladder(...args: string[]) {
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LADDER_STATE_DIR: stateDir, LADDER_RATE_LIMITS: 'signup=100000/60,login=100000/60' },
    timeout: 180_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const nodes = () => (JSON.parse(ladder('status', '--json').out) as { nodes: Node[] }).nodes;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let entry = '';

beforeAll(async () => {
  const up = ladder('up', '--rung', '7', '--ha', '--web', '2', '--no-cache', '--replicas', '1', '--no-monitor');
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

describe('ladder up --rung 7 --ha: the session Redis under Sentinel', () => {
  it('runs redis, redis-replica and sentinel1..3', () => {
    const ns = nodes();
    expect(ns.map((n) => `${n.name}:${n.role}`)).toEqual(
      expect.arrayContaining(['redis:redis', 'redis-replica:redis-replica', 'sentinel1:sentinel', 'sentinel2:sentinel', 'sentinel3:sentinel']),
    );
  });

  it('kill -9 of the session primary: logged-in users are logged in again within 10 s, and stay so', async () => {
    const users = await Promise.all(Array.from({ length: 20 }, () => Visitor.signUp(entry, uniqueEmail())));
    for (const u of users) expect((await u.request('GET', '/api/me')).status).toBe(200);
    await sleep(1000); // replication is asynchronous: the replica has had a second
    expect(ladder('chaos', 'kill', 'redis').code).toBe(0);
    const at = Date.now();
    const back = new Map<number, number>();
    while (back.size < users.length && Date.now() - at < 15_000) {
      await Promise.all(
        users.map(async (u, i) => {
          if (back.has(i)) return;
          const s = (await u.request('GET', '/api/me', undefined, 2000).catch(() => ({ status: 0 }))).status;
          if (s === 200) back.set(i, Date.now() - at);
          // 401 would mean the session is gone: a failure, not a wait.
          expect(s).not.toBe(401);
        }),
      );
      await sleep(200);
    }
    const worst = Math.max(...back.values());
    process.stderr.write(`sentinel: ${back.size} of ${users.length} users logged in again, the last ${worst} ms after the kill\n`);
    expect(back.size).toBe(users.length);
    expect(worst).toBeLessThan(10_000);
    for (const u of users) expect((await u.request('GET', '/api/me')).status).toBe(200);
    // The replica is the primary now; the old primary comes back as its replica.
    const deadline = performance.now() + 30_000;
    while (performance.now() < deadline) {
      const ns = nodes();
      if (ns.find((n) => n.name === 'redis-replica')?.role === 'redis' && ns.find((n) => n.name === 'redis')?.role === 'redis-replica' && ns.find((n) => n.name === 'redis')?.state === 'ready') break;
      await sleep(500);
    }
    const ns = nodes();
    expect(ns.find((n) => n.name === 'redis-replica')?.role).toBe('redis');
    expect(ns.find((n) => n.name === 'redis')?.role).toBe('redis-replica');
    // New sessions work on the new primary too.
    expect((await (await Visitor.signUp(entry, uniqueEmail())).request('GET', '/api/me')).status).toBe(200);
  }, 90_000);
});
