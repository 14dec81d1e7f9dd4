// Applies the app's migrations to a database: what `ladder migrate` runs (with DATABASE_URL),
// and so how the launcher and the lab create the schema without importing the app.
import { MIGRATIONS_DIR } from '../app/links-app.ts';
import { migrate } from '../kit/db/migrator.ts';

export async function migrateDatabase(url: string, log: (msg: string) => void): Promise<void> {
  await migrate(url, MIGRATIONS_DIR, log);
}
