// Rung 10: the shard map, logical shard -> cluster, versioned and kept in the catalog
// database (tables created by CATALOG_SCHEMA). Every web process caches it and polls its
// version (SHARD_MAP_POLL_MS); a change (resharding) bumps the version and is loaded whole.
import pg from 'pg';
import { LOGICAL_SHARDS } from './shard-key.ts';

export const CATALOG_SCHEMA = `
create table if not exists shard_clusters (
  name         text primary key check (name ~ '^[a-z][a-z0-9]{0,15}$'),
  -- How web servers reach a cluster added while they run (resharding to a new cluster).
  primary_url  text,
  replica_urls text[] not null default '{}'
);
-- Each web process's map version, written when it loads one and every second: a move waits
-- until every live process routes by the new map before writes of a moved shard resume.
create table if not exists shard_map_seen (
  process text primary key,
  version bigint not null,
  seen_at timestamptz not null default now()
);
create table if not exists shard_map (
  logical_shard integer primary key check (logical_shard >= 0 and logical_shard < ${LOGICAL_SHARDS}),
  cluster text not null references shard_clusters (name)
);
create table if not exists shard_map_version (
  one boolean primary key default true check (one),
  version bigint not null,
  logical_shards integer not null
);`;

/** The catalog's NOTIFY channel: a map change, for processes to reload at once rather than at their next poll. */
export const MAP_CHANNEL = 'ladder_shard_map';

export interface ShardMap {
  readonly version: number;
  readonly logicalShards: number;
  /** Index: logical shard; value: the cluster that holds it. */
  readonly clusterOf: readonly string[];
}

/** A range of logical shards, both ends included, as `ladder shards` shows them. */
export type Range = [number, number];

/** Contiguous, even ranges: cluster i of n gets logical shards [i*L/n, (i+1)*L/n). */
export function evenAssignment(clusters: readonly string[], logical = LOGICAL_SHARDS): string[] {
  return Array.from({ length: logical }, (_, l) => clusters[Math.floor((l * clusters.length) / logical)]!);
}

/** Each cluster's logical shards as ranges. */
export function rangesOf(map: ShardMap): Map<string, Range[]> {
  const out = new Map<string, Range[]>();
  map.clusterOf.forEach((c, l) => {
    const list = out.get(c) ?? [];
    const last = list[list.length - 1];
    if (last && last[1] === l - 1) last[1] = l;
    else list.push([l, l]);
    out.set(c, list);
  });
  return out;
}

/** What the catalog's statements need: a pg.Client, or a Database's read. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * Creates the catalog's tables and, when no map exists yet, the first one (version 1: even
 * ranges over `clusters`). An existing map is kept: the catalog, not the launcher's flags,
 * says where data lives once there is data.
 */
export interface ClusterEntry {
  name: string;
  primary: string;
  replicas: readonly string[];
}

/** Records (or updates) how to reach a cluster. */
export async function registerCluster(db: Queryable, c: ClusterEntry): Promise<void> {
  await db.query(
    `insert into shard_clusters (name, primary_url, replica_urls) values ($1, $2, $3)
     on conflict (name) do update set primary_url = excluded.primary_url, replica_urls = excluded.replica_urls`,
    [c.name, c.primary, c.replicas],
  );
}

/** Every cluster the catalog knows, with how to reach it. */
export async function loadClusters(db: Queryable): Promise<ClusterEntry[]> {
  const r = (await db.query('select name, primary_url, replica_urls from shard_clusters where primary_url is not null order by name')) as {
    rows: { name: string; primary_url: string; replica_urls: string[] }[];
  };
  return r.rows.map((x) => ({ name: x.name, primary: x.primary_url, replicas: x.replica_urls }));
}

