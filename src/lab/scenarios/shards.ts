// Scenario `shards` (rung 10): do shards add write throughput, and do the data and the load
// balance over them?
//  1. Write throughput: two topologies side by side, `ladder up --rung 10 --shards 1` and
//     `--shards 2` (no replicas), every database node capped at --db-cpu core (0.1 unless told)
//     so that the shard primaries, not the uncapped web tier, are the limit. Link creates
//     (POST /api/links: the link, its outbox event and its owner-index entry) from
//     --connections clients, each its own user, in a closed loop; the phases alternate between
//     the two in every round (1 shard first in odd rounds), medians over rounds. Target: 2
//     shards >= 1.8 x 1 shard.
//  2. Data balance: `ladder up --rung 10 --shards 4`, --links links (100,000 unless told)
//     written into the clusters the map names; rows per cluster as `ladder shards` counts
//     them. Target: max/mean <= 1.02.
//  3. Load balance under Zipf(--zipf, 1.0): the share of redirects each cluster would serve
//     when link popularity follows Zipf over the same links (the hottest link alone is a
//     share of all traffic no sharding can split), reported.
// The driver runs in the bench process (it needs each client's session cookie), not pinned.
import pg from 'pg';
import { LOGICAL_SHARDS, logicalOfText } from '../../kit/db/shard-key.ts';
import { loadShardMap } from '../../kit/db/shard-map.ts';
import { ConfigError } from '../../kit/errors.ts';
import { readShardsFile, shardsReport } from '../../launcher/shards-command.ts';
import { ZipfSampler } from '../driver/zipf.ts';
import { planTopologyPinning } from '../machine/cpu-pinning.ts';
import { median } from '../measure/measurement.ts';
import { target, type BenchReport } from '../report/bench-report.ts';
import { BenchTopology } from '../targets/bench-topology.ts';
import type { Scenario, ScenarioContext } from './scaffold.ts';

export const DEFAULT_DB_CPU = 0.1;
const MIN_RATIO = 1.8;
const MAX_DATA_IMBALANCE = 1.02;
const RATE_LIMITS = 'signup=100000/60,login=100000/60,createLink=100000000/60';

export const shardsScenario: Scenario = {
  name: 'shards',
  summary: 'rung 10: link creates with 1 vs 2 shard clusters side by side (database nodes capped), ratio; data and Zipf load balance over 4 clusters',
  options: [{ flag: '--web' }, { flag: '--cpu' }, { flag: '--db-cpu', default: String(DEFAULT_DB_CPU) }],
  run: shards,
};

interface Writer {
  cookie: string;
}

async function signUp(entry: string, i: number): Promise<Writer> {
  const res = await fetch(`${entry}/api/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `bench${i}-${Date.now().toString(36)}@example.com`, password: 'correct horse battery' }),
  });
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${await res.text()}`);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ');
  return { cookie };
}

