// Rung 5's cache tier on real components: `ladder up --rung 5 --web 3 --replica-delay 500`
// (three web servers, each with its L1, a cache Redis, a primary and two replicas that
// apply every commit half a second late, HAProxy in front). What must hold: a cold key
// under a stampede is loaded once; an edit or a delete reaches every server's L1 within
// the bound and never flips back to the old URL; random unknown codes do not reach the
// database; the cache Redis stopped for 10 s under load fails no redirect.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/kit/process/pid.ts';
import { ensureDir } from '../../src/launcher/state-dir.ts';
import { signedUpClient, type Client } from '../support/app.ts';
import { LADDER_BIN } from '../support/process.ts';
import { sumSeries } from '../../src/lab/measure/prom-text.ts';

const stateDir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'cache-'));
chmodSync(stateDir, 0o755);

/** The bound the issue sets for every server to drop an edited key. */
const BOUND_MS = 100;

interface Node {
  name: string;
  role: string;
  pid: number | null;
  url: string;
}

function ladder(...args: string[]) {
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LADDER_STATE_DIR: stateDir, LOG_LEVEL: 'info', LADDER_RATE_LIMITS: 'createLink=1000000/60' },
    timeout: 180_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Changes one replica's apply delay at runtime (the launcher keeps it in postgresql.auto.conf). */
async function setDelay(name: string, ms: number): Promise<void> {
  const password = readFileSync(path.join(stateDir, 'up', 'postgres', 'pg-password'), 'utf8').trim();
  const port = Number(new URL(nodes().find((n) => n.name === name)!.url).port);
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'links' });
  await c.connect();
  try {
    await c.query(`alter system set recovery_min_apply_delay = '${ms}ms'`);
    await c.query('select pg_reload_conf()');
  } finally {
    await c.end();
  }
}

const nodes = (): Node[] => (JSON.parse(ladder('status', '--json').out) as { nodes: Node[] }).nodes;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let entry: string;
let webs: string[];
let owner: Client;

async function scrape(): Promise<string[]> {
  return Promise.all(webs.map(async (w) => (await fetch(`${w}/metrics`)).text()));
}

const sum = sumSeries;

async function counts() {
  const t = await scrape();
  return {
    loads: sum(t, 'ladder_cache_loads_total'),
    redisMiss: sum(t, 'ladder_cache_requests_total', 'tier="redis",result="miss"'),
    l1Hit: sum(t, 'ladder_cache_requests_total', 'tier="l1",result="hit"'),
    dbQueries: sum(t, 'ladder_db_queries_total'),
    dbReads: sum(t, 'ladder_db_reads_total'),
    bypasses: sum(t, 'ladder_cache_bypasses_total'),
  };
}

/** An anonymous redirect (no cookies) straight at one web server. */
async function open(base: string, code: string): Promise<{ status: number; location: string | null }> {
  const res = await fetch(`${base}/${code}`, { redirect: 'manual' });
  await res.arrayBuffer();
  return { status: res.status, location: res.headers.get('location') };
}

async function createLink(url: string): Promise<string> {
  const res = await owner.post('/api/links', { url });
  expect(res.status).toBe(201);
  return (res.json as { code: string }).code;
}

/** Opens the code on every server twice, so that each has it in L1. */
async function warm(code: string, url: string): Promise<void> {
  for (let i = 0; i < 2; i++) {
    for (const w of webs) expect(await open(w, code)).toEqual({ status: 302, location: url });
  }
}

beforeAll(async () => {
  const up = ladder('up', '--rung', '5', '--web', '3', '--replica-delay', '500', '--no-monitor'); // monitoring has its own tests; its scrapes would only load the machine
  if (up.code !== 0) throw new Error(`ladder up failed:\n${up.err}`);
  entry = up.out.trim().split('\n').pop()!;
  webs = nodes()
    .filter((n) => n.role === 'web')
    .map((n) => n.url.replace(/\/$/, ''));
  owner = await signedUpClient(entry);
}, 240_000);

afterAll(async () => {
  ladder('chaos', 'cont', 'cache'); // never leave a stopped server behind
  let pids: number[] = [];
  try {
    pids = nodes()
      .map((n) => n.pid)
      .filter((p): p is number => p !== null);
  } catch {
    // no topology
  }
  const down = ladder('down');
  expect(down.code).toBe(0);
  for (const pid of pids) expect(isAlive(pid)).toBe(false);
  rmSync(stateDir, { recursive: true, force: true });
}, 120_000);

