// Where the app's migration files are, as data. Only the PGlite reference needs them: it
// runs Postgres inside its own process, where `ladder migrate` cannot reach, so it applies
// the same SQL files itself. The lab knows their path, not the app's modules.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** src/app/migrations beside src/lab (or its twin in a compiled tree), else the checkout's src/app/migrations. */
export function appMigrationsDir(): string {
  const candidates = [new URL('../../app/migrations/', import.meta.url), new URL('../../../src/app/migrations/', import.meta.url)];
  const found = candidates.map((u) => fileURLToPath(u)).find((dir) => existsSync(dir));
  if (!found) throw new Error(`the app's migrations are in none of ${candidates.map((u) => fileURLToPath(u)).join(', ')}`);
  return found;
}
