// Rung 9's guarantees on real components: `ladder up --rung 9 --web 2 --workers 2 --replicas 0
// --no-monitor` (the embedded Postgres, two web servers behind HAProxy and the edge, the broker
// on its own Redis, the relay and two workers). Checked through the observable contracts (the
// entry, `ladder chaos`, `ladder queue`, the stats API, the workers' /metrics) and the database:
//  - redirects under chaos (a worker and a web server killed, the relay killed, the broker
//    frozen): exactly one click per 302, none lost, none counted twice, no dead letters;
//  - a poison event reaches the dead letters after exactly maxReceives receives, other work
//    goes on, and once fixed a re-drive applies it once;
//  - every outbox event of a committed write is published and applied once; an aborted
//    transaction publishes nothing.
// The full run is 100,000 redirects with the broker stopped 10 s:
// `LADDER_QUEUE_CHAOS_S=40 LADDER_QUEUE_STOP_S=10 npx vitest run test/integration/queue.test.ts`.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLICK_KEY_RETENTION_S, pruneClickKeys } from '../../src/app/domain/links-repo.ts';
import { PgDatabase } from '../../src/kit/db/pg-database.ts';
import { createMetrics } from '../../src/kit/metrics/metrics.ts';
import { isAlive } from '../../src/kit/process/pid.ts';
import { BROKER_DEFAULTS, BrokerQueue, QUEUES } from '../../src/kit/queue/broker.ts';
import { sumSeries } from '../../src/lab/measure/prom-text.ts';
import { ensureDir } from '../../src/launcher/state-dir.ts';
import { signedUpClient, type Client } from '../support/app.ts';
import { LADDER_BIN, nodePids } from '../support/process.ts';

const stateDir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'queue-'));
chmodSync(stateDir, 0o755);
const poisonFile = path.join(stateDir, 'poison');

/** Seconds of load under chaos, and how long the broker stays frozen in it. */
const CHAOS_S = Number(process.env.LADDER_QUEUE_CHAOS_S ?? 12);
const STOP_S = Number(process.env.LADDER_QUEUE_STOP_S ?? 4);

interface Node {
  name: string;
  role: string;
  pid: number | null;
  port: number;
  url: string;
  state: string;
}

const env = { ...process.env, LADDER_STATE_DIR: stateDir, LOG_LEVEL: 'warn', LADDER_POISON_FILE: poisonFile, LADDER_RATE_LIMITS: 'createLink=1000000/60' };

function ladder(...args: string[]) {
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], { encoding: 'utf8', env, timeout: 180_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** `ladder` without blocking this process (the load generator runs meanwhile). */
function ladderAsync(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [LADDER_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

const nodes = (): Node[] => (JSON.parse(ladder('status', '--json').out) as { nodes: Node[] }).nodes;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await ok())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

async function sql<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: nodes().find((n) => n.name === 'postgres')!.port,
    user: 'postgres',
    password: readFileSync(path.join(stateDir, 'up', 'postgres', 'pg-password'), 'utf8').trim(),
    database: 'links',
  });
  await c.connect();
  try {
    return (await c.query<R>(text, params)).rows;
  } finally {
    await c.end();
  }
}

interface Stats {
  queues: { name: string; depth: number; oldestAgeSeconds: number; deadLetters: number }[];
}
const queueStats = (): Stats => JSON.parse(ladder('queue', 'stats', '--json').out) as Stats;
const dead = (queue: string) => queueStats().queues.find((q) => q.name === queue)!.deadLetters;

async function workerMetric(name: string, labels: string): Promise<number> {
  const texts = await Promise.all(
    nodes()
      .filter((n) => n.role === 'worker')
      .map(async (w) => (await fetch(`${w.url}/metrics`)).text()),
  );
  return sumSeries(texts, name, labels);
}

let entry: string;
let user: Client;
let userId: number;

beforeAll(async () => {
  const up = ladder('up', '--rung', '9', '--web', '2', '--workers', '2', '--replicas', '0', '--no-monitor');
  if (up.code !== 0) throw new Error(`ladder up failed:\n${up.err}`);
  entry = up.out.trim().split('\n').pop()!;
  user = await signedUpClient(entry);
  userId = Number((await user.get('/api/me')).json.user.id);
}, 240_000);

