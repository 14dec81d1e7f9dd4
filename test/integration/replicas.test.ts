// Rung 4's guarantees on real components: `ladder up --rung 7 --web 2 --replicas 2
// --replica-delay 1000 --no-cache` (a primary and two streaming replicas that apply every commit a
// second late, two web servers behind HAProxy, sessions in Redis). Rung 7 rather than 4
// because it is the harder case for the consistency token: with no stickiness, each request
// may land on either web server and either replica, so only the token carries what a caller
// has seen. Checked through the balancer: read-your-writes, monotonic reads in a recorded
// history, others' staleness within the bound, and replica failures with 0 failed requests.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/kit/process/pid.ts';
import { ensureDir } from '../../src/launcher/state-dir.ts';
import { Client, signedUpClient } from '../support/app.ts';
import { LADDER_BIN, nodePids } from '../support/process.ts';
import { sumSeries } from '../../src/lab/measure/prom-text.ts';

const stateDir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'rep-'));
chmodSync(stateDir, 0o755);

const DELAY_MS = 1000;
/** The staleness bound a reader without a token gets: DATABASE_REPLICA_MAX_LAG_MS (default). */
const MAX_LAG_MS = 5000;
/**
 * Create-then-open rounds (three requests each through HAProxy). The issue asks for 1,000:
 * `LADDER_RYW_ROUNDS=1000 npx vitest run test/integration/replicas.test.ts` runs them
 * (about 40 s here); the suite runs 200 to stay within its time.
 */
const ROUNDS = Number(process.env.LADDER_RYW_ROUNDS ?? 200);

interface Node {
  name: string;
  role: string;
  pid: number | null;
  port: number;
  url: string;
  state: string;
  restarts: number;
}

function ladder(...args: string[]) {
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], {
    encoding: 'utf8',
    // The history and load below create far more links than the default per-IP limit allows.
    env: {
      ...process.env,
      LADDER_STATE_DIR: stateDir,
      LOG_LEVEL: 'info',
      LADDER_RATE_LIMITS: 'createLink=1000000/60',
    },
    timeout: 180_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const nodes = (): Node[] => (JSON.parse(ladder('status', '--json').out) as { nodes: Node[] }).nodes;
const node = (name: string) => nodes().find((n) => n.name === name)!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await ok())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** The web servers' /metrics texts. */
async function scrape(): Promise<string[]> {
  return Promise.all(
    nodes()
      .filter((n) => n.role === 'web')
      .map(async (w) => (await fetch(`${w.url}/metrics`)).text()),
  );
}

const sum = sumSeries;

const metric = async (name: string, labels = '') => sum(await scrape(), name, labels);

async function dbCounts() {
  const t = await scrape();
  return {
    primary: sum(t, 'ladder_db_queries_total', 'role="primary"'),
    replica: sum(t, 'ladder_db_queries_total', 'role="replica"'),
    token: sum(t, 'ladder_db_fallbacks_total', 'reason="token"'),
    switch: sum(t, 'ladder_db_fallbacks_total', 'reason="switch"'),
    noReplica: sum(t, 'ladder_db_fallbacks_total', 'reason="no_replica"'),
    error: sum(t, 'ladder_db_fallbacks_total', 'reason="error"'),
    readsPrimary: sum(t, 'ladder_db_reads_total', 'role="primary"'),
    readsReplica: sum(t, 'ladder_db_reads_total', 'role="replica"'),
  };
}

/** Runs SQL on one database node of the topology, as the superuser. */
async function onNode<R>(name: string, fn: (c: pg.Client) => Promise<R>): Promise<R> {
  const password = readFileSync(path.join(stateDir, 'up', 'postgres', 'pg-password'), 'utf8').trim();
  const c = new pg.Client({
    host: '127.0.0.1',
    port: node(name).port,
    user: 'postgres',
    password,
    database: 'links',
  });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Changes one replica's apply delay at runtime (the launcher keeps it in postgresql.auto.conf). */
async function setDelay(name: string, ms: number): Promise<void> {
  await onNode(name, async (c) => {
    await c.query(`alter system set recovery_min_apply_delay = '${ms}ms'`);
    await c.query('select pg_reload_conf()');
  });
}

type Counts = Awaited<ReturnType<typeof dbCounts>>;

function diff(a: Counts, b: Counts): Counts {
  return Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v - a[k as keyof Counts]])) as Counts;
}

