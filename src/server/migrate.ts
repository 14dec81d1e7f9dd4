// Applies the app's migrations to a database: what `ladder migrate` runs (with DATABASE_URL),
// and so how the launcher and the lab create the schema without importing the app.
// LADDER_SHARD_SCHEMA=1 (rung 10, a shard cluster): the shard's migrations after the app's.
// DATABASE_SHARDS set (rung 10 deployed: the image's entrypoint runs this): DATABASE_URL is the
// catalog, which gets the app's migrations and the first shard map; every cluster gets the
// app's and the shard's migrations and its owned logical shards (what the launcher does locally).
import pg from 'pg';
import { MIGRATIONS_DIR, SHARD_MIGRATIONS_DIR } from '../app/links-app.ts';
import { checkShards } from '../kit/config.ts';
import { migrate } from '../kit/db/migrator.ts';
import { initCatalog, initOwnedLogical } from '../kit/db/shard-map.ts';

async function withClient(url: string, fn: (c: pg.Client) => Promise<unknown>): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined); // a lost connection fails the statement too, which is thrown
  await c.connect();
  try {
    await fn(c);
  } finally {
    await c.end();
  }
}

export async function migrateDatabase(url: string, log: (msg: string) => void, shard = process.env.LADDER_SHARD_SCHEMA === '1'): Promise<void> {
  await migrate(url, MIGRATIONS_DIR, log);
  if (shard) await migrate(url, SHARD_MIGRATIONS_DIR, log);
  const clusters = shard ? [] : checkShards(process.env.DATABASE_SHARDS);
  if (clusters.length === 0) return;
  const names = clusters.map((c) => c.name);
  for (const c of clusters) {
    await migrate(c.primaryUrl, MIGRATIONS_DIR, log);
    await migrate(c.primaryUrl, SHARD_MIGRATIONS_DIR, log);
    await withClient(c.primaryUrl, (db) => initOwnedLogical(db, c.name, names));
  }
  await withClient(url, (db) => initCatalog(db, clusters.map((c) => ({ name: c.name, primary: c.primaryUrl, replicas: c.replicaUrls }))));
  log(`shard map ready over ${names.join(', ')}`);
}
