// One real Postgres (the embedded engine) for the whole run, on its own free loopback
// port and its own data folder; each test file gets its own database in it.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { PostgresServer } from '../../src/launcher/postgres-server.ts';
import { ensureDir, freePort } from '../../src/launcher/state-dir.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
  }
}

let server: PostgresServer | undefined;
let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  dir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'pg-'));
  chmodSync(dir, 0o755); // reachable by the unprivileged user Postgres runs as under root
  server = new PostgresServer({ dataDir: path.join(dir, 'pgdata'), port: await freePort(), settings: { fsync: 'off' } });
  await server.start();
  project.provide('pgAdminUrl', server.url('postgres'));
}

export async function teardown(): Promise<void> {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}
