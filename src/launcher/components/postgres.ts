// The Postgres primary as a component: its own data folder and loopback port; the `links`
// database is created and migrated (by command) the first time it is ready. With replicas
// it runs the machine's PostgreSQL 15 with the settings streaming replication needs.
import type { ChildProcess } from 'node:child_process';
import { capProcessTree, removeGroup } from '../cgroup-cpu.ts';
import { ROLES, type Component, type MetricsTarget, type ComponentContext } from '../component.ts';
import { runMigrations } from '../migrations.ts';
import { PostgresServer, type PostgresServerOptions } from '../postgres-server.ts';

/** The database the app's data lives in, on every Postgres node. */
export const DATABASE_NAME = 'links';

/**
 * The primary's settings for streaming replication, given to the replicas too: a hot
 * standby refuses to start with max_wal_senders (and a few others) below the primary's.
 * 20 senders: every replica streams on one, and a clone (pg_basebackup -X stream) takes two
 * more while it runs. wal_keep_size keeps enough WAL for a replica that was down a while
 * (killed, restarted) to catch up by streaming; one that falls further behind is cloned again.
 */
export const REPLICATION_SETTINGS = { wal_level: 'replica', max_wal_senders: 20, wal_keep_size: '512MB', hot_standby: 'on' } as const;

export interface PostgresComponentOptions extends Pick<PostgresServerOptions, 'dataDir' | 'port' | 'binDir' | 'settings' | 'detached' | 'log'> {
  name?: string;
  /** Rung 10: the shard cluster it is the primary of (`catalog` for the catalog). */
  shard?: string;
  /** Rung 10, a shard cluster: the shard's migrations after the app's. */
  shardSchema?: boolean;
  /** Runs once after the migrations (rung 10's catalog: the shard map). */
  afterMigrations?: (databaseUrl: string) => Promise<void>;
  logFile: string;
  /** Cores the server and its backends are capped at. */
  cpu?: number;
  /** Where each applied migration is reported. */
  onMigration?: (line: string) => void;
}

export class PostgresComponent implements Component {
  readonly name: string;
  readonly role = 'postgres' as const;
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  /** Its exporter (monitoring/exporters.ts), set by the plan when the topology is monitored. */
  metrics?: MetricsTarget;
  readonly cpu: number | undefined;
  readonly server: PostgresServer;
  readonly shard: string | undefined;
  private migrated = false;

  constructor(
    private readonly ctx: Pick<ComponentContext, 'groupPrefix' | 'note'>,
    private readonly opts: PostgresComponentOptions,
  ) {
    this.name = opts.name ?? 'postgres';
    this.shard = opts.shard;
    this.port = opts.port;
    this.url = `postgres://127.0.0.1:${opts.port}/${DATABASE_NAME}`;
    this.logFile = opts.logFile;
    this.cpu = opts.cpu;
    this.server = new PostgresServer({
      dataDir: opts.dataDir,
      port: opts.port,
      logFile: opts.logFile,
      ...(opts.binDir !== undefined ? { binDir: opts.binDir } : {}),
      ...(opts.settings !== undefined ? { settings: opts.settings } : {}),
      ...(opts.detached !== undefined ? { detached: opts.detached } : {}),
      ...(opts.log !== undefined ? { log: opts.log } : {}),
    });
  }

  /** The app's database, with the superuser's password: what web servers get as DATABASE_URL. */
  get databaseUrl(): string {
    return this.server.url(DATABASE_NAME);
  }

  async start(): Promise<ChildProcess> {
    await this.server.start(); // returns once it accepts connections
    capDatabaseNode(this.ctx, this.name, this.server, this.cpu);
    return this.server.process!;
  }

  async waitReady(): Promise<void> {
    if (this.migrated) return;
    await this.server.ensureDatabase(DATABASE_NAME);
    await runMigrations(this.databaseUrl, this.opts.onMigration, undefined, this.opts.shardSchema === true);
    await this.opts.afterMigrations?.(this.databaseUrl);
    this.migrated = true;
  }

  async stop(): Promise<void> {
    await this.server.stop(ROLES.postgres.stopTimeoutMs);
    removeGroup(`${this.ctx.groupPrefix}-${this.name}`);
  }
}

/** --db-cpu: the server and the processes it has forked so far; later ones inherit the group. */
export function capDatabaseNode(ctx: Pick<ComponentContext, 'groupPrefix' | 'note'>, name: string, server: PostgresServer, cpu: number | undefined): void {
  if (cpu === undefined || !server.pid) return;
  try {
    capProcessTree(`${ctx.groupPrefix}-${name}`, server.pid, cpu);
  } catch (err) {
    ctx.note(`could not cap ${name} at ${cpu} core: ${(err as Error).message}`);
  }
}
