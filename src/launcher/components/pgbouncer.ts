// PgBouncer (node `pgbouncer`, --pgbouncer, or by itself when the web tier's pools would
// pass the primary's max_connections) in transaction mode between the web servers and the
// primary: any number of client connections share a pool of server connections a little
// under max_connections. Transaction mode hands each transaction a server connection of the
// pool, so the web servers send unnamed statements (DATABASE_STATEMENTS=unnamed,
// src/kit/db/prepared.ts): PgBouncer 1.18 does not carry named ones across. Replicas are
// reached directly (their reads are spread by the router, and each has its own limit).
// PgBouncer refuses to run as root: as root it runs as the database servers' account.
import type { ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { stopChild } from '../../kit/process/stop-process.ts';
import { requireBinary } from '../binaries.ts';
import { exitReason, spawnLogged, waitUntil } from '../child.ts';
import { ROLES, type Component } from '../component.ts';
import { serverDir, type RunAs } from '../postgres-server.ts';
import { DATABASE_NAME } from './postgres.ts';

const READY_TIMEOUT_MS = 15_000;

export interface PgbouncerOptions {
  port: number;
  dir: string;
  logFile: string;
  /** The primary PgBouncer connects to. */
  server: { host: string; port: number; user: string; password: string };
  /** Server connections PgBouncer may open: under max_connections, leaving room for the replicas' WAL senders, monitors and an operator. */
  poolSize: number;
  runAs: RunAs | undefined;
}

/** pgbouncer.ini: loopback only, transaction pooling, SCRAM to clients and to the server. */
export function pgbouncerIni(o: Pick<PgbouncerOptions, 'port' | 'server' | 'poolSize'>, authFile: string): string {
  return [
    '[databases]',
    `${DATABASE_NAME} = host=${o.server.host} port=${o.server.port} dbname=${DATABASE_NAME}`,
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${o.port}`,
    'unix_socket_dir =',
    'auth_type = scram-sha-256',
    `auth_file = ${authFile}`,
    'pool_mode = transaction',
    // Clients wait in PgBouncer for a server connection instead of being refused.
    'max_client_conn = 5000',
    `default_pool_size = ${o.poolSize}`,
    `max_db_connections = ${o.poolSize}`,
    'reserve_pool_size = 0',
    // A client waiting longer than this for a server connection gets an error (PgBouncer's 120 s is longer than any request waits).
    'query_wait_timeout = 20',
    // node-postgres sends none of these, other drivers do; PgBouncer would refuse the connection.
    'ignore_startup_parameters = extra_float_digits,options',
    'log_connections = 0',
    'log_disconnections = 0',
    '',
  ].join('\n');
}

export class PgbouncerComponent implements Component {
  readonly name = 'pgbouncer';
  readonly role = 'pgbouncer' as const;
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  private readonly ini: string;
  /** Its folder: opts.dir, or under /var/lib/ladder when the account it runs as cannot reach that. */
  private readonly dir: string;

  constructor(private readonly opts: PgbouncerOptions) {
    this.port = opts.port;
    this.url = `postgres://127.0.0.1:${opts.port}/${DATABASE_NAME}`;
    this.logFile = opts.logFile;
    this.dir = serverDir(opts.dir, opts.runAs);
    this.ini = path.join(this.dir, 'pgbouncer.ini');
  }

  /** What the web servers get as DATABASE_URL: the primary's user and password, PgBouncer's port. */
  get databaseUrl(): string {
    const s = this.opts.server;
    return `postgres://${s.user}:${encodeURIComponent(s.password)}@127.0.0.1:${this.port}/${DATABASE_NAME}`;
  }

  async start(): Promise<ChildProcess> {
    const { runAs, server } = this.opts;
    const dir = this.dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const users = path.join(dir, 'userlist.txt');
    writeFileSync(users, `"${server.user}" "${server.password.replace(/"/g, '""')}"\n`, { mode: 0o600 });
    writeFileSync(this.ini, pgbouncerIni(this.opts, users), { mode: 0o600 });
    if (runAs) for (const f of [dir, users, this.ini]) chownSync(f, runAs.uid, runAs.gid);
    return spawnLogged(requireBinary('pgbouncer'), [this.ini], {
      logFile: this.logFile,
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid, cwd: dir } : {}),
    });
  }

  async waitReady(child: ChildProcess): Promise<void> {
    await waitUntil(() => listening(this.port), READY_TIMEOUT_MS, this.name, () => exitReason(child, this.logFile));
  }

  async stop(child: ChildProcess): Promise<void> {
    // SIGINT: PgBouncer's "safe shutdown", once every client has left (SIGTERM drops them at once).
    await stopChild(child, { signal: ROLES.pgbouncer.stopSignal, timeoutMs: ROLES.pgbouncer.stopTimeoutMs });
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false)); // not listening yet
  });
}
