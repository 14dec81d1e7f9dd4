// Rung 1: one web process and one Postgres, all on this machine. The Postgres is the
// embedded engine from the npm dependencies (no system install), data under .ladder/rung1,
// unless DATABASE_URL names an external one.
import path from 'node:path';
import { MIGRATIONS_DIR } from '../app/links-app.ts';
import { loadServerConfig, type ServerConfig } from '../kit/config.ts';
import { migrate } from '../kit/db/migrator.ts';
import { PostgresServer } from '../kit/db/postgres-server.ts';
import type { Topology } from '../topology/topology.ts';
import { acquireLock, ensureDir, freePort, loadSecret } from './state-dir.ts';
import { startWebProcess, type WebProcess } from '../server/web-process.ts';

export interface Rung1 {
  url: string;
  databaseUrl: string;
  web: WebProcess;
  postgres: PostgresServer | undefined;
  stop(): Promise<void>;
}

export interface DatabaseHandle {
  url: string;
  postgres: PostgresServer | undefined;
}

/** Starts (or connects to) the database and applies migrations. */
export async function startDatabase(topology: Topology, log: (msg: string) => void): Promise<DatabaseHandle> {
  if (topology.database.kind === 'external') {
    const url = topology.database.url!;
    await migrate(url, MIGRATIONS_DIR, log);
    return { url, postgres: undefined };
  }
  const dir = ensureDir(path.join(topology.stateDir, 'rung1'));
  const postgres = new PostgresServer({
    dataDir: path.join(dir, 'pgdata'),
    port: await freePort(),
    log,
  });
  await postgres.start();
  try {
    const url = await postgres.ensureDatabase('links');
    await migrate(url, MIGRATIONS_DIR, log);
    return { url, postgres };
  } catch (err) {
    await postgres.stop();
    throw err;
  }
}

export async function startRung1(
  topology: Topology,
  overrides: Partial<ServerConfig> = {},
  log: (msg: string) => void = () => undefined,
): Promise<Rung1> {
  const release = acquireLock(path.join(topology.stateDir, 'rung1'), 'Ladder rung 1');
  let db: DatabaseHandle | undefined;
  try {
    const config = loadServerConfig({
      host: topology.web.host,
      port: topology.web.port,
      secret: loadSecret(topology.stateDir),
      ...overrides,
    });
    db = await startDatabase(topology, log);
    const web = await startWebProcess(config, db.url);
    const postgres = db.postgres;
    return {
      url: web.url,
      databaseUrl: db.url,
      web,
      postgres,
      stop: async () => {
        try {
          await web.stop();
          await postgres?.stop();
        } finally {
          release();
        }
      },
    };
  } catch (err) {
    await db?.postgres?.stop();
    release();
    throw err;
  }
}