describe('ladder up --rung 5: the cache tier', () => {
  it('runs a cache Redis node beside the session-less web tier', () => {
    const ns = nodes();
    expect(ns.map((n) => `${n.name}:${n.role}`)).toEqual(expect.arrayContaining(['cache:redis', 'haproxy:haproxy', 'replica1:postgres-replica']));
    expect(webs).toHaveLength(3);
  });

  it('500 concurrent requests for one cold link over 3 servers load it from the database once', async () => {
    const url = 'https://example.com/stampede';
    const code = await createLink(url);
    await sleep(700); // the replicas have the row: a load need not wait for them
    const before = await counts();
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => open(webs[i % 3]!, code)));
    const after = await counts();
    const seen = `before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`;
    for (const r of results) expect(r).toEqual({ status: 302, location: url });
    const loads = after.loads - before.loads;
    expect(loads, `database loads; ${seen}`).toBeGreaterThanOrEqual(1);
    expect(loads, `database loads; ${seen}`).toBeLessThanOrEqual(2);
    expect(after.redisMiss - before.redisMiss, `Redis misses; ${seen}`).toBeLessThanOrEqual(2);
    // And as the database saw it: reads of any kind (the click counter's writes are not reads;
    // the codes filter was built when the servers started, not on this link's first lookup).
    expect(after.dbReads - before.dbReads, `database reads; ${seen}`).toBeGreaterThanOrEqual(1);
    expect(after.dbReads - before.dbReads, `database reads; ${seen}`).toBeLessThanOrEqual(2);
  });

  it('a redirect from L1 (the fast path) carries the same headers as one from the route', async () => {
    const url = 'https://example.com/same-headers';
    const code = await createLink(url);
    await sleep(700);
    const headersOf = async () => {
      const res = await fetch(`${webs[0]}/${code}`, { redirect: 'manual' });
      await res.arrayBuffer();
      expect(res.status).toBe(302);
      const h = Object.fromEntries(res.headers);
      expect(h['x-request-id']).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
      delete h.date;
      delete h['x-request-id'];
      return h;
    };
    const t0 = await counts();
    const miss = await headersOf(); // a miss: the route loads it
    const hit = await headersOf(); // from L1
    expect((await counts()).l1Hit - t0.l1Hit).toBeGreaterThanOrEqual(1);
    expect(hit).toEqual(miss);
    expect(hit).toMatchObject({ location: url, 'cache-control': 'private, no-store', 'x-frame-options': 'DENY', 'content-length': '0' });
    // The headers the fast path reads from the raw list: a caller's request id comes back,
    // and a request a TLS-terminating proxy forwarded takes the route, which adds HSTS.
    const echoed = await fetch(`${webs[0]}/${code}`, { redirect: 'manual', headers: { 'x-request-id': 'trace-42' } });
    expect([echoed.status, echoed.headers.get('x-request-id'), echoed.headers.get('strict-transport-security')]).toEqual([302, 'trace-42', null]);
    const proxied = await fetch(`${webs[0]}/${code}`, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https' } });
    expect([proxied.status, proxied.headers.get('location')]).toEqual([302, url]);
    expect(proxied.headers.get('strict-transport-security')).toMatch(/^max-age=/);
    // And it is counted like any request of the route.
    const text = (await scrape())[0]!;
    expect(sum([text], 'http_request_duration_seconds_count', 'route="/:code",status_code="302"')).toBeGreaterThanOrEqual(2);
  });

  it('an edit reaches the writer at once and every server within the bound; a delete too', async () => {
    const code = await createLink('https://example.com/v1');
    await sleep(700);
    await warm(code, 'https://example.com/v1');
    const patched = await owner.patch(`/api/links/${code}`, { url: 'https://example.com/v2' });
    expect(patched.status).toBe(200);
    const editedAt = performance.now();
    // The writer's own next redirect, through the balancer, with its cookies; and, at the
    // same time, every server, anonymously: the time until each serves the new URL.
    const ownRead = owner.get(`/${code}`);
    const reached = await Promise.all(
      webs.map(async (w) => {
        for (;;) {
          const r = await open(w, code);
          if (r.location === 'https://example.com/v2') return performance.now() - editedAt;
          expect(r.location).toBe('https://example.com/v1');
          if (performance.now() - editedAt > 5000) return Infinity;
        }
      }),
    );
    const own = await ownRead;
    expect(own.status).toBe(302);
    expect(own.headers.get('location')).toBe('https://example.com/v2');
    for (const ms of reached) expect(ms).toBeLessThan(BOUND_MS);
    // The propagation delay is exported, and within the bound.
    const t = await scrape();
    const count = sum(t, 'ladder_cache_invalidation_delay_seconds_count');
    expect(count).toBeGreaterThan(0);
    expect(sum(t, 'ladder_cache_invalidation_delay_seconds_bucket', 'le="0.1"')).toBe(count);
    // The writer waited until every server had dropped its copy, and none failed to answer.
    expect(sum(t, 'ladder_cache_invalidation_ack_seconds_count')).toBeGreaterThan(0);
    expect(sum(t, 'ladder_cache_invalidation_ack_timeouts_total')).toBe(0);

    await warm(code, 'https://example.com/v2');
    const deleted = await owner.del(`/api/links/${code}`);
    expect(deleted.status).toBe(204);
    const deletedAt = performance.now();
    expect((await owner.get(`/${code}`)).status).toBe(404);
    const gone = await Promise.all(
      webs.map(async (w) => {
        for (;;) {
          if ((await open(w, code)).status === 404) return performance.now() - deletedAt;
          if (performance.now() - deletedAt > 5000) return Infinity;
        }
      }),
    );
    for (const ms of gone) expect(ms).toBeLessThan(BOUND_MS);
  });

  it('with replicas 500 ms behind, an edited link never flips back once the new URL was served', async () => {
    const code = await createLink('https://example.com/r0');
    await sleep(700);
    await warm(code, 'https://example.com/r0');
    for (let v = 1; v <= 6; v++) {
      // From the fourth edit on, replica2 applies at once and replica1 still 500 ms late: a
      // load that went to any replica would now see new and old in turns.
      if (v === 4) await setDelay('replica2', 0);
      const res = await owner.patch(`/api/links/${code}`, { url: `https://example.com/r${v}` });
      expect(res.status).toBe(200);
      // Readers without cookies on every server, for longer than the replicas lag.
      let newSeen = false;
      const seen: string[] = [];
      const end = performance.now() + 1200;
      while (performance.now() < end) {
        const rs = await Promise.all(webs.map((w) => open(w, code)));
        for (const r of rs) {
          seen.push(r.location ?? String(r.status));
          if (r.location === `https://example.com/r${v}`) newSeen = true;
          else if (newSeen) throw new Error(`flipped back to ${r.location} after r${v} was served: ${seen.join(' ')}`);
          else expect(r.location).toBe(`https://example.com/r${v - 1}`);
        }
      }
      expect(newSeen).toBe(true);
    }
  });

  it('10,000 requests for random unknown codes cause at most a few hundred database queries', async () => {
    // The codes filter is built on first use; give it a moment.
    for (const w of webs) expect((await open(w, 'NoSuchCd')).status).toBe(404);
    await sleep(1000);
    const before = await counts();
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    let next = 0;
    const statuses = new Map<number, number>();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < 10_000) {
          const i = next++;
          let code = '';
          for (let k = 0; k < 8; k++) code += alphabet[Math.floor(Math.random() * alphabet.length)];
          const r = await open(webs[i % 3]!, code);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        }
      }),
    );
    const after = await counts();
    expect(Object.fromEntries(statuses)).toEqual({ 404: 10_000 });
    expect(after.dbQueries - before.dbQueries, 'database queries').toBeLessThanOrEqual(300);
  }, 60_000);

  it('the cache Redis stopped for 10 s under load: 0 failed redirects; an edit made meanwhile is served after', async () => {
    const links = await Promise.all(Array.from({ length: 20 }, (_, i) => createLink(`https://example.com/load${i}`)));
    await sleep(700);
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const load = Array.from({ length: 8 }, async (_, worker) => {
      let i = worker;
      while (!stop) {
        const k = i++ % links.length;
        const base = i % 4 === 0 ? entry.replace(/\/$/, '') : webs[i % 3]!;
        try {
          const r = await open(base, links[k]!);
          if (r.status === 302 && r.location?.startsWith('https://example.com/load')) ok++;
          else failures.push(`${r.status} ${r.location}`);
        } catch (err) {
          failures.push(String(err));
        }
      }
    });
    await sleep(1000);
    expect(ladder('chaos', 'stop', 'cache').code).toBe(0);
    await sleep(3000);
    // A write while the cache is unreachable still works, and is not lost to the cache.
    const res = await owner.patch(`/api/links/${links[0]}`, { url: 'https://example.com/load0-edited' });
    expect(res.status).toBe(200);
    await sleep(7000);
    expect(ladder('chaos', 'cont', 'cache').code).toBe(0);
    // Back by itself: every server's cache connection up again.
    const deadline = performance.now() + 10_000;
    while (sum(await scrape(), 'ladder_redis_up', 'role="cache"') < 3) {
      if (performance.now() > deadline) throw new Error('the web servers did not reconnect to the cache Redis');
      await sleep(200);
    }
    await sleep(1000);
    stop = true;
    await Promise.all(load);
    expect(failures.slice(0, 5)).toEqual([]);
    expect(ok).toBeGreaterThan(1000);
    // The edit made during the outage: every server serves it (no old value came back).
    for (const w of webs) {
      for (let i = 0; i < 3; i++) expect((await open(w, links[0]!)).location).toBe('https://example.com/load0-edited');
    }
    // And the cache works again: repeated reads are L1 hits.
    const before = await counts();
    for (const w of webs) for (let i = 0; i < 5; i++) await open(w, links[1]!);
    expect((await counts()).l1Hit - before.l1Hit).toBeGreaterThan(0);
  }, 60_000);
});
