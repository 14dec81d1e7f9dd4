// Rung 10's database nodes: the catalog (a Postgres of its own: the shard map, users) and S
// shard clusters, each a primary (`shard1`, ...) with R streaming replicas
// (`shard1-replica1`, ...). Every node carries its cluster in `shard`. The web servers get
// the catalog as DATABASE_URL and the clusters in DATABASE_SHARDS; the catalog's first map
// spreads the logical shards evenly, in contiguous ranges, over the clusters. What
// `ladder shards` needs to reach them is kept in <state>/up/shards.json (0600: passwords).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { initCatalog } from '../kit/db/shard-map.ts';
import type { Topology } from '../topology/topology.ts';
import type { ComponentContext } from './component.ts';
import { PostgresComponent, REPLICATION_SETTINGS } from './components/postgres.ts';
import { ReplicaComponent } from './components/replica.ts';
import { systemBinDir } from './postgres-server.ts';
import { ensureDir, freePort } from './state-dir.ts';
import { logFile, upDir } from './up-state.ts';

export const CATALOG = 'catalog';

export interface ShardsFile {
  catalog: string;
  clusters: { name: string; primary: string; replicas: string[] }[];
}

export function shardsFilePath(stateDir: string): string {
  return path.join(upDir(stateDir), 'shards.json');
}

export async function planShards(t: Readonly<Topology>, ctx: ComponentContext, cpu: number | undefined) {
  const dir = (name: string) => ensureDir(path.join(ctx.dir, name));
  const binDir = systemBinDir();
  const settings = { ...REPLICATION_SETTINGS, max_connections: t.database.maxConnections };
  const names = Array.from({ length: t.shards }, (_, i) => `shard${i + 1}`);
  const catalog = new PostgresComponent(ctx, {
    name: CATALOG,
    shard: CATALOG,
    dataDir: path.join(dir(CATALOG), 'pgdata'),
    port: await freePort(),
    logFile: logFile(t.stateDir, CATALOG),
    settings,
    binDir,
    ...(cpu !== undefined ? { cpu } : {}),
    afterMigrations: async (url) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await initCatalog(client, names);
      } finally {
        await client.end();
      }
    },
  });
  const primaries: PostgresComponent[] = [];
  const replicas: ReplicaComponent[] = [];
  const clusters: { name: string; primary: PostgresComponent; replicas: ReplicaComponent[] }[] = [];
  for (const name of names) {
    const primary = new PostgresComponent(ctx, {
      name,
      shard: name,
      shardSchema: true,
      dataDir: path.join(dir(name), 'pgdata'),
      port: await freePort(),
      logFile: logFile(t.stateDir, name),
      settings,
      binDir,
      ...(cpu !== undefined ? { cpu } : {}),
    });
    const own: ReplicaComponent[] = [];
    for (let j = 1; j <= t.database.replicas; j++) {
      const rname = `${name}-replica${j}`;
      own.push(
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
    primaries.push(primary);
    replicas.push(...own);
    clusters.push({ name, primary, replicas: own });
  }
  const file: ShardsFile = {
    catalog: catalog.databaseUrl,
    clusters: clusters.map((c) => ({ name: c.name, primary: c.primary.databaseUrl, replicas: c.replicas.map((r) => r.databaseUrl) })),
  };
  writeFileSync(shardsFilePath(t.stateDir), JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
  return {
    components: [catalog, ...primaries, ...replicas],
    pgNodes: [catalog, ...primaries, ...replicas],
    env: {
      DATABASE_URL: catalog.databaseUrl,
      DATABASE_SHARDS: file.clusters.map((c) => `${c.name}=${[c.primary, ...c.replicas].join('|')}`).join(';'),
    } as Record<string, string | undefined>,
  };
}