afterAll(async () => {
  ladder('chaos', 'cont', 'queue'); // never leave a frozen broker behind
  const pids = nodePids(nodes);
  const down = ladder('down');
  expect(down.code).toBe(0);
  for (const pid of pids) expect(isAlive(pid)).toBe(false);
  rmSync(stateDir, { recursive: true, force: true });
}, 120_000);

/** Redirects from `conns` keep-alive connections until stopped, counting the 302s of each code. */
function redirectLoad(base: string, codes: string[], conns: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  const ok = new Map<string, number>(codes.map((c) => [c, 0]));
  const other = new Map<string, number>();
  let stopped = false;
  const timeline: { at: number; ok: number }[] = [];
  let total = 0;
  const one = (code: string) =>
    new Promise<void>((resolve) => {
      const req = http.get(`${base}/${code}`, { agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 302) {
            ok.set(code, ok.get(code)! + 1);
            total++;
          } else other.set(String(res.statusCode), (other.get(String(res.statusCode)) ?? 0) + 1);
          resolve();
        });
        res.on('error', () => resolve());
      });
      req.setTimeout(5000, () => req.destroy());
      req.on('error', (err: NodeJS.ErrnoException) => {
        other.set(err.code ?? 'error', (other.get(err.code ?? 'error') ?? 0) + 1);
        resolve();
      });
    });
  const loops = Array.from({ length: conns }, async (_, i) => {
    let n = i;
    while (!stopped) await one(codes[n++ % codes.length]!);
  });
  const ticker = setInterval(() => timeline.push({ at: Date.now(), ok: total }), 250);
  return {
    ok,
    other,
    timeline,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      clearInterval(ticker);
      agent.destroy();
    },
  };
}

async function clicksOf(code: string): Promise<number> {
  const r = await user.get(`/api/links/${code}/stats`);
  return Number(r.json.clicks);
}

