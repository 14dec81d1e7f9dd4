// `ladder reshard --to S2 [--json]`: moves whole logical shards between clusters while traffic
// runs, so that S2 clusters share them evenly. The protocol and why its pause is bounded:
// docs/decisions.md, "Rung 10". In short, for each source -> target pair:
//   1. plan:   which logical shards move where (kept in the catalog: reshard_run);
//   2. clusters: new clusters are started by the supervisor (scale.json, SIGUSR2);
//   3. copy:   a publication on the source with row filters on the moving logical shards, a
//              subscription on the target (initial copy, then the change stream);
//   4. switch: per batch of logical shards, freeze (an exclusive advisory lock on the source,
//              which every write takes shared in its fence: writes wait), write a marker and
//              wait until the target has it (it then has every earlier change), compare row
//              counts and checksums, hand ownership to the target, switch the map (version+1),
//              wait until every web process routes by it (and the target's replicas have
//              replayed), release: the waiting writes find the shard gone and go to the target;
//   5. cleanup: drop the subscriptions and publications, delete the moved rows from the sources.
// Every step is recorded in the catalog, so a killed command run again resumes where it was.
// Progress goes to stderr; with --json the last stdout line is the report.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { LadderFailure } from '../kit/errors.ts';
import { MAP_CHANNEL, processesBehind } from '../kit/db/shard-map.ts';
import { ConfigError } from '../topology/config-error.ts';
import { MAX_SHARDS } from '../topology/topology.ts';
import { readShardsFile } from './shards-command.ts';
import type { ShardsFile } from './shard-plan.ts';
import { lockHolder } from './state-dir.ts';
import { readUpState, upDir } from './up-state.ts';

/** Logical shards frozen and switched together: fewer map versions, the same pause per shard. */
const BATCH = 16;
/** A process not seen for this long is gone; a move does not wait for it. */
const SEEN_FRESH_MS = 3000;
const FENCE_LOCK = 7102026;

type Say = (line: string) => void;

interface Move {
  logical: number;
  from: string;
  to: string;
}

interface Run {
  target: number;
  from: number;
  step: 'clusters' | 'copy' | 'switch' | 'cleanup' | 'done';
  moves: Move[];
  done: number[];
  pauses: { logicalShard: number; ms: number }[];
  rowsMoved: number;
  rowsTotal: number;
}

export interface ReshardReport {
  from: number;
  to: number;
  rowsMoved: number;
  rowsTotal: number;
  pauses: { logicalShard: number; ms: number }[];
}

const RUN_SCHEMA = `create table if not exists reshard_run (
  one boolean primary key default true check (one),
  run jsonb not null,
  updated_at timestamptz not null default now()
)`;

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined); // a lost connection fails the statement in flight, which is thrown
  await c.connect();
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Even shares of the logical shards over `names`; shards stay where they are while their cluster is under its share. */
export function planMoves(current: readonly string[], names: readonly string[]): Move[] {
  const n = current.length;
  const share = new Map(names.map((c, i) => [c, Math.floor(n / names.length) + (i < n % names.length ? 1 : 0)]));
  const kept = new Map<string, number>();
  const movable: number[] = [];
  // Keep the lowest logical shards of each cluster, move its highest: ranges stay contiguous.
  current.forEach((c, l) => {
    const k = kept.get(c) ?? 0;
    if (share.has(c) && k < share.get(c)!) kept.set(c, k + 1);
    else movable.push(l);
  });
  const moves: Move[] = [];
  for (const c of names) {
    let need = share.get(c)! - (kept.get(c) ?? 0);
    while (need-- > 0) {
      const l = movable.shift()!;
      moves.push({ logical: l, from: current[l]!, to: c });
    }
  }
  return moves;
}

const pubName = (from: string, to: string) => `reshard_${from}_${to}`;