/** A request by someone with no cookies at all: no token, no pin. */
async function anonymousOpen(code: string): Promise<{ status: number; location: string | null }> {
  const res = await fetch(`${entry}/${code}`, { redirect: 'manual' });
  await res.arrayBuffer();
  return { status: res.status, location: res.headers.get('location') };
}

const version = (url: string | null | undefined) => Number(/\/v(\d+)$/.exec(url ?? '')?.[1] ?? -1);

let entry: string;

beforeAll(async () => {
  const up = ladder(
    'up',
    '--rung',
    '7',
    '--web',
    '2',
    '--replicas',
    '2',
    '--replica-delay',
    String(DELAY_MS),
    // Without the cache tier (rung 5), so that redirects are database reads: this file
    // checks the router; the cache's own guarantees over replicas are in cache.test.ts.
    '--no-cache',
    // Monitoring has its own tests (monitor.test.ts); its scrapes would only load the machine.
    '--no-monitor',
  );
  if (up.code !== 0) throw new Error(`ladder up failed:\n${up.err}`);
  entry = up.out.trim().split('\n').pop()!;
}, 240_000);

afterAll(async () => {
  for (const n of ['replica1', 'replica2']) ladder('chaos', 'cont', n); // never leave a stopped server behind
  const pids = nodePids(nodes);
  const down = ladder('down');
  expect(down.code).toBe(0);
  for (const pid of pids) expect(isAlive(pid)).toBe(false);
  rmSync(stateDir, { recursive: true, force: true });
}, 120_000);

