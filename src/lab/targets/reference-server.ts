// Entry of a reference server: the smallest Fastify process that answers GET /:code with a
// 302, so the report can say what the app's own layers cost. Started by `ladder bench`
// in its own process, configured by environment (the database URL holds a password, so it
// never goes on a command line where `ps` shows it):
//   REF_KIND=constant  a constant 302, no database: the ceiling of Fastify on this machine
//   REF_KIND=pg        the app's lookup through node-postgres (pg.Pool, REF_POOL clients)
//   REF_KIND=pglite    the same lookup in PGlite (Postgres in WebAssembly, in this process),
//                      seeded here with REF_LINKS links
//   REF_PORT, REF_HOST where to listen; REF_DATABASE_URL for pg.
import Fastify from 'fastify';
import pg from 'pg';
import { batchedLookup } from '../../kit/db/batched-lookup.ts';
import type { ReadDb, Row } from '../../kit/db/database.ts';
import { loadMigrations } from '../../kit/db/migrator.ts';
import { seedLinks } from '../dataset/bench-links.ts';
import { appMigrationsDir } from './app-migrations.ts';

/** The app's redirect query, verbatim (src/app/domain/links-repo.ts, findTarget). */
const LOOKUP = 'select code, id, url from links where code = any($1::text[])';

type Lookup = (code: string) => Promise<{ url: string } | undefined>;

async function pglite(links: number): Promise<{ lookup: Lookup; close: () => Promise<void> }> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create();
  for (const m of loadMigrations(appMigrationsDir())) await db.exec(m.sql);
  await seedLinks(db, links);
  return {
    lookup: async (code) => (await db.query<{ url: string }>(LOOKUP, [[code]])).rows[0],
    close: () => db.close(),
  };
}

function pgPool(url: string, max: number): { lookup: Lookup; close: () => Promise<void> } {
  // The same pool settings as the app's PgDatabase (src/kit/db/pg-database.ts).
  const pool = new pg.Pool({ connectionString: url, max, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 5_000 });
  // An idle connection the server dropped: the pool replaces it; said once per drop on stderr
  // (the bench quotes a server's log when a run fails).
  pool.on('error', (err) => process.stderr.write(`reference: idle database connection failed: ${err.message}\n`));
  // Named statements, batched per loop turn, as the app's PgDatabase and findTarget send
  // them: the reference is the best bare handler doing the same database work, so the
  // ratio measures what the framework and the app add, nothing else.
  const db: ReadDb = { read: async <R extends Row>(text: string, values: readonly unknown[] = []) => (await pool.query<R>({ name: 'ref_lookup', text, values: [...values] })).rows };
  const find = batchedLookup<{ code: string; url: string }>({ sql: LOOKUP, keyColumn: 'code' });
  return {
    lookup: (code) => find(db, code),
    close: () => pool.end(),
  };
}

async function main(): Promise<void> {
  const env = process.env;
  const kind = env.REF_KIND;
  const port = Number(env.REF_PORT);
  if (!Number.isInteger(port) || port <= 0) throw new Error('REF_PORT must be a port number');
  let backend: { lookup: Lookup; close: () => Promise<void> } | undefined;
  if (kind === 'pg') {
    if (!env.REF_DATABASE_URL) throw new Error('REF_DATABASE_URL is required for REF_KIND=pg');
    backend = pgPool(env.REF_DATABASE_URL, Number(env.REF_POOL ?? 10));
  } else if (kind === 'pglite') {
    backend = await pglite(Number(env.REF_LINKS));
  } else if (kind !== 'constant') {
    throw new Error(`REF_KIND must be constant, pg or pglite, not ${String(kind)}`);
  }

  const app = Fastify({ logger: false, keepAliveTimeout: 65_000 });
  app.get('/healthz', async () => ({ status: 'ok' }));
  const lookup = backend?.lookup;
  if (lookup) {
    app.get('/:code', async (req, reply) => {
      const target = await lookup((req.params as { code: string }).code);
      if (!target) return reply.status(404).send();
      return reply.status(302).header('location', target.url).send();
    });
  } else {
    app.get('/:code', async (_req, reply) => reply.status(302).header('location', 'https://example.com/').send());
  }
  await app.listen({ host: env.REF_HOST ?? '127.0.0.1', port });

  const stop = () => {
    void app
      .close()
      .then(() => backend?.close())
      .finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`reference server: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
