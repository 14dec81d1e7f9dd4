// Before the integration and browser tests: a fresh dist/ (everything the tests spawn, ladder
// and the lab's entries, runs the compiled build), and one real Postgres (the embedded
// engine) for the whole run, on its own free loopback port and its own data folder; each
// test file gets its own database in it.
//
// Every vitest project that needs it lists this file, and vitest loads it once per project
// (each project has its own module runner, all in the one main process). So the Postgres is
// kept on globalThis: the first setup starts it, the others reuse it, the last teardown stops it.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { build, staleReason } from '../../scripts/build.mjs';
import { PostgresServer } from '../../src/launcher/postgres-server.ts';
import { ensureDir, freePort } from '../../src/launcher/state-dir.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
  }
}

interface Shared {
  users: number;
  started: Promise<{ server: PostgresServer; dir: string }>;
}

const KEY = Symbol.for('ladder.test.global-setup');
const holder = globalThis as typeof globalThis & { [KEY]?: Shared };

async function startPostgres(): Promise<{ server: PostgresServer; dir: string }> {
  const stale = staleReason();
  if (stale !== undefined) {
    process.stderr.write(`global setup: building dist/ (${stale})\n`);
    if (!build()) throw new Error('global setup: the build failed (the tsc errors are above)');
  }
  // One run tests one build: the test workers (forked after this) and every `ladder` they
  // spawn inherit this, so an edit of src/ during the run cannot start a rebuild under a
  // test that is timing a topology.
  process.env.LADDER_BUILD_CHECKED = '1';
  const dir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'pg-'));
  chmodSync(dir, 0o755); // reachable by the unprivileged user Postgres runs as under root
  const server = new PostgresServer({
    dataDir: path.join(dir, 'pgdata'),
    port: await freePort(),
    settings: { fsync: 'off' },
  });
  try {
    await server.start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { server, dir };
}

export async function setup(project: TestProject): Promise<void> {
  const shared = (holder[KEY] ??= { users: 0, started: startPostgres() });
  shared.users++;
  const { server } = await shared.started;
  project.provide('pgAdminUrl', server.url('postgres'));
}

export async function teardown(): Promise<void> {
  const shared = holder[KEY];
  if (!shared || --shared.users > 0) return;
  delete holder[KEY];
  const { server, dir } = await shared.started;
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