/** Creates in a closed loop from every writer for `seconds`; creates per second and failures. */
async function createPhase(entry: string, writers: Writer[], seconds: number): Promise<{ rate: number; failed: number; p99: number }> {
  const until = performance.now() + seconds * 1000;
  let ok = 0;
  let failed = 0;
  const latencies: number[] = [];
  let n = 0;
  await Promise.all(
    writers.map(async (w) => {
      while (performance.now() < until) {
        const t = performance.now();
        try {
          const res = await fetch(`${entry}/api/links`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', cookie: w.cookie },
            body: JSON.stringify({ url: `https://example.com/${n++}` }),
          });
          await res.arrayBuffer();
          if (res.status === 201) ok++;
          else failed++;
        } catch {
          failed++;
        }
        latencies.push(performance.now() - t);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { rate: ok / seconds, failed, p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0 };
}

async function shards(ctx: ScenarioContext): Promise<BenchReport> {
  const { o, session, log } = ctx;
  if (o.rung !== undefined) throw new ConfigError('--rung', 'the shards scenario runs rung 10 itself', 'leave out --rung');
  const dbCpu = o.dbCpu ?? DEFAULT_DB_CPU;
  const pinning = planTopologyPinning();
  log(pinning.note);
  const env = { LADDER_RATE_LIMITS: RATE_LIMITS };
  const launch = (count: number, folder: string, capped: boolean) =>
    BenchTopology.launch(session, {
      rung: 10,
      web: o.web,
      cpu: o.cpu,
      replicas: 0,
      ...(capped ? { dbCpu } : {}),
      folder,
      env,
      pinning,
      upArgs: ['--shards', String(count)],
    });
  // One after the other: each launch initdbs its clusters, which is load enough on two cores.
  const one = await launch(1, 'topology-1shard', true);
  const two = await launch(2, 'topology-2shards', true);
  const sides = [
    { name: '1 shard', topology: one, writers: [] as Writer[], rates: [] as number[], failed: 0, p99: [] as number[] },
    { name: '2 shards', topology: two, writers: [] as Writer[], rates: [] as number[], failed: 0, p99: [] as number[] },
  ];
  for (const s of sides) {
    const entry = s.topology.entry.href.replace(/\/$/, '');
    for (let i = 0; i < o.connections; i++) s.writers.push(await signUp(entry, i));
    log(`warming up ${s.name} for ${o.warmup} s…`);
    await createPhase(entry, s.writers, o.warmup);
  }
  for (let round = 1; round <= o.rounds; round++) {
    const order = round % 2 === 1 ? sides : [...sides].reverse();
    for (const s of order) {
      const r = await createPhase(s.topology.entry.href.replace(/\/$/, ''), s.writers, o.duration);
      s.rates.push(r.rate);
      s.p99.push(r.p99);
      s.failed += r.failed;
      log(`round ${round}/${o.rounds} ${s.name}: ${Math.round(r.rate)} creates/s, p99 ${r.p99.toFixed(1)} ms, failed ${r.failed}`);
    }
  }
  const capped = sides.every((s) => s.topology.databaseCapped());
  const [m1, m2] = sides.map((s) => median(s.rates)) as [number, number];
  const ratio = m2 / m1;
  await one.down();
  await two.down();

  // Data balance: o.links links written into the clusters the map of a 4-cluster topology names.
  const four = await launch(4, 'topology-4shards', false);
  const files = readShardsFile(four.stateDir);
  const catalog = new pg.Client({ connectionString: files.catalog });
  await catalog.connect();
  const map = (await loadShardMap(catalog))!;
  await catalog.end();
  const codes = Array.from({ length: o.links }, (_, i) => `z${i.toString(36)}`);
  const byCluster = new Map<string, { codes: string[]; logicals: number[] }>();
  for (const code of codes) {
    const l = logicalOfText(code);
    const g = byCluster.get(map.clusterOf[l]!) ?? { codes: [], logicals: [] };
    g.codes.push(code);
    g.logicals.push(l);
    byCluster.set(map.clusterOf[l]!, g);
  }
  for (const [name, g] of byCluster) {
    const db = new pg.Client({ connectionString: files.clusters.find((c) => c.name === name)!.primary });
    await db.connect();
    try {
      await db.query('truncate links cascade');
      await db.query(
        `insert into links (id, logical_shard, code, url, owner_id)
         select ladder_id(l), l, code, 'https://example.com/' || code, 1 from unnest($1::text[], $2::int[]) as t(code, l)`,
        [g.codes, g.logicals],
      );
    } finally {
      await db.end();
    }
  }
  const report = await shardsReport(four.stateDir);
  const rows = report.clusters.map((c) => c.rows);
  const meanRows = rows.reduce((a, b) => a + b, 0) / rows.length;
  const dataImbalance = Math.max(...rows) / meanRows;
  // Zipf: rank k (the k-th code) gets weight 1/k^s; each cluster's share of the traffic.
  const zipf = new ZipfSampler(o.links, o.zipf);
  const load = new Map<string, number>();
  let total = 0;
  codes.forEach((code, k) => {
    const w = 1 / Math.pow(k + 1, o.zipf);
    total += w;
    const c = map.clusterOf[logicalOfText(code)]!;
    load.set(c, (load.get(c) ?? 0) + w);
  });
  const loadShares = [...load.values()].map((w) => w / total);
  const loadImbalance = Math.max(...loadShares) / (1 / loadShares.length);
  const hottest = 1 / total;
  await four.down();

  const figures: Record<string, number> = {
    '1 shard: creates/s (median)': m1,
    '2 shards: creates/s (median)': m2,
    '1 shard: create p99, ms (median of rounds)': median(sides[0]!.p99),
    '2 shards: create p99, ms (median of rounds)': median(sides[1]!.p99),
    'data: links': o.links,
    'data: max/mean rows over 4 clusters': dataImbalance,
    [`load under Zipf(${o.zipf}): max/mean share over 4 clusters`]: loadImbalance,
    [`load under Zipf(${o.zipf}): the hottest link's share of all redirects, %`]: hottest * 100,
    [`load under Zipf(${o.zipf}): top 1% of links' share, %`]: zipf.share(o.links / 100) * 100,
    'logical shards': LOGICAL_SHARDS,
  };
  report.clusters.forEach((c, i) => {
    figures[`data: ${c.name} rows`] = c.rows;
    figures[`load under Zipf(${o.zipf}): ${c.name} share, %`] = (load.get(c.name) ?? 0) / total * 100;
    void i;
  });
  const targets = [
    target('median creates/s with 2 shards / 1 shard', ratio, '>=', MIN_RATIO),
    target('data: max/mean rows over 4 clusters', dataImbalance, '<=', MAX_DATA_IMBALANCE),
    target(`database nodes capped at ${dbCpu} core (cgroup cpu controller writable)`, capped ? 1 : 0, '==', 1),
    target('failed creates', sides[0]!.failed + sides[1]!.failed, '==', 0),
  ];
  const notes = [
    'the write load runs in the bench process (each client keeps its session cookie), not pinned away from the servers',
    `the hottest link alone is ${(hottest * 100).toFixed(1)}% of redirects under Zipf(${o.zipf}) over ${o.links} links: its cluster carries it whatever the map (only a cache spreads one key)`,
    ...ctx.measurementNotes([]),
  ];
  if (!capped) notes.push('the database nodes were NOT capped: the ratio does not measure what this scenario is for');
  return ctx.report({
    resolved: { dbCpu },
    poolSize: 10,
    pinning: { ...pinning, note: `${pinning.note.split('. Fixed rate')[0]}. No fixed-rate phase in this scenario` },
    databases: sides.map((s) => ({ engine: `rung 10, ${s.name}, each database node at ${dbCpu} core`, version: 'PostgreSQL 15 (system)', pid: undefined })),
    servers: sides.map((s) => ({ name: s.name, label: `ladder up --rung 10 --shards ${s.name[0]} --replicas 0 --db-cpu ${dbCpu}`, pid: s.topology.nodes('haproxy')[0]?.pid ?? 0 })),
    saturation: { measurements: [], medians: [] },
    fixedRate: { rate: 0, rateSource: 'not measured: this scenario compares write throughput', measurements: [] },
    memory: {},
    ratios: { '2 shards / 1 shard (creates/s)': ratio },
    figures,
    targets,
    notes,
  });
}
