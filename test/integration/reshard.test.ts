// Rung 10's online resharding on real components: `ladder up --rung 10 --shards 2 --replicas 1
// --web 2 --no-monitor`, 20,000 links loaded, then `ladder reshard --to 3` under a steady load
// of creates, edits and redirects through the edge, killed (SIGKILL) once its copy has started
// and run again. Checked:
//  - 0 failed requests; every acknowledged create present exactly once, with the URL of its
//    last acknowledged edit; no code on two clusters; each writer's redirects and "my links"
//    show its own writes throughout;
//  - at most 1/3 + 2% of the rows moved, whole logical shards, balanced over the 3 clusters;
//  - the write pause per logical shard (the report's `pauses`) p99 <= 250 ms; the write
//    latency during the move is printed;
//  - checksums: the command compares each batch's rows on both clusters before it switches
//    (it fails otherwise), and the test compares every cluster's rows with the map.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isAlive } from '../../src/kit/process/pid.ts';
import { logicalOfText } from '../../src/kit/db/shard-key.ts';
import { loadShardMap } from '../../src/kit/db/shard-map.ts';
import { ensureDir } from '../../src/launcher/state-dir.ts';
import { signedUpClient, sql, type Client } from '../support/app.ts';
import { LADDER_BIN, nodePids } from '../support/process.ts';

const stateDir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'reshard-'));
chmodSync(stateDir, 0o755);
const env = { ...process.env, LADDER_STATE_DIR: stateDir, LOG_LEVEL: 'warn', LADDER_RATE_LIMITS: 'createLink=1000000/60' };
const PRELOAD = 20_000;
const WRITERS = 6;

function ladder(...args: string[]) {
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], { encoding: 'utf8', env, timeout: 180_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

interface ShardsFile {
  catalog: string;
  clusters: { name: string; primary: string; replicas: string[] }[];
}
const shardsFile = () => JSON.parse(readFileSync(path.join(stateDir, 'up', 'shards.json'), 'utf8')) as ShardsFile;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let entry: string;

beforeAll(async () => {
  const up = ladder('up', '--rung', '10', '--shards', '2', '--replicas', '1', '--web', '2', '--no-monitor');
  if (up.code !== 0) throw new Error(`ladder up failed:\n${up.err}`);
  entry = up.out.trim().split('\n').pop()!;
  // 20,000 links of one owner, written straight into their clusters.
  const owner = await signedUpClient(entry);
  const ownerId = Number((await owner.get('/api/me')).json.user.id);
  const f = shardsFile();
  const c = new pg.Client({ connectionString: f.catalog });
  await c.connect();
  const map = (await loadShardMap(c))!;
  await c.end();
  const byCluster = new Map<string, { codes: string[]; logicals: number[] }>();
  for (let i = 0; i < PRELOAD; i++) {
    const code = `pre${i.toString(36)}`;
    const l = logicalOfText(code);
    const g = byCluster.get(map.clusterOf[l]!) ?? { codes: [], logicals: [] };
    g.codes.push(code);
    g.logicals.push(l);
    byCluster.set(map.clusterOf[l]!, g);
  }
  for (const [name, g] of byCluster) {
    await sql(
      f.clusters.find((x) => x.name === name)!.primary,
      `insert into links (id, logical_shard, code, url, owner_id)
       select ladder_id(l), l, code, 'https://example.com/' || code, $3 from unnest($1::text[], $2::int[]) as t(code, l)`,
      [g.codes, g.logicals, ownerId],
    );
  }
}, 240_000);

afterAll(async () => {
  const pids = nodePids(() => (JSON.parse(ladder('status', '--json').out) as { nodes: { pid: number | null }[] }).nodes);
  ladder('down');
  expect(pids.filter(isAlive)).toEqual([]);
}, 120_000);

interface Writer {
  client: Client;
  /** code -> the URL of its last acknowledged write */
  links: Map<string, string>;
}

/** Creates, edits and redirects in a loop until `stop`; every failure and write latency recorded. */
async function load(w: Writer, id: number, stop: () => boolean, failures: string[], latencies: number[]): Promise<void> {
  for (let n = 0; !stop(); n++) {
    const codes = [...w.links.keys()];
    const op = codes.length < 3 ? 0 : n % 3;
    try {
      if (op === 0) {
        const code = `w${id}x${n.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
        const url = `https://example.com/${code}/0`;
        const t = performance.now();
        const r = await w.client.post('/api/links', { url, code });
        latencies.push(performance.now() - t);
        if (r.status !== 201) failures.push(`create ${r.status} ${r.text.slice(0, 200)}`);
        else w.links.set(code, url);
      } else if (op === 1) {
        const code = codes[n % codes.length]!;
        const url = `https://example.com/${code}/${n}`;
        const t = performance.now();
        const r = await w.client.patch(`/api/links/${code}`, { url });
        latencies.push(performance.now() - t);
        if (r.status !== 200) failures.push(`edit ${r.status} ${r.text.slice(0, 200)}`);
        else w.links.set(code, url);
      } else {
        const code = codes[(n * 7) % codes.length]!;
        const r = await fetch(`${entry}/${code}`, { redirect: 'manual', headers: { cookie: w.client.cookie! } });
        if (r.status !== 302) failures.push(`redirect ${r.status}`);
        else if (r.headers.get('location') !== w.links.get(code)) failures.push(`redirect of ${code} to ${r.headers.get('location')}, not ${w.links.get(code)}`);
      }
    } catch (err) {
      failures.push(`request failed: ${(err as Error).message}`);
    }
  }
}

function reshardAsync(): { child: ChildProcess; done: Promise<{ code: number | null; out: string; err: string }>; err: () => string } {
  const child = spawn(process.execPath, [LADDER_BIN, 'reshard', '--to', '3', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.on('close', (code) => resolve({ code, out, err })));
  return { child, done, err: () => err };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((s.length * p) / 100) - 1)] ?? 0;
};

