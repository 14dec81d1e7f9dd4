// Versioned, forward-only migrations: files named NNNN_name.sql, applied in order, each in
// its own transaction, recorded in schema_migrations. An advisory lock makes it safe for
// several web processes to start at once. A file whose applied content changed is refused.
import { readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { errorText } from './pool.ts';

const LOCK_ID = 7_102_024; // any constant; shared by every Ladder process

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export function loadMigrations(dir: string): Migration[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const seen = new Set<number>();
  return files.map((file) => {
    const m = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m) throw new Error(`migration file ${file}: name it NNNN_description.sql`);
    const version = Number(m[1]);
    if (seen.has(version)) throw new Error(`migration version ${version} appears twice`);
    seen.add(version);
    const sql = readFileSync(path.join(dir, file), 'utf8');
    return { version, name: m[2] ?? '', sql, checksum: createHash('sha256').update(sql).digest('hex') };
  });
}

/** Applies pending migrations; returns the versions applied now. */
export async function migrate(url: string, dir: string, log?: (msg: string) => void): Promise<number[]> {
  const migrations = loadMigrations(dir);
  const client = new pg.Client({ connectionString: url });
  // Failures that are not thrown are still said: to the caller's log, else to stderr.
  const warn = log ?? ((msg: string) => process.stderr.write(`${msg}\n`));
  // A lost connection also fails the statement in flight, which is thrown; the event is
  // logged too, and a listener is required (without one it would crash the process).
  client.on('error', (err) => warn(`migration connection error: ${errorText(err)}`));
  await client.connect();
  const applied: number[] = [];
  try {
    await client.query('select pg_advisory_lock($1)', [LOCK_ID]);
    await client.query(`create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      checksum text not null,
      applied_at timestamptz not null default now())`);
    const done = new Map<number, string>();
    for (const row of (await client.query<{ version: number; checksum: string }>('select version, checksum from schema_migrations')).rows) {
      done.set(row.version, row.checksum);
    }
    for (const m of migrations) {
      const previous = done.get(m.version);
      if (previous !== undefined) {
        if (previous !== m.checksum) {
          throw new Error(`migration ${m.version}_${m.name} changed after it was applied; add a new migration instead`);
        }
        continue;
      }
      await client.query('begin');
      try {
        await client.query(m.sql);
        await client.query('insert into schema_migrations (version, name, checksum) values ($1, $2, $3)', [m.version, m.name, m.checksum]);
        await client.query('commit');
      } catch (err) {
        await client.query('rollback');
        throw new Error(`migration ${m.version}_${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      log?.(`applied migration ${m.version}_${m.name}`);
      applied.push(m.version);
    }
  } finally {
    // Closing the connection (next) releases the lock anyway.
    await client
      .query('select pg_advisory_unlock($1)', [LOCK_ID])
      .catch((err: unknown) => warn(`releasing the migration lock failed (the connection's close releases it): ${errorText(err)}`));
    await client.end();
  }
  return applied;
}