export async function reshard(stateDir: string, to: number, say: Say): Promise<ReshardReport> {
  if (!Number.isInteger(to) || to < 1 || to > MAX_SHARDS) throw new ConfigError('to', `"${to}" clusters`, `use 1 to ${MAX_SHARDS}`);
  if (lockHolder(upDir(stateDir)) === undefined) throw new LadderFailure('NOT_RUNNING', 'nothing is running: start a topology with `ladder up --rung 10`');
  let files = readShardsFile(stateDir);
  const catalog = await connect(files.catalog);
  try {
    await catalog.query(RUN_SCHEMA);
    let run = (await catalog.query<{ run: Run }>('select run from reshard_run')).rows[0]?.run;
    if (run && run.step !== 'done' && run.target !== to) {
      throw new ConfigError('to', `a reshard to ${run.target} clusters is under way`, `run \`ladder reshard --to ${run.target}\` to finish it first`);
    }
    const save = async (r: Run) => {
      await catalog.query('insert into reshard_run (run) values ($1) on conflict (one) do update set run = excluded.run, updated_at = now()', [JSON.stringify(r)]);
    };
    if (!run || run.step === 'done') {
      const current = (await catalog.query<{ cluster: string }>('select cluster from shard_map order by logical_shard')).rows.map((r) => r.cluster);
      const names = Array.from({ length: to }, (_, i) => `shard${i + 1}`);
      const moves = planMoves(current, names);
      const rowsTotal = await countRows(files, undefined);
      run = { target: to, from: new Set(current).size, step: 'clusters', moves, done: [], pauses: [], rowsMoved: 0, rowsTotal };
      await save(run);
      say(`plan: ${moves.length} of ${current.length} logical shards move (${new Set(current).size} -> ${to} clusters)`);
    } else say(`resuming the reshard to ${to} clusters at step ${run.step} (${run.done.length}/${run.moves.length} logical shards switched)`);

    if (run.step === 'clusters') {
      files = await ensureClusters(stateDir, to, files, say);
      // Every web process opens the new clusters' pools now, not during a freeze.
      const version = Number((await catalog.query<{ version: string }>('update shard_map_version set version = version + 1 returning version')).rows[0]!.version);
      await catalog.query(`notify ${MAP_CHANNEL}`);
      await waitRouted(catalog, version);
      run.step = 'copy';
      await save(run);
    }
    const pairs = pairsOf(run.moves);
    if (run.step === 'copy') {
      await startCopies(files, pairs, say);
      await waitCopied(files, pairs, say);
      run.step = 'switch';
      await save(run);
    }
    if (run.step === 'switch') {
      await switchAll(files, catalog, run, save, say);
      run.step = 'cleanup';
      await save(run);
    }
    if (run.step === 'cleanup') {
      await cleanup(files, pairs, run, say);
      run.step = 'done';
      await save(run);
    }
    say(`done: ${run.rowsMoved} of ${run.rowsTotal} rows moved, ${run.moves.length} logical shards`);
    return { from: run.from, to: run.target, rowsMoved: run.rowsMoved, rowsTotal: run.rowsTotal, pauses: run.pauses };
  } finally {
    await catalog.end();
  }
}

function pairsOf(moves: readonly Move[]): { from: string; to: string; logicals: number[] }[] {
  const m = new Map<string, { from: string; to: string; logicals: number[] }>();
  for (const mv of moves) {
    const k = `${mv.from}>${mv.to}`;
    const p = m.get(k) ?? { from: mv.from, to: mv.to, logicals: [] };
    p.logicals.push(mv.logical);
    m.set(k, p);
  }
  return [...m.values()];
}

const clusterUrl = (files: ShardsFile, name: string) => {
  const c = files.clusters.find((x) => x.name === name);
  if (!c) throw new LadderFailure('NOT_RUNNING', `cluster ${name} is not running`);
  return c;
};

async function countRows(files: ShardsFile, logicals: readonly number[] | undefined): Promise<number> {
  let n = 0;
  for (const c of files.clusters) {
    const db = await connect(c.primary);
    try {
      const r = logicals
        ? await db.query<{ n: string }>('select count(*) as n from links where logical_shard = any($1::int[])', [logicals])
        : await db.query<{ n: string }>('select count(*) as n from links');
      n += Number(r.rows[0]!.n);
    } finally {
      await db.end();
    }
  }
  return n;
}

/** Asks the supervisor for clusters up to `to` and waits until they are ready and recorded. */
async function ensureClusters(stateDir: string, to: number, files: ShardsFile, say: Say): Promise<ShardsFile> {
  const want = Array.from({ length: to }, (_, i) => `shard${i + 1}`);
  const missing = () => want.filter((n) => !readShardsFile(stateDir).clusters.some((c) => c.name === n));
  if (missing().length === 0) return files;
  say(`starting cluster(s) ${missing().join(', ')}`);
  const supervisor = lockHolder(upDir(stateDir))!;
  writeFileSync(path.join(upDir(stateDir), 'scale.json'), JSON.stringify({ shards: to }));
  process.kill(supervisor, 'SIGUSR2');
  const deadline = performance.now() + 180_000;
  for (;;) {
    const nodes = readUpState(stateDir)?.nodes ?? [];
    const ready = want.every((n) => nodes.filter((x) => x.shard === n).length > 0 && nodes.filter((x) => x.shard === n).every((x) => x.state === 'ready'));
    if (ready && missing().length === 0) return readShardsFile(stateDir);
    if (performance.now() > deadline) throw new LadderFailure('COMPONENT_FAILED', `cluster(s) ${missing().join(', ')} not ready within 180 s; see \`ladder logs supervisor\``);
    await sleep(250);
  }
}