describe('ladder up --rung 9 --workers 2', () => {
  it('lists the broker, the relay and the workers with their roles, and the queues are empty', () => {
    const ns = nodes();
    expect(ns.map((n) => `${n.name}:${n.role}`)).toEqual(expect.arrayContaining(['queue:queue', 'relay:relay', 'worker1:worker', 'worker2:worker', 'web1:web', 'web2:web']));
    for (const n of ns) expect(n.state).toBe('ready');
    const stats = queueStats();
    expect(stats.queues.map((q) => q.name).sort()).toEqual(['clicks', 'link-events']);
    for (const q of stats.queues) expect(q).toMatchObject({ deadLetters: 0 });
  });

  it('counts exactly one click per 302 while a worker, a web server and the relay are killed and the broker is frozen', async () => {
    const codes: string[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await user.post('/api/links', { url: `https://example.com/chaos/${i}` });
      expect(r.status).toBe(201);
      codes.push(r.json.code as string);
    }
    const loadStarted = Date.now();
    const load = redirectLoad(entry, codes, 16);
    const step = (CHAOS_S * 1000) / 12;
    const events: string[] = [];
    const chaos = async (...args: string[]) => {
      const r = await ladderAsync('chaos', ...args);
      events.push(`${args.join(' ')}: ${r.code === 0 ? 'ok' : r.err.trim()}`);
    };
    await sleep(step);
    await chaos('kill', 'worker1');
    await sleep(step);
    await chaos('kill', 'web1');
    await sleep(step);
    await chaos('kill', 'relay', '--down', '2');
    await sleep(step);
    await chaos('stop', 'queue');
    const frozenFrom = Date.now();
    await sleep(STOP_S * 1000);
    await chaos('cont', 'queue');
    const frozenTo = Date.now();
    await sleep(Math.max(step * 2, CHAOS_S * 1000 - 4 * step - STOP_S * 1000));
    await load.stop();
    const loadSeconds = (Date.now() - loadStarted) / 1000;
    expect(events).toEqual(['kill worker1: ok', 'kill web1: ok', 'kill relay --down 2: ok', 'stop queue: ok', 'cont queue: ok']);

    const answered = [...load.ok.values()].reduce((a, b) => a + b, 0);
    // Redirects kept answering while the broker was frozen: they never wait on it.
    const during = load.timeline.filter((t) => t.at >= frozenFrom && t.at <= frozenTo);
    expect(during.length).toBeGreaterThan(2);
    expect(during[during.length - 1]!.ok - during[0]!.ok).toBeGreaterThan(0);
    expect(answered).toBeGreaterThan(1000);

    // Converges to exactly the 302s: not one fewer (lost), not one more (counted twice).
    let seen: number[] = [];
    await waitFor(
      `clicks to match the ${answered} 302s (other answers: ${JSON.stringify(Object.fromEntries(load.other))})`,
      async () => {
        seen = await Promise.all(codes.map(clicksOf));
        return seen.reduce((a, b) => a + b, 0) >= answered && queueStats().queues.every((q) => q.depth === 0);
      },
      90_000,
    );
    await sleep(2000); // anything redelivered late would show now
    seen = await Promise.all(codes.map(clicksOf));
    // Not one click lost: every code has at least its 302s.
    expect(seen.map((n, i) => Math.max(0, load.ok.get(codes[i]!)! - n))).toEqual(codes.map(() => 0));
    // Not one counted twice, including a redirect in flight on web1 when it was killed, after
    // its click was written and before its 302 left, which HAProxy retried on web2 (an empty
    // answer to a GET): both clicks carry the request's key, counted once.
    expect(seen).toEqual(codes.map((c) => load.ok.get(c)));
    expect(dead('clicks')).toBe(0);
    const duplicates = await workerMetric('ladder_jobs_duplicates_total', 'queue="clicks"');
    const repeated = await workerMetric('ladder_clicks_repeated_total', '');
    const [{ batches }] = (await sql<{ batches: string }>('select count(*) as batches from click_batches')) as [{ batches: string }];
    console.log(
      `queue chaos: ${answered} redirects answered 302 in ${loadSeconds.toFixed(0)} s (broker frozen ${STOP_S} s), other answers ${JSON.stringify(Object.fromEntries(load.other))}; ` +
        `${batches} batches applied, ${duplicates} redelivered batch(es) and ${repeated} retried click(s) recognised by the workers running now`,
    );
    const [summary] = await sql<{ clicks: string }>('select clicks from owner_summary where owner_id = $1', [userId]);
    expect(Number(summary!.clicks)).toBe(seen.reduce((a, b) => a + b, 0));
    // Every node came back by itself.
    await waitFor('every node ready', () => nodes().every((n) => n.state === 'ready'), 30_000);
  }, 240_000);

  it("counts a request key once, whichever server wrote its click, and never lets a client's key through the balancer", async () => {
    const owner = await signedUpClient(entry);
    const code = (await owner.post('/api/links', { url: 'https://example.com/keyed' })).json.code as string;
    const clicks = () => owner.get(`/api/links/${code}/stats`).then((r) => Number(r.json.clicks));
    const webs = nodes().filter((n) => n.role === 'web');
    expect(webs.length).toBe(2);
    const key = crypto.randomUUID();
    // The same key on both web servers, directly, several times each (the first through the
    // route, the next from the in-process cache's fast path): one click.
    for (let i = 0; i < 3; i++) {
      for (const w of webs) {
        const r = await fetch(`${w.url}/${code}`, { redirect: 'manual', headers: { 'x-ladder-request-key': i === 1 ? key.toUpperCase() : key } });
        expect(r.status).toBe(302);
      }
    }
    // A key sent through the entry is replaced by the balancer's own: two clicks.
    for (let i = 0; i < 2; i++) expect((await fetch(`${entry}/${code}`, { redirect: 'manual', headers: { 'x-ladder-request-key': key } })).status).toBe(302);
    await waitFor('3 clicks', async () => (await clicks()) >= 3, 20_000);
    await sleep(2500); // a second pass of the relay would show a click counted late
    expect(await clicks()).toBe(3);
    const [row] = await sql<{ n: string }>('select count(*) as n from click_keys where request_key = $1', [key]);
    expect(row!.n).toBe('1');
    expect(await workerMetric('ladder_clicks_repeated_total', '')).toBeGreaterThanOrEqual(5);

    // Keys are forgotten once older than the retention, and only then (each worker prunes
    // about once a minute; called directly here).
    const old = crypto.randomUUID();
    await sql(`insert into click_keys (request_key, applied_at) values ($1, now() - make_interval(secs => $2 + 60))`, [old, CLICK_KEY_RETENTION_S]);
    const pg = nodes().find((n) => n.name === 'postgres')!;
    const password = readFileSync(path.join(stateDir, 'up', 'postgres', 'pg-password'), 'utf8').trim();
    const db = new PgDatabase({ url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${pg.port}/links`, metrics: createMetrics() });
    try {
      expect(await pruneClickKeys(db)).toBeGreaterThanOrEqual(1);
    } finally {
      await db.close();
    }
    const left = await sql<{ request_key: string }>('select request_key from click_keys where request_key in ($1, $2)', [old, key]);
    expect(left.map((r) => r.request_key)).toEqual([key]);
  });

  it('changes nothing when a batch or an event already applied is delivered again, under another message id', async () => {
    const owner = await signedUpClient(entry);
    const ownerId = Number((await owner.get('/api/me')).json.user.id);
    const code = (await owner.post('/api/links', { url: 'https://example.com/again' })).json.code as string;
    for (let i = 0; i < 5; i++) expect((await fetch(`${entry}/${code}`, { redirect: 'manual' })).status).toBe(302);
    const clicks = () => owner.get(`/api/links/${code}/stats`).then((r) => Number(r.json.clicks));
    await waitFor('5 clicks', async () => (await clicks()) === 5, 20_000);
    const summary = async () => (await sql<{ links: string; clicks: string }>('select links, clicks from owner_summary where owner_id = $1', [ownerId]))[0]!;
    await waitFor('the creation applied', async () => Number((await summary()).links) === 1, 20_000);
    const [batch] = await sql<{ producer: string; start_offset: string; end_offset: string; link_id: string; day: string }>(
      `select b.producer, b.start_offset, b.end_offset, l.id as link_id, to_char(now() at time zone 'utc', 'YYYY-MM-DD') as day
       from click_batches b, links l where l.code = $1 order by b.applied_at desc limit 1`,
      [code],
    );
    const [event] = await sql<{ id: string; type: string; key: string; payload: Record<string, unknown> }>(
      `select id, type, key, payload from outbox where payload->>'ownerId' = $1`,
      [String(ownerId)],
    );
    const before = {
      clicks: await workerMetric('ladder_jobs_duplicates_total', 'queue="clicks"'),
      events: await workerMetric('ladder_jobs_duplicates_total', 'queue="link-events"'),
    };
    const url = nodes().find((n) => n.name === 'queue')!.url;
    const clicksQ = new BrokerQueue(QUEUES.clicks, { ...BROKER_DEFAULTS, url });
    const eventsQ = new BrokerQueue(QUEUES.linkEvents, { ...BROKER_DEFAULTS, url });
    try {
      // The same batch id (producer, start) with other counts: applied already, so skipped whole.
      const body = { producer: batch!.producer, start: Number(batch!.start_offset), end: Number(batch!.end_offset), clicks: [[batch!.link_id, batch!.day, 1000]] };
      await clicksQ.send([{ id: `again-${Date.now()}`, body }]);
      await eventsQ.send([{ id: `again-${Date.now()}`, body: { id: String(event!.id), type: event!.type, key: event!.key, payload: event!.payload } }]);
    } finally {
      await Promise.all([clicksQ.close(), eventsQ.close()]);
    }
    await waitFor(
      'both redeliveries recognised',
      async () =>
        (await workerMetric('ladder_jobs_duplicates_total', 'queue="clicks"')) === before.clicks + 1 &&
        (await workerMetric('ladder_jobs_duplicates_total', 'queue="link-events"')) === before.events + 1,
      20_000,
    );
    expect(await clicks()).toBe(5);
    expect(await summary()).toEqual({ links: '1', clicks: '5' });
  }, 60_000);

  it('dead-letters a poison event after exactly maxReceives receives, goes on with other work, and applies it once when re-driven', async () => {
    const marker = `poison-${Date.now().toString(36)}`;
    writeFileSync(poisonFile, marker);
    const before = {
      retried: await workerMetric('ladder_jobs_total', 'queue="link-events",result="retried"'),
      dead: await workerMetric('ladder_jobs_total', 'queue="link-events",result="dead"'),
    };
    const owner = await signedUpClient(entry);
    const ownerId = Number((await owner.get('/api/me')).json.user.id);
    const bad = await owner.post('/api/links', { url: `https://example.com/${marker}` });
    expect(bad.status).toBe(201);
    const good = await owner.post('/api/links', { url: 'https://example.com/fine' });
    expect(good.status).toBe(201);
    const summary = async () => (await sql<{ links: string }>('select links from owner_summary where owner_id = $1', [ownerId]))[0];

    type Dlq = { deadLetters: { queue: string; id: string; receives: number; body: { payload: { url: string } } }[] };
    let letters: Dlq['deadLetters'] = [];
    await waitFor('the poison event in the dead letters', () => {
      letters = (JSON.parse(ladder('queue', 'dlq', 'list', '--json').out) as Dlq).deadLetters;
      return letters.length > 0;
    }, 30_000);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ queue: 'link-events', receives: BROKER_DEFAULTS.maxReceives });
    expect(letters[0]!.body.payload.url).toContain(marker);
    // The other event was applied meanwhile: the owner has one link counted.
    await waitFor('the good event applied', async () => Number((await summary())?.links ?? 0) === 1, 15_000);
    expect(await workerMetric('ladder_jobs_total', 'queue="link-events",result="retried"')).toBe(before.retried + BROKER_DEFAULTS.maxReceives - 1);
    expect(await workerMetric('ladder_jobs_total', 'queue="link-events",result="dead"')).toBe(before.dead + 1);
    expect(dead('link-events')).toBe(1);

    // The fix, then the re-drive: applied once.
    unlinkSync(poisonFile);
    const retry = JSON.parse(ladder('queue', 'dlq', 'retry', '--json').out) as { retried: { queue: string; id: string }[] };
    expect(retry.retried).toEqual([{ queue: 'link-events', id: letters[0]!.id }]);
    await waitFor('the re-driven event applied', async () => Number((await summary())?.links ?? 0) === 2, 15_000);
    await sleep(1500);
    expect(Number((await summary())!.links)).toBe(2);
    expect(dead('link-events')).toBe(0);
    expect((JSON.parse(ladder('queue', 'dlq', 'retry', '--json').out) as { retried: unknown[] }).retried).toEqual([]);
  }, 90_000);

  it('publishes and applies once every event of a committed write; an aborted transaction publishes nothing', async () => {
    const owner = await signedUpClient(entry);
    const ownerId = Number((await owner.get('/api/me')).json.user.id);
    const codes: string[] = [];
    for (let i = 0; i < 12; i++) codes.push((await owner.post('/api/links', { url: `https://example.com/o/${i}` })).json.code as string);
    for (const c of codes.slice(0, 4)) expect((await owner.patch(`/api/links/${c}`, { url: `https://example.com/edited/${c}` })).status).toBe(200);
    for (const c of codes.slice(0, 3)) expect((await owner.del(`/api/links/${c}`)).status).toBe(204);
    // A taken code: the write does not happen, and neither does an event.
    expect((await owner.post('/api/links', { url: 'https://example.com/dup', code: codes[5] })).status).toBe(409);
    // An aborted transaction that had appended its event, as a failed business write would.
    const c = new pg.Client({
      host: '127.0.0.1',
      port: nodes().find((n) => n.name === 'postgres')!.port,
      user: 'postgres',
      password: readFileSync(path.join(stateDir, 'up', 'postgres', 'pg-password'), 'utf8').trim(),
      database: 'links',
    });
    await c.connect();
    await c.query('begin');
    const [aborted] = (await c.query<{ id: string }>(`insert into outbox (type, key, payload) values ('link.created', '1', $1::jsonb) returning id`, [JSON.stringify({ linkId: '1', ownerId: String(ownerId), code: 'x', url: 'https://example.com/aborted' })])).rows;
    await c.query('rollback');
    await c.end();

    const events = async () =>
      sql<{ id: string; type: string; sent: boolean; applied: boolean }>(
        `select o.id, o.type, o.sent_at is not null as sent, a.event_id is not null as applied
         from outbox o left join outbox_applied a on a.event_id = o.id
         where o.payload->>'ownerId' = $1 order by o.id`,
        [String(ownerId)],
      );
    await waitFor('every event published and applied', async () => (await events()).every((e) => e.sent && e.applied), 20_000);
    const all = await events();
    expect(all.map((e) => e.type)).toEqual([...Array(12).fill('link.created'), ...Array(4).fill('link.edited'), ...Array(3).fill('link.deleted')]);
    const [summary] = await sql<{ links: string; edits: string }>('select links, edits from owner_summary where owner_id = $1', [ownerId]);
    expect({ links: Number(summary!.links), edits: Number(summary!.edits) }).toEqual({ links: 9, edits: 4 });
    expect(await sql('select 1 from outbox_applied where event_id = $1', [aborted!.id])).toEqual([]);
    expect(await sql('select 1 from outbox where id = $1', [aborted!.id])).toEqual([]);
  }, 60_000);
});
