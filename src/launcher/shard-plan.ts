// Rung 10's database nodes: the catalog (a Postgres of its own: the shard map, users) and S
// shard clusters, each a primary (`shard1`, ...) with R streaming replicas
// (`shard1-replica1`, ...). Every node carries its cluster in `shard`. The web servers get
// the catalog as DATABASE_URL and the clusters in DATABASE_SHARDS; the catalog's first map
// spreads the logical shards evenly, in contiguous ranges, over the clusters, and records how
// to reach each cluster (a cluster added later by `ladder reshard` is found there). What
// `ladder shards` and `ladder reshard` need to reach them is kept in <state>/up/shards.json
// (0600: passwords).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { initCatalog, initOwnedLogical, registerCluster, type ClusterEntry } from '../kit/db/shard-map.ts';
import type { Topology } from '../topology/topology.ts';
import type { Component, ComponentContext } from './component.ts';
import { PostgresComponent, REPLICATION_SETTINGS } from './components/postgres.ts';
import { ReplicaComponent } from './components/replica.ts';
import { systemBinDir } from './postgres-server.ts';
import { ensureDir, freePort } from './state-dir.ts';
import { logFile, upDir } from './up-state.ts';

export const CATALOG = 'catalog';

export interface ShardsFile {
  catalog: string;
  clusters: ClusterEntry[];
}

export function shardsFilePath(stateDir: string): string {
  return path.join(upDir(stateDir), 'shards.json');
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined); // a lost connection fails the statement too, which is thrown
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}


export async function planShards(t: Readonly<Topology>, ctx: ComponentContext, cpu: number | undefined) {
  const dir = (name: string) => ensureDir(path.join(ctx.dir, name));
  const binDir = systemBinDir();
  // wal_level logical: a move copies a logical shard's rows by logical replication.
  const settings = { ...REPLICATION_SETTINGS, wal_level: 'logical', max_connections: t.database.maxConnections };
  const names = Array.from({ length: t.shards }, (_, i) => `shard${i + 1}`);
  const file = shardsFilePath(t.stateDir);
  const catalog = new PostgresComponent(ctx, {
    name: CATALOG,
    shard: CATALOG,
    dataDir: path.join(dir(CATALOG), 'pgdata'),
    port: await freePort(),
    logFile: logFile(t.stateDir, CATALOG),
    settings,
    binDir,
    ...(cpu !== undefined ? { cpu } : {}),
    afterMigrations: (url) => withClient(url, (c) => initCatalog(c, clusters.map(entryOf)).then(() => undefined)),
  });

  /** A cluster's primary and replicas; `later`: added while the topology runs (`ladder reshard`). */
  const cluster = async (name: string, later: boolean) => {
    const primary: PostgresComponent = new PostgresComponent(ctx, {
      name,
      shard: name,
      shardSchema: true,
      dataDir: path.join(dir(name), 'pgdata'),
      port: await freePort(),
      logFile: logFile(t.stateDir, name),
      settings,
      binDir,
      ...(cpu !== undefined ? { cpu } : {}),
      afterMigrations: async (url) => {
        await withClient(url, (c) => initOwnedLogical(c, name, names));
        if (later) {
          await withClient(catalog.databaseUrl, (c) => registerCluster(c, entryOf(c0)));
          saveFile([...readShardsFile().clusters.filter((x) => x.name !== name), entryOf(c0)]);
        }
      },
    });
    const replicas: ReplicaComponent[] = [];
    for (let j = 1; j <= t.database.replicas; j++) {
      const rname = `${name}-replica${j}`;
      replicas.push(
        new ReplicaComponent(ctx, {
          name: rname,
          port: await freePort(),
          dataDir: path.join(dir(rname), 'pgdata'),
          logFile: logFile(t.stateDir, rname),
          primary,
          ...(t.database.replicaDelayMs > 0 ? { applyDelayMs: t.database.replicaDelayMs } : {}),
          ...(cpu !== undefined ? { cpu } : {}),
        }),
      );
    }
    const c0 = { name, primary, replicas };
    return c0;
  };
  const entryOf = (c: { name: string; primary: PostgresComponent; replicas: ReplicaComponent[] }): ClusterEntry => ({
    name: c.name,
    primary: c.primary.databaseUrl,
    replicas: c.replicas.map((r) => r.databaseUrl),
  });
  const saveFile = (entries: ClusterEntry[]) => {
    const body: ShardsFile = { catalog: catalog.databaseUrl, clusters: entries.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true })) };
    writeFileSync(file, JSON.stringify(body, null, 2) + '\n', { mode: 0o600 });
  };
  const readShardsFile = (): ShardsFile => (existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ShardsFile) : { catalog: catalog.databaseUrl, clusters: [] });

  const clusters = await Promise.all(names.map((n) => cluster(n, false)));
  saveFile(clusters.map(entryOf));
  return {
    components: [catalog, ...clusters.flatMap((c) => [c.primary, ...c.replicas])] as (PostgresComponent | ReplicaComponent)[],
    pgNodes: [catalog, ...clusters.flatMap((c) => [c.primary, ...c.replicas])],
    env: {
      DATABASE_URL: catalog.databaseUrl,
      DATABASE_SHARDS: clusters.map((c) => `${c.name}=${[c.primary.databaseUrl, ...c.replicas.map((r) => r.databaseUrl)].join('|')}`).join(';'),
    } as Record<string, string | undefined>,
    /** A new cluster's nodes (primary first), for `ladder reshard --to` more clusters. */
    newCluster: async (name: string): Promise<Component[]> => {
      const c = await cluster(name, true);
      return [c.primary, ...c.replicas];
    },
  };
}
