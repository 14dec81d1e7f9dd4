// Rung 10 on real components: `ladder up --rung 10 --shards 2 --replicas 1 --replica-delay 700
// --web 2 --no-monitor` (the catalog, two shard clusters of a primary and a replica that applies
// commits 700 ms late, two web servers behind HAProxy and the edge, sessions in Redis).
// Checked through the observable contracts (the entry, `ladder status --json`, `ladder shards
// --json`, /metrics) and the databases:
//  - the link API's contract through the edge: signup, login, me, logout; create (generated
//    and chosen code), list with a cursor, get, edit, delete, stats with clicks, the redirect;
//    bad input gets its documented code and writes nothing;
//  - read-your-writes for a user whose links live on both shards: create, then at once open
//    the link, the redirect and "my links" (the replicas are 700 ms late, so a read routed
//    without the token would miss it; a reader without the cookie does, at first);
//  - where rows live: each link on the cluster the map names for hash(code), its id carrying
//    its logical shard, the owner index on the owner's shard, no row on two clusters;
//  - the router refuses a statement without a key and gathers from every shard when asked;
//  - an owner-index event a request left unapplied is swept into the index.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgDatabase } from '../../src/kit/db/pg-database.ts';
import { logicalOfId, logicalOfKey, logicalOfText, LOGICAL_SHARD_SQL } from '../../src/kit/db/shard-key.ts';
import { loadShardMap, shardMapVersion, type ShardMap } from '../../src/kit/db/shard-map.ts';
import { ShardRouter } from '../../src/kit/db/shard-router.ts';
import { isAlive } from '../../src/kit/process/pid.ts';
import { createMetrics } from '../../src/kit/metrics/metrics.ts';
import { ensureDir } from '../../src/launcher/state-dir.ts';
import { Client, freshDatabase, signedUpClient, sql, uniqueEmail } from '../support/app.ts';
import { LADDER_BIN, nodePids } from '../support/process.ts';

const stateDir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'shards-'));
chmodSync(stateDir, 0o755);
const env = { ...process.env, LADDER_STATE_DIR: stateDir, LOG_LEVEL: 'warn', LADDER_RATE_LIMITS: 'createLink=1000000/60' };

