// Rung 7 on real components (`ladder up --rung 7 --web 3`: a Postgres primary and its two
// streaming replicas (rung 4 is included), Redis, HAProxy, the edge of rung 6, three web servers), under steady
// load: a web server killed with -9, a rolling restart, and Redis stopped for 10 s. Every
// case counts failed requests; the target is zero.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/kit/process/pid.ts';
import { ensureDir } from '../../src/launcher/state-dir.ts';
import { Client, signedUpClient, uniqueEmail } from '../support/app.ts';
import { LADDER_BIN, nodePids } from '../support/process.ts';

const stateDir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'up-'));
chmodSync(stateDir, 0o755);

interface Status {
  entry: string;
  rung: number;
  nodes: { name: string; role: string; pid: number | null; port: number; url: string; state: string; restarts: number }[];
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
const node = (name: string) => status().nodes.find((n) => n.name === name)!;

async function waitFor(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Steady load: redirect loops plus a logged-in user reading /api/me; counts every failure. */
function steadyLoad(entry: string, code: string, user: Client, { redirects = 6, sessions = 2 } = {}) {
  const result = { ok: 0, failed: [] as string[], sessionOk: 0, sessionFailed: [] as string[] };
  let running = true;
  const loops = [
    ...Array.from({ length: redirects }, async () => {
      while (running) {
        try {
          const res = await fetch(`${entry}/${code}`, { redirect: 'manual' });
          await res.arrayBuffer();
          if (res.status === 302) result.ok++;
          else result.failed.push(`redirect ${res.status}`);
        } catch (err) {
          result.failed.push(`redirect ${(err as Error).message}`);
        }
      }
    }),
    ...Array.from({ length: sessions }, async () => {
      while (running) {
        try {
          const res = await user.get('/api/me');
          if (res.status === 200) result.sessionOk++;
          else result.sessionFailed.push(`me ${res.status} ${res.json?.error?.code ?? ''}`);
        } catch (err) {
          result.sessionFailed.push(`me ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }),
  ];
  return {
    result,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return result;
    },
  };
}

/** A 3 MiB JSON body (the web servers' limit is 16 KiB). */
const OVERSIZED = Buffer.from(JSON.stringify({ url: `https://example.com/${'a'.repeat(3 * 1024 * 1024)}` }));

/**
 * POSTs the oversized body to /api/links on a fresh connection with a Content-Length, as
 * curl does; resolves with the status and body, or with the socket error (a reset).
 */
function postOversized(base: string): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.request(`${base}/api/links`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': String(OVERSIZED.length) },
    });
    let settled = false;
    const done = (r: { status: number; body: string } | { error: string }) => {
      if (!settled) resolve(r);
      settled = true;
    };
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => done({ status: res.statusCode ?? 0, body }));
      res.on('error', (err) => done({ error: err.message }));
    });
    // A write error after the answer arrived (the server closed its side) is not a failure;
    // one before it, or a reset that loses the answer, is.
    req.on('error', (err) => setTimeout(() => done({ error: (err as NodeJS.ErrnoException).code ?? err.message }), 200));
    req.end(OVERSIZED);
  });
}

let entry: string;
let code: string;
let user: Client;

beforeAll(async () => {
  // Replicas (rung 4) have their own test (replicas.test.ts); without them this one checks
  // exactly what rungs 2, 3 and 7 add, with fewer processes on two cores.
  const up = ladder('up', '--rung', '7', '--web', '3', '--replicas', '0');
  if (up.code !== 0) throw new Error(`ladder up failed:\n${up.err}`);
  entry = up.out.trim().split('\n').pop()!;
  user = await signedUpClient(entry);
  code = (await user.post('/api/links', { url: 'https://example.com/steady' })).json.code as string;
}, 240_000);

afterAll(async () => {
  const pids = nodePids(() => status().nodes);
  const down = ladder('down');
  expect(down.code).toBe(0);
  for (const pid of pids) expect(isAlive(pid)).toBe(false);
  rmSync(stateDir, { recursive: true, force: true });
}, 120_000);

describe('ladder up --rung 7 --web 3', () => {
  it('lists Postgres, Redis, HAProxy, the edge and 3 web nodes with live pids, and serves the API', async () => {
    const s = status();
    expect(s.rung).toBe(7);
    expect(s.entry).toBe(entry);
    // Two Redis servers: sessions and rate limits (`redis`), and the cache tier's (`cache`);
    // the edge of rung 6 (Varnish), the entry; monitoring is on from rung 3
    // (test/integration/monitor.test.ts checks it).
    expect(s.nodes.map((n) => n.role).sort()).toEqual(['alertmanager', 'haproxy', 'postgres', 'prometheus', 'redis', 'redis', 'varnish', 'web', 'web', 'web']);
    expect(s.nodes.find((n) => n.role === 'varnish')!.url).toBe(entry);
    expect(s.nodes.filter((n) => n.role === 'redis').map((n) => n.name).sort()).toEqual(['cache', 'redis']);
    for (const n of s.nodes) {
      expect(n.state).toBe('ready');
      expect(isAlive(n.pid!)).toBe(true);
      expect(n.url).toMatch(/^(http|postgres|redis):\/\/127\.0\.0\.1:\d+/);
    }
    const res = await fetch(`${entry}/${code}`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    // Stateless tier: the session is served by every web server in turn (no stickiness cookie).
    for (let i = 0; i < 6; i++) expect((await user.get('/api/me')).status).toBe(200);
    expect((await fetch(`${entry}/`)).headers.get('set-cookie') ?? '').not.toMatch(/LADDER_SRV/);
  });

  it('kill -9 of 1 of 3 web servers: 0 failed GETs, the user stays logged in, it is restarted', async () => {
    const victim = node('web2');
    const load = steadyLoad(entry, code, user);
    await new Promise((r) => setTimeout(r, 1000));
    expect(ladder('chaos', 'kill', 'web2').code).toBe(0);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await user.get('/api/me')).status).toBe(200); // next request, served by another server
    await waitFor('web2 back', () => {
      const n = node('web2');
      return n.state === 'ready' && n.pid !== victim.pid && n.pid !== null;
    });
    await new Promise((r) => setTimeout(r, 1500));
    const r = await load.stop();
    expect(r.failed).toEqual([]);
    expect(r.sessionFailed).toEqual([]);
    expect(r.ok).toBeGreaterThan(100);
    expect(node('web2').restarts).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('rolling restart (SIGTERM one at a time): 0 failed requests', async () => {
    const load = steadyLoad(entry, code, user);
    await new Promise((r) => setTimeout(r, 500));
    for (const name of ['web1', 'web2', 'web3']) {
      const before = node(name).pid!;
      process.kill(before, 'SIGTERM');
      await waitFor(`${name} restarted`, () => {
        const n = node(name);
        return n.state === 'ready' && n.pid !== null && n.pid !== before;
      });
      await new Promise((r) => setTimeout(r, 1500)); // let HAProxy's health check admit it again
    }
    const r = await load.stop();
    expect(r.failed).toEqual([]);
    expect(r.sessionFailed).toEqual([]);
    expect(r.ok).toBeGreaterThan(100);
  }, 90_000);

  it('Redis stopped for 10 s: 0 failed redirects; session routes answer 503 fast and recover', async () => {
    const load = steadyLoad(entry, code, user, { redirects: 6, sessions: 0 });
    await new Promise((r) => setTimeout(r, 500));
    expect(ladder('chaos', 'stop', 'redis').code).toBe(0);
    try {
      await new Promise((r) => setTimeout(r, 1000));
      const t0 = Date.now();
      const me = await user.get('/api/me');
      expect(me.status).toBe(503);
      expect(me.json.error.code).toBe('SERVICE_UNAVAILABLE');
      expect(Date.now() - t0).toBeLessThan(2000);
      await new Promise((r) => setTimeout(r, 9000));
    } finally {
      ladder('chaos', 'cont', 'redis');
    }
    // Back by itself: the client reconnects with no restart of anything. Every web server
    // reconnects on its own, so back means six 200s in a row (each of the three servers twice,
    // in HAProxy's rotation); one 200 let the next test meet a server still reconnecting (503).
    const deadline = performance.now() + 15_000;
    let inARow = 0;
    while (performance.now() < deadline && inARow < 6) inARow = (await user.get('/api/me')).status === 200 ? inARow + 1 : 0;
    expect(inARow).toBe(6);
    const r = await load.stop();
    expect(r.failed).toEqual([]);
    expect(r.ok).toBeGreaterThan(100);
  }, 60_000);

  it('a body over the limit gets 413 with the JSON error, 50 times of 50, through HAProxy and direct', async () => {
    for (const base of [entry, node('web1').url]) {
      const outcomes: string[] = [];
      for (let i = 0; i < 50; i++) {
        const r = await postOversized(base);
        if ('error' in r) outcomes.push(`reset: ${r.error}`);
        else if (r.status !== 413 || (JSON.parse(r.body) as { error?: { code?: string } }).error?.code !== 'PAYLOAD_TOO_LARGE') outcomes.push(`${r.status} ${r.body.slice(0, 100)}`);
      }
      expect(outcomes, base).toEqual([]);
    }
  }, 120_000);

  it('the balancer sets X-Forwarded-* itself: a client cannot choose the host, the scheme or its rate-limit bucket', async () => {
    const spoof = { 'x-forwarded-host': 'evil.example', forwarded: 'for=203.0.113.9;host=evil.example;proto=https', 'x-forwarded-proto': 'https' };
    const link = await user.post('/api/links', { url: 'https://example.com/forwarded' }, spoof);
    expect(link.status, JSON.stringify(link.json)).toBe(201);
    expect(link.json.shortUrl).toBe(`${entry}/${link.json.code}`);
    expect(link.headers.get('strict-transport-security')).toBeNull();
    // Login attempts from one client, each claiming another address: the limit (30 a minute
    // per address) still applies, since HAProxy replaces X-Forwarded-For with the real one.
    const anon = new Client(entry);
    const statuses: number[] = [];
    for (let i = 0; i < 35; i++) {
      const r = await anon.post('/api/login', { email: uniqueEmail(), password: 'wrong password here' }, { 'x-forwarded-for': `203.0.113.${i + 1}` });
      statuses.push(r.status);
    }
    expect(statuses).toContain(429);
  }, 60_000);
});