it('reshards 2 -> 3 clusters under creates, edits and redirects, killed mid-copy and run again: nothing lost or doubled, whole shards moved, short pauses', async () => {
  const writers: Writer[] = [];
  for (let i = 0; i < WRITERS; i++) writers.push({ client: await signedUpClient(entry), links: new Map() });
  const failures: string[] = [];
  const latencies: number[] = [];
  let stopping = false;
  const loads = writers.map((w, i) => load(w, i, () => stopping, failures, latencies));
  await sleep(1000);

  // First run: killed once its copy has started (a subscription exists).
  const first = reshardAsync();
  for (let i = 0; i < 600 && !/subscribed/.test(first.err()); i++) await sleep(50);
  expect(first.err()).toMatch(/subscribed/);
  first.child.kill('SIGKILL');
  await first.done;
  const during = latencies.length;

  // Run again: it resumes and completes.
  const second = await reshardAsync().done;
  expect(second.code, second.err).toBe(0);
  expect(second.err).toMatch(/resuming the reshard to 3 clusters at step copy/);
  await sleep(1000);
  stopping = true;
  await Promise.all(loads);

  const report = JSON.parse(second.out.trim().split('\n').pop()!) as { from: number; to: number; rowsMoved: number; rowsTotal: number; pauses: { logicalShard: number; ms: number }[] };
  const writeMs = latencies.slice(during);
  console.log(
    `reshard 2->3: ${report.rowsMoved}/${report.rowsTotal} rows moved, ${report.pauses.length} logical shards; pause p50 ${pct(report.pauses.map((p) => p.ms), 50)} ms, p99 ${pct(report.pauses.map((p) => p.ms), 99)} ms, max ${pct(report.pauses.map((p) => p.ms), 100)} ms; ` +
      `writes during the move: ${writeMs.length}, p50 ${pct(writeMs, 50).toFixed(1)} ms, p99 ${pct(writeMs, 99).toFixed(1)} ms, max ${pct(writeMs, 100).toFixed(1)} ms`,
  );
  console.log(second.err.split('\n').filter((l) => /switch/.test(l)).slice(0, 6).join('\n'));
  const kinds = new Map<string, number>();
  for (const f of failures) kinds.set(f.slice(0, 80), (kinds.get(f.slice(0, 80)) ?? 0) + 1);
  console.log([...kinds].map(([k, n]) => `${n} x ${k}`).join('\n'));
  expect(failures).toEqual([]);
  expect(report.from).toBe(2);
  expect(report.to).toBe(3);
  expect(report.pauses.length).toBe(341); // whole logical shards: 1,024 / 3 to the new cluster
  expect(report.rowsMoved / report.rowsTotal).toBeLessThanOrEqual(1 / 3 + 0.02);
  expect(pct(report.pauses.map((p) => p.ms), 99)).toBeLessThanOrEqual(250);

  // Every row once, on the cluster the map names, with its last acknowledged URL.
  const f = shardsFile();
  expect(f.clusters.map((c) => c.name)).toEqual(['shard1', 'shard2', 'shard3']);
  const catalog = new pg.Client({ connectionString: f.catalog });
  await catalog.connect();
  const map = (await loadShardMap(catalog))!;
  await catalog.end();
  const where = new Map<string, { cluster: string; url: string }>();
  let duplicates = 0;
  let misplaced = 0;
  for (const c of f.clusters) {
    for (const r of await sql<{ code: string; url: string }>(c.primary, 'select code, url from links')) {
      if (where.has(r.code)) duplicates++;
      if (map.clusterOf[logicalOfText(r.code)] !== c.name) misplaced++;
      where.set(r.code, { cluster: c.name, url: r.url });
    }
  }
  expect(duplicates).toBe(0);
  expect(misplaced).toBe(0);
  let lost = 0;
  let stale = 0;
  for (const w of writers) {
    for (const [code, url] of w.links) {
      if (!where.has(code)) lost++;
      else if (where.get(code)!.url !== url) stale++;
    }
  }
  expect(lost).toBe(0);
  expect(stale).toBe(0);
  expect(where.size).toBe(PRELOAD + writers.reduce((s, w) => s + w.links.size, 0));
  // Each writer's list still shows every link it made (the owner index moved with its shards).
  for (const w of writers) {
    const items = (await w.client.get('/api/links?limit=100')).json.items as { code: string }[];
    expect(new Set(items.map((i) => i.code))).toEqual(new Set([...w.links.keys()].slice(-100)));
  }
  // The data balances: rows per cluster within 5% of the mean (20,000 hashed codes).
  const shards = JSON.parse(ladder('shards', '--json').out) as { clusters: { rows: number }[] };
  const rows = shards.clusters.map((c) => c.rows);
  expect(Math.max(...rows) / (rows.reduce((s, n) => s + n, 0) / rows.length)).toBeLessThan(1.05);
  // Nothing left to do: running it again is a no-op.
  const again = ladder('reshard', '--to', '3', '--json');
  expect(again.code).toBe(0);
  expect(JSON.parse(again.out.trim().split('\n').pop()!)).toMatchObject({ from: 3, to: 3, rowsMoved: 0 });
}, 240_000);