function ladder(...args: string[]) {
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], { encoding: 'utf8', env, timeout: 180_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

interface Node {
  name: string;
  role: string;
  pid: number | null;
  shard?: string;
  url: string;
}
const nodes = (): Node[] => (JSON.parse(ladder('status', '--json').out) as { nodes: Node[] }).nodes;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ShardsFile {
  catalog: string;
  clusters: { name: string; primary: string; replicas: string[] }[];
}
let files: ShardsFile;
let entry: string;
let map: ShardMap;

const primaryOf = (cluster: string) => files.clusters.find((c) => c.name === cluster)!.primary;

/** A code whose link lands on `cluster` (codes are hashed: try until one does). */
function codeOn(cluster: string, prefix: string): string {
  for (let i = 0; ; i++) {
    const code = `${prefix}${i}`;
    if (map.clusterOf[logicalOfText(code)] === cluster) return code;
  }
}

beforeAll(async () => {
  const up = ladder('up', '--rung', '10', '--shards', '2', '--replicas', '1', '--replica-delay', '700', '--web', '2', '--no-monitor');
  if (up.code !== 0) throw new Error(`ladder up failed:\n${up.err}`);
  entry = up.out.trim().split('\n').pop()!;
  files = JSON.parse(readFileSync(path.join(stateDir, 'up', 'shards.json'), 'utf8')) as ShardsFile;
  const c = new pg.Client({ connectionString: files.catalog });
  await c.connect();
  map = (await loadShardMap(c))!;
  await c.end();
}, 240_000);

afterAll(async () => {
  const pids = nodePids(nodes);
  ladder('down');
  expect(pids.filter(isAlive)).toEqual([]);
}, 120_000);

describe('rung 10 topology', () => {
  it('runs the catalog and two clusters whose nodes carry their shard; `ladder shards` shows the map', () => {
    const db = nodes().filter((n) => n.role === 'postgres' || n.role === 'postgres-replica');
    expect(db.map((n) => [n.name, n.role, n.shard]).sort()).toEqual(
      [
        ['catalog', 'postgres', 'catalog'],
        ['shard1', 'postgres', 'shard1'],
        ['shard1-replica1', 'postgres-replica', 'shard1'],
        ['shard2', 'postgres', 'shard2'],
        ['shard2-replica1', 'postgres-replica', 'shard2'],
      ].sort(),
    );
    const r = ladder('shards', '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as { version: number; logicalShards: number; clusters: { name: string; logical: number[][]; rows: number }[] };
    expect(report.version).toBe(1);
    expect(report.logicalShards).toBe(1024);
    expect(report.clusters.map((c) => [c.name, c.logical])).toEqual([
      ['shard1', [[0, 511]]],
      ['shard2', [[512, 1023]]],
    ]);
    // Bad input to reshard is refused before anything moves (the move itself: reshard.test.ts).
    expect(ladder('reshard', '--to', '0').err).toMatch(/CONFIG_INVALID.*to/);
    expect(ladder('reshard').err).toMatch(/CONFIG_INVALID.*to.*required/);
  });
});

describe('the API contract through the edge', () => {
  it('accounts: signup, me, logout, login with a new session, bad credentials, a taken email', async () => {
    const c = new Client(entry);
    const email = uniqueEmail();
    const signup = await c.post('/api/signup', { email, password: 'correct horse battery' });
    expect(signup.status).toBe(201);
    expect(signup.json.user).toEqual({ id: expect.any(Number), email });
    expect((await c.get('/api/me')).json.user.email).toBe(email);
    const before = c.cookie;
    expect((await c.post('/api/logout')).status).toBe(204);
    expect((await c.get('/api/me')).status).toBe(401);
    expect((await c.post('/api/login', { email, password: 'wrong horse battery' })).json.error.code).toBe('INVALID_CREDENTIALS');
    const login = await c.post('/api/login', { email, password: 'correct horse battery' });
    expect(login.status).toBe(200);
    expect(c.cookie).not.toBe(before);
    expect((await new Client(entry).post('/api/signup', { email, password: 'correct horse battery' })).json.error.code).toBe('EMAIL_TAKEN');
    // Users live on the catalog only.
    expect(await sql(files.catalog, 'select 1 from users where email = $1', [email])).toHaveLength(1);
    for (const c of files.clusters) expect(await sql(c.primary, 'select 1 from users where email = $1', [email])).toHaveLength(0);
  });

  it('links: create, list with a cursor, get, edit, stats with clicks, delete, the redirect; another user gets 404', async () => {
    const c = await signedUpClient(entry);
    const chosen = `sh${Date.now().toString(36)}`;
    const made = [];
    for (let i = 0; i < 5; i++) {
      const r = await c.post('/api/links', { url: `https://example.com/${i}`, ...(i === 0 ? { code: chosen } : {}) });
      expect(r.status).toBe(201);
      made.push(r.json.code as string);
    }
    expect(made[0]).toBe(chosen);
    expect((await c.post('/api/links', { url: 'https://example.com/again', code: chosen })).json.error.code).toBe('CODE_TAKEN');
    const page1 = await c.get('/api/links?limit=3');
    expect(page1.json.items.map((i: { code: string }) => i.code)).toEqual(made.slice(2).reverse());
    const page2 = await c.get(`/api/links?limit=3&cursor=${page1.json.nextCursor as string}`);
    expect(page2.json.items.map((i: { code: string }) => i.code)).toEqual(made.slice(0, 2).reverse());
    expect(page2.json.nextCursor).toBeNull();

    const one = await c.get(`/api/links/${chosen}`);
    expect(one.json).toMatchObject({ code: chosen, url: 'https://example.com/0', clicks: 0 });
    const edited = await c.patch(`/api/links/${chosen}`, { url: 'https://example.org/edited' });
    expect(edited.status).toBe(200);
    const hit = await fetch(`${entry}/${chosen}`, { redirect: 'manual', headers: { cookie: c.cookie! } });
    expect(hit.status).toBe(302);
    expect(hit.headers.get('location')).toBe('https://example.org/edited');
    await fetch(`${entry}/${chosen}`, { redirect: 'manual', headers: { cookie: c.cookie! } });
    let stats = await c.get(`/api/links/${chosen}/stats`);
    for (let i = 0; i < 40 && stats.json.clicks !== 2; i++) {
      await sleep(250);
      stats = await c.get(`/api/links/${chosen}/stats`);
    }
    expect(stats.json).toMatchObject({ code: chosen, clicks: 2, daily: [{ day: expect.any(String), clicks: 2 }] });

    const other = await signedUpClient(entry);
    expect((await other.get(`/api/links/${chosen}`)).status).toBe(404);
    expect((await other.patch(`/api/links/${chosen}`, { url: 'https://evil.example/' })).status).toBe(404);
    expect((await other.del(`/api/links/${chosen}`)).status).toBe(404);
    expect((await other.get('/api/links')).json.items).toEqual([]);

    expect((await c.del(`/api/links/${made[1]!}`)).status).toBe(204);
    expect((await c.get(`/api/links/${made[1]!}`)).status).toBe(404);
    expect((await fetch(`${entry}/${made[1]!}`, { redirect: 'manual', headers: { cookie: c.cookie! } })).status).toBe(404);
    const all = await c.get('/api/links?limit=100');
    expect(all.json.items.map((i: { code: string }) => i.code)).toEqual([made[4], made[3], made[2], made[0]]);
  });

  it('bad input gets its code, never a 5xx, and writes nothing', async () => {
    const c = await signedUpClient(entry);
    const count = async () => {
      let n = 0;
      for (const cl of files.clusters) n += Number((await sql<{ n: string }>(cl.primary, 'select count(*) as n from links'))[0]!.n);
      return n;
    };
    const before = await count();
    expect((await c.post('/api/links', { url: 'javascript:alert(1)' })).json.error.code).toBe('INVALID_URL');
    expect((await c.post('/api/links', { url: 'https://example.com/', code: 'bad code!' })).json.error.code).toBe('INVALID_CODE');
    expect((await c.post('/api/links', '{"url":')).json.error.code).toBe('BAD_JSON');
    expect((await c.get('/api/links?limit=1000')).json.error.code).toBe('VALIDATION_FAILED');
    expect((await c.get('/api/links?cursor=%00%01')).status).toBeLessThan(500);
    expect((await new Client(entry).post('/api/links', { url: 'https://example.com/' })).status).toBe(401);
    expect(await count()).toBe(before);
  });
});

describe('consistency across shards', () => {
  it("a user whose links live on both shards reads each write at once; a reader without the token does not", async () => {
    const c = await signedUpClient(entry);
    let missedByStranger = 0;
    for (let round = 0; round < 6; round++) {
      for (const cluster of ['shard1', 'shard2']) {
        const code = codeOn(cluster, `ryw${Date.now().toString(36)}r${round}`);
        const created = await c.post('/api/links', { url: `https://example.com/${code}`, code });
        expect(created.status).toBe(201);
        expect((await c.get(`/api/links/${code}`)).status).toBe(200);
        const redirect = await fetch(`${entry}/${code}`, { redirect: 'manual', headers: { cookie: c.cookie! } });
        expect(redirect.status).toBe(302);
        const mine = await c.get('/api/links?limit=1');
        expect(mine.json.items[0].code).toBe(code);
        if ((await fetch(`${entry}/${code}`, { redirect: 'manual' })).status === 404) missedByStranger++;
      }
    }
    // The replicas are 700 ms late: without the token, fresh links are missing (the check can fail).
    expect(missedByStranger).toBeGreaterThan(0);
    const text = await (await fetch(`${nodes().find((n) => n.name === 'web1')!.url}/metrics`)).text();
    for (const shard of ['catalog', 'shard1', 'shard2']) expect(text).toMatch(new RegExp(`ladder_db_queries_total\\{shard="${shard}",role="primary"\\} [1-9]`));
    expect(text).toMatch(/ladder_db_queries_total\{shard="shard[12]",role="replica"\} [1-9]/);
  });
});

describe('where rows live', () => {
  it("each link on its code's cluster, with its logical shard in its id and column; the owner index on the owner's shard", async () => {
    const c = await signedUpClient(entry);
    const ownerId = Number((await c.get('/api/me')).json.user.id);
    for (let i = 0; i < 12; i++) expect((await c.post('/api/links', { url: `https://example.com/w${i}` })).status).toBe(201);
    const seen = new Map<string, string>();
    for (const cl of files.clusters) {
      const rows = await sql<{ id: string; code: string; logical_shard: number; sql_logical: string }>(
        cl.primary,
        `select id, code, logical_shard, ${LOGICAL_SHARD_SQL('code')} as sql_logical from links where owner_id = $1`,
        [ownerId],
      );
      for (const r of rows) {
        expect(seen.has(r.code)).toBe(false); // no row on two clusters
        seen.set(r.code, cl.name);
        expect(map.clusterOf[logicalOfText(r.code)]).toBe(cl.name);
        expect(r.logical_shard).toBe(logicalOfText(r.code));
        expect(Number(r.sql_logical)).toBe(r.logical_shard);
        expect(logicalOfId(r.id)).toBe(r.logical_shard);
      }
      const index = await sql(cl.primary, 'select 1 from owner_links where owner_id = $1', [ownerId]);
      expect(index.length).toBe(map.clusterOf[logicalOfKey({ owner: ownerId })] === cl.name ? 12 : 0);
    }
    expect(seen.size).toBe(12);
    expect(new Set(seen.values()).size).toBe(2); // 12 hashed codes: both clusters (1 in 2^11 to fail by chance)
  });

  it('an owner-index event a request left unapplied is swept into the index', async () => {
    const c = await signedUpClient(entry);
    const ownerId = Number((await c.get('/api/me')).json.user.id);
    const ownerCluster = map.clusterOf[logicalOfKey({ owner: ownerId })]!;
    const linkCluster = ownerCluster === 'shard1' ? 'shard2' : 'shard1';
    const code = codeOn(linkCluster, `sw${Date.now().toString(36)}`);
    const logical = logicalOfText(code);
    // A write whose request died after its commit: the link and its unsent event, no index row.
    const [row] = await sql<{ id: string; created: string }>(
      primaryOf(linkCluster),
      `with l as (insert into links (id, logical_shard, code, url, owner_id) values (ladder_id($1), $1, $2, 'https://example.com/swept', $3) returning id, created_at)
       insert into outbox (type, key, payload) select 'owner-index.add', l.id::text,
         jsonb_build_object('ownerId', $3::text, 'linkId', l.id::text, 'code', $2::text, 'createdAt', l.created_at::text) from l
       returning key as id, payload->>'createdAt' as created`,
      [logical, code, ownerId],
    );
    expect(row).toBeDefined();
    let items: { code: string }[] = [];
    for (let i = 0; i < 40 && items.length === 0; i++) {
      await sleep(250);
      items = (await c.get('/api/links')).json.items as { code: string }[];
    }
    expect(items.map((i) => i.code)).toEqual([code]);
    const sent = await sql(primaryOf(linkCluster), 'select 1 from outbox where key = $1 and sent_at is not null', [row!.id]);
    expect(sent).toHaveLength(1);
  });
});

describe('the shard router', () => {
  it('refuses a statement without a key; scatter() reads every shard, with a partial-result policy', async () => {
    const metrics = createMetrics();
    const clusters = new Map(files.clusters.map((c) => [c.name, new PgDatabase({ url: c.primary, shard: c.name, metrics })] as const));
    const directory = new PgDatabase({ url: files.catalog, shard: 'catalog', metrics });
    const catalog = { query: async (text: string, params?: unknown[]) => ({ rows: await directory.read(text, params) }) };
    const router = new ShardRouter({ directory, clusters, loadVersion: () => shardMapVersion(catalog), loadMap: () => loadShardMap(catalog) });
    await router.start();
    try {
      const db = router.forRequest();
      await expect(db.read('select count(*) from links')).rejects.toThrow(/SHARD_KEY_REQUIRED/);
      await expect(db.write('delete from links')).rejects.toThrow(/SHARD_KEY_REQUIRED/);
      await expect(db.tx(async () => 1)).rejects.toThrow(/SHARD_KEY_REQUIRED/);
      const per = await db.scatter!<{ n: string }>('select count(*) as n from links');
      let total = 0;
      for (const c of files.clusters) total += Number((await sql<{ n: string }>(c.primary, 'select count(*) as n from links'))[0]!.n);
      expect(per.rows.reduce((s, r) => s + Number(r.n), 0)).toBe(total);
      expect(per.missing).toEqual([]);
      // A shard that does not answer in time: missing with `partial`, an error without.
      const slow = 'select pg_sleep(0.5), 1 as n';
      const partial = await db.scatter!(`select case when current_setting('port') = '${new URL(files.clusters[0]!.primary).port}' then (select 1 from pg_sleep(0.5)) end as n`, [], { timeoutMs: 200, partial: true });
      expect(partial.missing).toEqual(['shard1']);
      await expect(db.scatter!(slow, [], { timeoutMs: 100 })).rejects.toThrow(/did not answer/);
      // Keys route to the cluster the map names.
      const code = codeOn('shard2', 'route');
      expect(router.clusterName({ link: code })).toBe('shard2');
    } finally {
      await router.close();
    }
  });
});

describe('`ladder migrate` for a deployed rung 10 (DATABASE_SHARDS set, as the image sets it)', () => {
  it('migrates the catalog and every cluster, makes the first map and each cluster\'s owned shards; a second run changes nothing', async () => {
    const [catalog, a, b] = await Promise.all([freshDatabase(), freshDatabase(), freshDatabase()]);
    const run = () =>
      spawnSync(process.execPath, [LADDER_BIN, 'migrate'], {
        encoding: 'utf8',
        env: { ...process.env, DATABASE_URL: catalog, DATABASE_SHARDS: `shard1=${a};shard2=${b}` },
        timeout: 120_000,
      });
    const first = run();
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/shard map ready over shard1, shard2/);
    const c = new pg.Client({ connectionString: catalog });
    await c.connect();
    const m = (await loadShardMap(c))!;
    await c.end();
    expect(m.version).toBe(1);
    expect([m.clusterOf[0], m.clusterOf[511], m.clusterOf[512], m.clusterOf[1023]]).toEqual(['shard1', 'shard1', 'shard2', 'shard2']);
    const owned = async (url: string) => (await sql<{ n: string; lo: number; hi: number }>(url, 'select count(*) as n, min(logical_shard) as lo, max(logical_shard) as hi from owned_logical where logical_shard >= 0'))[0]!;
    expect(await owned(a)).toEqual({ n: '512', lo: 0, hi: 511 });
    expect(await owned(b)).toEqual({ n: '512', lo: 512, hi: 1023 });
    expect(await sql(a, "select 1 from pg_proc where proname = 'ladder_fence'")).toHaveLength(1);
    const again = run();
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/applied migration/);
  });
});