/** Row filters: a logical shard's rows of each table (columns in the replica identity: full). */
function publicationSql(name: string, logicals: readonly number[]): string {
  const list = logicals.join(',');
  return `create publication ${name} for
    table links where (logical_shard in (${list})),
    table link_clicks_daily where (((link_id >> 13) & 1023) in (${list})),
    table owner_links where (logical_shard in (${list})),
    table reshard_marker where (logical_shard in (${list}))`;
}

async function startCopies(files: ShardsFile, pairs: ReturnType<typeof pairsOf>, say: Say): Promise<void> {
  for (const p of pairs) {
    const name = pubName(p.from, p.to);
    const src = await connect(clusterUrl(files, p.from).primary);
    const tgt = await connect(clusterUrl(files, p.to).primary);
    try {
      if ((await src.query('select 1 from pg_publication where pubname = $1', [name])).rows.length === 0) await src.query(publicationSql(name, p.logicals));
      if ((await tgt.query('select 1 from pg_subscription where subname = $1', [name])).rows.length === 0) {
        const conn = clusterUrl(files, p.from).primary.replace(/'/g, "''");
        await tgt.query(`create subscription ${name} connection '${conn}' publication ${name} with (copy_data = true)`);
      }
      say(`copy ${p.from} -> ${p.to}: ${p.logicals.length} logical shards subscribed`);
    } finally {
      await src.end();
      await tgt.end();
    }
  }
}

async function waitCopied(files: ShardsFile, pairs: ReturnType<typeof pairsOf>, say: Say): Promise<void> {
  let last = 0;
  for (;;) {
    let pending = 0;
    let copied = 0;
    for (const p of pairs) {
      const tgt = await connect(clusterUrl(files, p.to).primary);
      try {
        const r = await tgt.query<{ n: string }>(
          `select count(*) as n from pg_subscription_rel r join pg_subscription s on s.oid = r.srsubid where s.subname = $1 and r.srsubstate not in ('r', 's')`,
          [pubName(p.from, p.to)],
        );
        pending += Number(r.rows[0]!.n);
        copied += Number((await tgt.query<{ n: string }>('select count(*) as n from links where logical_shard = any($1::int[])', [p.logicals])).rows[0]!.n);
      } finally {
        await tgt.end();
      }
    }
    if (Date.now() - last > 1000) {
      say(`copy: ${copied} links on their new clusters, ${pending} table(s) still in their initial copy`);
      last = Date.now();
    }
    if (pending === 0) return;
    await sleep(200);
  }
}

/** A logical shard set's rows as counts and checksums, per table (ordered, so equal data gives equal sums). */
async function fingerprint(db: pg.Client, logicals: readonly number[]): Promise<string> {
  const r = await db.query<{ f: string }>(
    `select concat_ws('/',
       (select count(*) || ':' || md5(coalesce(string_agg(l::text, '|' order by l.id), '')) from links l where l.logical_shard = any($1::int[])),
       (select count(*) || ':' || md5(coalesce(string_agg(d::text, '|' order by d.link_id, d.day), '')) from link_clicks_daily d where ((d.link_id >> 13) & 1023) = any($1::int[])),
       (select count(*) || ':' || md5(coalesce(string_agg(o::text, '|' order by o.owner_id, o.link_id), '')) from owner_links o where o.logical_shard = any($1::int[]))
     ) as f`,
    [logicals],
  );
  return r.rows[0]!.f;
}

/** Until every live web process routes by `version` (5 s at most: a process that does not answer by then is treated as gone). */
async function waitRouted(catalog: pg.Client, version: number): Promise<void> {
  const deadline = performance.now() + 5000;
  while ((await processesBehind(catalog, version, SEEN_FRESH_MS)).length > 0 && performance.now() < deadline) await sleep(5);
}

async function switchAll(files: ShardsFile, catalog: pg.Client, run: Run, save: (r: Run) => Promise<void>, say: Say): Promise<void> {
  const pending = run.moves.filter((m) => !run.done.includes(m.logical));
  const pairs = pairsOf(pending);
  for (const p of pairs) {
    const src = await connect(clusterUrl(files, p.from).primary);
    const tgt = await connect(clusterUrl(files, p.to).primary);
    const replicas = await Promise.all(clusterUrl(files, p.to).replicas.map(connect));
    try {
      for (let i = 0; i < p.logicals.length; i += BATCH) {
        const batch = p.logicals.slice(i, i + BATCH).sort((a, b) => a - b);
        // Freeze: writes already running finish first; new ones wait in their fence.
        for (const l of batch) await src.query('select pg_advisory_lock($1, $2)', [FENCE_LOCK, l]);
        const frozen = performance.now();
        const steps: number[] = [];
        const mark = () => steps.push(Math.round(performance.now() - frozen));
        try {
          const token = randomBytes(8).toString('hex');
          await src.query(
            `insert into reshard_marker (logical_shard, token) select unnest($1::int[]), $2 on conflict (logical_shard) do update set token = excluded.token`,
            [batch, token],
          );
          // The target has every change made before the marker once it has the marker.
          for (;;) {
            const r = await tgt.query<{ n: string }>('select count(*) as n from reshard_marker where logical_shard = any($1::int[]) and token = $2', [batch, token]);
            if (Number(r.rows[0]!.n) === batch.length) break;
            await sleep(2);
          }
          mark();
          const [a, b] = await Promise.all([fingerprint(src, batch), fingerprint(tgt, batch)]);
          mark();
          if (a !== b) throw new LadderFailure('COMPONENT_FAILED', `logical shards ${batch.join(',')}: ${p.to} differs from ${p.from} (${b} vs ${a}); nothing was switched`);
          // Ownership to the target, then away from the source: a write between the two steps
          // waits (the lock); one routed by an old map after them fails over to the target.
          await tgt.query('insert into owned_logical (logical_shard) select unnest($1::int[]) on conflict do nothing', [batch]);
          await src.query('delete from owned_logical where logical_shard = any($1::int[])', [batch]);
          // The target's replicas serve reads of these shards from now on: they must have the copy.
          const lsn = (await tgt.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
          for (const rep of replicas) {
            while (!(await rep.query<{ ok: boolean }>('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [lsn])).rows[0]!.ok) await sleep(2);
          }
          mark();
          await catalog.query('begin');
          await catalog.query('update shard_map set cluster = $2 where logical_shard = any($1::int[])', [batch, p.to]);
          const version = Number((await catalog.query<{ version: string }>('update shard_map_version set version = version + 1 returning version')).rows[0]!.version);
          await catalog.query('commit');
          await catalog.query(`notify ${MAP_CHANNEL}`);
          mark();
          // Every live web process routes by the new map before any write of these shards resumes.
          await waitRouted(catalog, version);
          mark();
        } finally {
          await src.query('select pg_advisory_unlock_all()');
        }
        const ended = performance.now();
        const rows = Number((await tgt.query<{ n: string }>('select count(*) as n from links where logical_shard = any($1::int[])', [batch])).rows[0]!.n);
        run.rowsMoved += rows;
        run.done.push(...batch);
        for (const l of batch) run.pauses.push({ logicalShard: l, ms: Math.round((ended - frozen) * 10) / 10 });
        await save(run);
        say(`switch ${p.from} -> ${p.to}: ${run.done.length}/${run.moves.length} logical shards, pause ${Math.round(ended - frozen)} ms (marker, checksums, replicas, map, routed at ${steps.join('/')} ms)`);
      }
    } finally {
      await src.end();
      await tgt.end();
      await Promise.all(replicas.map((r) => r.end()));
    }
  }
}

async function cleanup(files: ShardsFile, pairs: ReturnType<typeof pairsOf>, run: Run, say: Say): Promise<void> {
  for (const p of pairs) {
    const name = pubName(p.from, p.to);
    const src = await connect(clusterUrl(files, p.from).primary);
    const tgt = await connect(clusterUrl(files, p.to).primary);
    try {
      // The subscription first: deleting on the source while it runs would delete on the target too.
      if ((await tgt.query('select 1 from pg_subscription where subname = $1', [name])).rows.length > 0) await tgt.query(`drop subscription ${name}`);
      await src.query(`drop publication if exists ${name}`);
      await src.query('delete from links where logical_shard = any($1::int[])', [p.logicals]);
      await src.query('delete from link_clicks_daily where ((link_id >> 13) & 1023) = any($1::int[])', [p.logicals]);
      await src.query('delete from owner_links where logical_shard = any($1::int[])', [p.logicals]);
      await src.query('delete from reshard_marker where logical_shard = any($1::int[])', [p.logicals]);
      await tgt.query('delete from reshard_marker where logical_shard = any($1::int[])', [p.logicals]);
      say(`cleanup ${p.from} -> ${p.to}: the moved rows are gone from ${p.from}`);
    } finally {
      await src.end();
      await tgt.end();
    }
  }
  void run;
}

export async function reshardCommand(stateDir: string, to: number, json: boolean): Promise<number> {
  const report = await reshard(stateDir, to, (line) => process.stderr.write(`ladder: reshard: ${line}\n`));
  if (json) process.stdout.write(JSON.stringify(report) + '\n');
  else {
    const ms = report.pauses.map((p) => p.ms).sort((a, b) => a - b);
    const p99 = ms.length ? ms[Math.min(ms.length - 1, Math.ceil(ms.length * 0.99) - 1)] : 0;
    process.stdout.write(`${report.from} -> ${report.to} clusters: ${report.rowsMoved} of ${report.rowsTotal} rows moved; write pause p99 ${p99} ms over ${ms.length} logical shards\n`);
  }
  return 0;
}