export async function initCatalog(db: Queryable, entries: readonly ClusterEntry[]): Promise<ShardMap> {
  const clusters = entries.map((e) => e.name);
  await db.query('select pg_advisory_lock(7102025)');
  try {
    await db.query(CATALOG_SCHEMA);
    const existing = await db.query('select version from shard_map_version');
    if (existing.rows.length === 0) {
      const assignment = evenAssignment(clusters);
      await db.query('begin');
      await db.query('insert into shard_clusters (name) select unnest($1::text[]) on conflict do nothing', [clusters]);
      await db.query('insert into shard_map (logical_shard, cluster) select l - 1, c from unnest($1::text[]) with ordinality as a(c, l)', [assignment]);
      await db.query('insert into shard_map_version (version, logical_shards) values (1, $1)', [LOGICAL_SHARDS]);
      await db.query('commit');
    }
    for (const e of entries) await registerCluster(db, e);
  } finally {
    await db.query('select pg_advisory_unlock(7102025)');
  }
  return (await loadShardMap(db))!;
}

/** The map as the catalog holds it now; undefined when the catalog has none. */
export async function loadShardMap(db: Queryable): Promise<ShardMap | undefined> {
  const v = await db.query('select version, logical_shards from shard_map_version');
  const head = v.rows[0] as { version: string; logical_shards: number } | undefined;
  if (!head) return undefined;
  const rows = (await db.query('select logical_shard, cluster from shard_map order by logical_shard')) as { rows: { logical_shard: number; cluster: string }[] };
  const clusterOf = new Array<string>(head.logical_shards);
  for (const r of rows.rows) clusterOf[r.logical_shard] = r.cluster;
  if (rows.rows.length !== head.logical_shards || clusterOf.some((c) => c === undefined)) {
    throw new Error(`the shard map of version ${head.version} has ${rows.rows.length} of ${head.logical_shards} logical shards`);
  }
  return Object.freeze({ version: Number(head.version), logicalShards: head.logical_shards, clusterOf: Object.freeze(clusterOf) });
}

/** Only the version, for the cheap poll. */
export async function shardMapVersion(db: Queryable): Promise<number | undefined> {
  const v = (await db.query('select version from shard_map_version')) as { rows: { version: string }[] };
  return v.rows[0] ? Number(v.rows[0].version) : undefined;
}

/** A web process routes by `version` now (shard_map_seen; a move waits on these). */
export async function reportSeen(db: Queryable, process: string, version: number): Promise<void> {
  await db.query(
    `insert into shard_map_seen (process, version, seen_at) values ($1, $2, now())
     on conflict (process) do update set version = excluded.version, seen_at = now()`,
    [process, version],
  );
}

/** Live processes (seen within `freshMs`) that route by a version older than `version`. */
export async function processesBehind(db: Queryable, version: number, freshMs: number): Promise<string[]> {
  const r = (await db.query(
    `select process from shard_map_seen where version < $1 and seen_at > now() - make_interval(secs => $2::double precision / 1000)`,
    [version, freshMs],
  )) as { rows: { process: string }[] };
  return r.rows.map((x) => x.process);
}

/**
 * Calls `onChange` on every map change the catalog announces (NOTIFY on MAP_CHANNEL), on a
 * connection of its own (LISTEN holds it). A lost connection is logged; the poll, which also
 * reloads, goes on. Returns how to stop.
 */
export async function listenForMapChanges(url: string, onChange: () => void, log: { warn(o: object, m: string): void }): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: url, application_name: 'ladder-shard-map' });
  client.on('error', (err) => log.warn({ error: err.message }, 'shard map listener lost; the poll goes on'));
  client.on('notification', onChange);
  await client.connect();
  await client.query(`listen ${MAP_CHANNEL}`);
  return () => client.end();
}

/**
 * A shard cluster's owned logical shards (migrations-shard/1002_fence.sql), the first time it
 * is set up: its ranges of the first map over `initial` (none for a cluster added later). -1
 * records that the list was made: a cluster that gave every shard away must not take them back
 * at the next start.
 */
export async function initOwnedLogical(db: Queryable, name: string, initial: readonly string[]): Promise<void> {
  const owned = evenAssignment(initial).flatMap((c, l) => (c === name ? [l] : []));
  await db.query(
    `insert into owned_logical (logical_shard) select unnest($1::integer[])
     where not exists (select 1 from owned_logical where logical_shard = -1) on conflict do nothing`,
    [[-1, ...owned]],
  );
}
