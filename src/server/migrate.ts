// Applies the app's migrations to a database: what `ladder migrate` runs (with DATABASE_URL),
// and so how the launcher and the lab create the schema without importing the app.
// LADDER_SHARD_SCHEMA=1 (rung 10, a shard cluster): the shard's migrations after the app's.
import { MIGRATIONS_DIR, SHARD_MIGRATIONS_DIR } from '../app/links-app.ts';
import { migrate } from '../kit/db/migrator.ts';

export async function migrateDatabase(url: string, log: (msg: string) => void, shard = process.env.LADDER_SHARD_SCHEMA === '1'): Promise<void> {
  await migrate(url, MIGRATIONS_DIR, log);
  if (shard) await migrate(url, SHARD_MIGRATIONS_DIR, log);
}