describe('ladder up --rung 7 --replicas 2 --replica-delay 1000', () => {
  it('lists the primary and two replicas as nodes, streaming, with replicas in rotation on every web server', async () => {
    const ns = nodes();
    expect(ns.map((n) => `${n.name}:${n.role}`)).toEqual(
      expect.arrayContaining(['postgres:postgres', 'replica1:postgres-replica', 'replica2:postgres-replica']),
    );
    for (const n of ns) expect(n.state).toBe('ready');
    const rows = await onNode(
      'postgres',
      async (c) => (await c.query('select application_name, state from pg_stat_replication order by 1')).rows,
    );
    expect(rows).toEqual([
      { application_name: 'replica1', state: 'streaming' },
      { application_name: 'replica2', state: 'streaming' },
    ]);
    for (const r of ['replica1', 'replica2']) {
      expect(await onNode(r, async (c) => (await c.query('show recovery_min_apply_delay')).rows[0])).toEqual({
        recovery_min_apply_delay: '1s',
      });
    }
    expect(await metric('ladder_replica_up')).toBe(4); // 2 replicas × 2 web servers
  });

  it('an anonymous redirect answered before the framework is the route\'s: a replica read, the same headers, the pin cookie', async () => {
    const user = await signedUpClient(entry);
    const code = (await user.post('/api/links', { url: 'https://example.com/fast-pin' })).json.code as string;
    await new Promise((r) => setTimeout(r, DELAY_MS + 500)); // on both replicas
    const before = await dbCounts();
    const shape = async (path: string) => {
      const res = await fetch(`${entry}${path}`, { redirect: 'manual' });
      await res.arrayBuffer();
      expect([res.status, res.headers.get('location')]).toEqual([302, 'https://example.com/fast-pin']);
      const h = Object.fromEntries(res.headers);
      // The pin names the replica this read rotated to; the rest of the cookie is the same.
      const cookie = String(h['set-cookie']);
      expect(cookie).toMatch(/^ladder_lsn=[^;]+; /);
      h['set-cookie'] = cookie.replace(/^ladder_lsn=[^;]+/, 'ladder_lsn=…');
      for (const k of ['date', 'x-request-id', 'x-varnish', 'age']) delete h[k]; // the edge's own, per response
      return h;
    };
    // A bare code takes the fast path, a query string the route.
    const fast = await shape(`/${code}`);
    expect(fast).toEqual(await shape(`/${code}?from=route`));
    const reads = diff(before, await dbCounts());
    expect(reads.readsReplica).toBeGreaterThanOrEqual(2);
    expect(reads.readsPrimary).toBe(0);
  });

  it(`create then open at once, ${ROUNDS} times through the balancer: 0 misses; someone else sees it within the lag bound`, async () => {
    const user = await signedUpClient(entry);
    const before = await dbCounts();
    const misses: string[] = [];
    let staleForOthers = 0;
    const t0 = Date.now();
    for (let i = 0; i < ROUNDS; i++) {
      const created = await user.post('/api/links', { url: `https://example.com/ryw/${i}` });
      expect(created.status).toBe(201);
      const code = created.json.code as string;
      const open = await user.get(`/${code}`);
      if (open.status !== 302 || open.headers.get('location') !== `https://example.com/ryw/${i}`)
        misses.push(`GET /${code}: ${open.status}`);
      const api = await user.get(`/api/links/${code}`);
      if (api.status !== 200 || api.json.url !== `https://example.com/ryw/${i}`)
        misses.push(`GET /api/links/${code}: ${api.status}`);
      // Every 50th round, a reader with no token: it may be stale, never past the bound.
      if (i % 50 === 0) {
        const start = Date.now();
        let seen = await anonymousOpen(code);
        if (seen.status === 404) staleForOthers++;
        while (seen.status === 404 && Date.now() - start < MAX_LAG_MS + 1000)
          seen = await anonymousOpen(code);
        expect(seen.status).toBe(302);
        expect(Date.now() - start).toBeLessThanOrEqual(MAX_LAG_MS);
      }
    }
    const elapsed = Date.now() - t0;
    const reads = diff(before, await dbCounts());
    // ladder_db_reads_total counts each plain read once, by who served it: the primary serves
    // a read only as a fallback (the replicas were a second behind these fresh tokens), and
    // neither role counts more reads than queries it was sent. (Replica reads are counted in
    // the bench smoke test's `replicas` run, at rung 4 without the cache tier.)
    expect(reads.readsPrimary).toBeGreaterThan(0);
    expect(reads.readsPrimary).toBe(reads.token + reads.switch + reads.noReplica + reads.error);
    expect(reads.readsPrimary).toBeLessThanOrEqual(reads.primary);
    expect(reads.readsReplica).toBeLessThanOrEqual(reads.replica);
    expect(misses).toEqual([]);
    // The lag is real: readers without a token did see the link missing at first.
    expect(staleForOthers).toBeGreaterThan(0);
    const d = diff(before, await dbCounts());
    console.log(
      `read-your-writes: ${ROUNDS} rounds in ${elapsed} ms, 0 misses; queries and fallbacks meanwhile:`,
      d,
    );
  }, 120_000);

  it('edit then read at once: the new URL every time, on the redirect and the API', async () => {
    const user = await signedUpClient(entry);
    const code = (await user.post('/api/links', { url: 'https://example.com/edit/v0' })).json.code as string;
    const misses: string[] = [];
    let staleForOthers = 0;
    for (let v = 1; v <= 200; v++) {
      expect((await user.patch(`/api/links/${code}`, { url: `https://example.com/edit/v${v}` })).status).toBe(
        200,
      );
      const open = await user.get(`/${code}`);
      if (version(open.headers.get('location')) !== v)
        misses.push(`redirect v${version(open.headers.get('location'))} after v${v}`);
      const api = await user.get(`/api/links/${code}`);
      if (version(api.json?.url) !== v) misses.push(`api v${version(api.json?.url)} after v${v}`);
      if (v % 50 === 0 && version((await anonymousOpen(code)).location) < v) staleForOthers++;
    }
    expect(misses).toEqual([]);
    expect(staleForOthers).toBeGreaterThan(0);
  }, 60_000);

  it('many sessions writing and reading at once on diverging replicas: nobody misses a write or goes back in time', async () => {
    interface Event {
      op: 'write' | 'read';
      link: string;
      v: number;
    }
    // Replicas that disagree: replica2 applies commits 3 s late, replica1 1 s late (both
    // within the 5 s bound, so both stay in rotation). A reader moving carelessly between
    // them would see versions go backwards; the control reader below shows that it does.
    await setDelay('replica2', 3000);
    const writers = await Promise.all(Array.from({ length: 8 }, () => signedUpClient(entry)));
    const links = await Promise.all(
      writers.map(
        async (w) => (await w.post('/api/links', { url: 'https://example.com/h/v0' })).json.code as string,
      ),
    );
    // Observers never write and keep only the token cookie: monotonic reads is what they get.
    const observers = Array.from({ length: 8 }, () => new Client(entry));
    // The control keeps no cookie at all: no token, no guarantee beyond the staleness bound.
    const control: Event[] = [];
    const histories = new Map<Client, Event[]>();
    const failures: string[] = [];
    let running = true;
    const writerLoops = writers.map(async (w, i) => {
      const h: Event[] = [];
      histories.set(w, h);
      const code = links[i]!;
      let v = 0;
      while (running) {
        try {
          if (Math.random() < 0.4) {
            v++;
            const res = await w.patch(`/api/links/${code}`, { url: `https://example.com/h/v${v}` });
            if (res.status !== 200) failures.push(`patch ${res.status}`);
            h.push({ op: 'write', link: code, v });
          }
          // A read-read pair: the redirect, then the API.
          const open = await w.get(`/${code}`);
          if (open.status !== 302) failures.push(`open ${open.status}`);
          h.push({ op: 'read', link: code, v: version(open.headers.get('location')) });
          const api = await w.get(`/api/links/${code}`);
          if (api.status !== 200) failures.push(`api ${api.status}`);
          h.push({ op: 'read', link: code, v: version(api.json?.url) });
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    });
    const read = async (
      history: Event[],
      get: (code: string) => Promise<{ status: number; location: string | null }>,
    ) => {
      while (running) {
        const code = links[Math.floor(Math.random() * links.length)]!;
        try {
          // A link not on the reader's replica yet is a 404 (v = -1): stale, which is allowed,
          // but once seen it must never disappear again.
          const r = await get(code);
          if (r.status !== 302 && r.status !== 404) failures.push(`reader ${r.status}`);
          history.push({ op: 'read', link: code, v: version(r.location) });
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const observerLoops = observers.map((o) => {
      const h: Event[] = [];
      histories.set(o, h);
      return read(h, async (code) => {
        const r = await o.get(`/${code}`);
        return { status: r.status, location: r.headers.get('location') };
      });
    });
    const controlLoops = [read(control, anonymousOpen), read(control, anonymousOpen)];
    const before = await dbCounts();
    try {
      // Then pause each replica in turn: readers pinned to it must move, through the primary.
      await sleep(4000);
      for (const name of ['replica1', 'replica2']) {
        expect(ladder('chaos', 'stop', name).code).toBe(0);
        await sleep(2500);
        expect(ladder('chaos', 'cont', name).code).toBe(0);
        await sleep(1500);
      }
    } finally {
      running = false;
      await Promise.all([...writerLoops, ...observerLoops, ...controlLoops]);
      await setDelay('replica2', DELAY_MS);
    }
    const d = diff(before, await dbCounts());

    const regressions = (h: Event[]) => {
      const out: string[] = [];
      const floor = new Map<string, number>(); // per link: the newest version written or seen so far
      for (const e of h) {
        const least = floor.get(e.link) ?? -1;
        if (e.op === 'read' && e.v < least) out.push(`read v${e.v} of ${e.link} after v${least}`);
        floor.set(e.link, Math.max(least, e.v));
      }
      return out;
    };
    expect(failures).toEqual([]);
    const violations: string[] = [];
    let events = 0;
    for (const [client, h] of histories) {
      events += h.length;
      const who = writers.includes(client)
        ? `writer ${writers.indexOf(client)}`
        : `observer ${observers.indexOf(client)}`;
      for (const v of regressions(h)) violations.push(`${who} ${v}`);
    }
    expect(violations).toEqual([]);
    expect(events).toBeGreaterThan(500);
    // The check has teeth: a reader without the token does see time go backwards here.
    const controlRegressions = regressions(control).length;
    expect(controlRegressions).toBeGreaterThan(0);
    // The pauses really moved pinned readers (through the primary).
    expect(d.switch + d.error).toBeGreaterThan(0);
    console.log(
      `history: ${events} events by 8 writers and 8 observers, 0 violations; ` +
        `control without a token: ${controlRegressions} regressions in ${control.length} reads; queries and fallbacks meanwhile:`,
      d,
    );
  }, 60_000);

  it('under load: kill -9 of a replica, then every replica stopped: 0 failed requests', async () => {
    const user = await signedUpClient(entry);
    const code = (await user.post('/api/links', { url: 'https://example.com/load' })).json.code as string;
    await sleep(DELAY_MS + 500);
    const failed: string[] = [];
    let ok = 0;
    let running = true;
    const loops = [
      ...Array.from({ length: 6 }, async () => {
        while (running) {
          try {
            const r = await anonymousOpen(code);
            if (r.status === 302) ok++;
            else failed.push(`redirect ${r.status}`);
          } catch (err) {
            failed.push(`redirect ${(err as Error).message}`);
          }
        }
      }),
      (async () => {
        // A logged-in user creating and opening links meanwhile.
        let i = 0;
        while (running) {
          try {
            const c = await user.post('/api/links', { url: `https://example.com/load/${i}` });
            const r = await user.get(`/api/links/${c.json.code as string}`);
            if (c.status === 201 && r.status === 200 && r.json.url === `https://example.com/load/${i}`) ok++;
            else failed.push(`create/read ${c.status} ${r.status}`);
          } catch (err) {
            failed.push(`create/read ${(err as Error).message}`);
          }
          i++;
        }
      })(),
    ];

    const readsOn = (name: string) =>
      onNode(name, async (c) =>
        Number(
          (await c.query("select xact_commit from pg_stat_database where datname = 'links'")).rows[0]
            .xact_commit,
        ),
      );

    try {
      await sleep(1000);
      const victim = node('replica1');
      expect(ladder('chaos', 'kill', 'replica1').code).toBe(0);
      await waitFor('replica1 restarted', () => {
        const n = node('replica1');
        return n.state === 'ready' && n.pid !== null && n.pid !== victim.pid;
      });
      await waitFor(
        'replica1 back in rotation on both web servers',
        async () => (await metric('ladder_replica_up', 'replica="replica1"')) === 2,
      );
      const served = await readsOn('replica1');
      await sleep(1000);
      expect(await readsOn('replica1')).toBeGreaterThan(served + 50); // it takes reads again
      expect(node('replica1').restarts).toBeGreaterThanOrEqual(1);

      const warnings = () =>
        ['web1', 'web2'].map(
          (w) =>
            readFileSync(path.join(stateDir, 'up', 'logs', `${w}.log`), 'utf8').split(
              'every replica is out of rotation',
            ).length - 1,
        );
      const warnedBefore = warnings();
      const before = await dbCounts();
      expect(ladder('chaos', 'stop', 'replica1').code).toBe(0);
      expect(ladder('chaos', 'stop', 'replica2').code).toBe(0);
      await sleep(4000);
      const during = diff(before, await dbCounts());
      const okBefore = ok;
      await sleep(1000);
      expect(ok).toBeGreaterThan(okBefore + 20); // still serving, from the primary
      expect(await metric('ladder_replica_up')).toBe(0);
      expect(during.noReplica).toBeGreaterThan(50);
      // Logged once per web server, not once per read.
      expect(warnings().map((n, i) => n - warnedBefore[i]!)).toEqual([1, 1]);
      console.log('every replica stopped, 4 s: queries and fallbacks', during);
    } finally {
      ladder('chaos', 'cont', 'replica1');
      ladder('chaos', 'cont', 'replica2');
    }
    await waitFor('replicas back in rotation', async () => (await metric('ladder_replica_up')) === 4);
    running = false;
    await Promise.all(loops);
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(200);
  }, 90_000);
});
