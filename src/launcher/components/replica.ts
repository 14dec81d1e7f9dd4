// A streaming replica (hot standby) of the primary as a component (rung 4). Cloned afresh
// on every `up`, so that it matches the primary whatever happened to it between runs. A
// replica that dies is started again on its own data (crash recovery, then it resumes
// streaming); one that fails to start three times in a row is cloned again.
import type { ChildProcess } from 'node:child_process';
import { removeGroup } from '../cgroup-cpu.ts';
import { ROLES, type Component, type MetricsTarget, type ComponentContext } from '../component.ts';
import { PostgresServer, systemBinDir } from '../postgres-server.ts';
import { capDatabaseNode, DATABASE_NAME, REPLICATION_SETTINGS, type PostgresComponent } from './postgres.ts';

export interface ReplicaComponentOptions {
  name: string;
  port: number;
  dataDir: string;
  logFile: string;
  primary: PostgresComponent;
  /** recovery_min_apply_delay: lag on demand, for tests and demos. */
  applyDelayMs?: number;
  cpu?: number;
}

/** Failed starts in a row after which the replica's data is thrown away and cloned again. */
const RECLONE_AFTER_FAILURES = 3;

export class ReplicaComponent implements Component {
  readonly name: string;
  readonly role = 'postgres-replica' as const;
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  /** Its exporter (monitoring/exporters.ts), set by the plan when the topology is monitored. */
  metrics?: MetricsTarget;
  readonly cpu: number | undefined;
  /** Rung 10: its primary's shard cluster. */
  readonly shard: string | undefined;
  private readonly server: PostgresServer;
  private fresh = true;
  private failures = 0;

  constructor(
    private readonly ctx: Pick<ComponentContext, 'groupPrefix' | 'note'>,
    opts: ReplicaComponentOptions,
  ) {
    this.name = opts.name;
    this.shard = opts.primary.shard;
    this.port = opts.port;
    this.url = `postgres://127.0.0.1:${opts.port}/${DATABASE_NAME}`;
    this.logFile = opts.logFile;
    this.cpu = opts.cpu;
    const primary = opts.primary.server.connection;
    this.server = new PostgresServer({
      dataDir: opts.dataDir,
      port: opts.port,
      binDir: systemBinDir(),
      logFile: opts.logFile,
      settings: REPLICATION_SETTINGS,
      replicaOf: {
        host: primary.host,
        port: primary.port,
        user: primary.user,
        password: primary.password,
        name: opts.name,
        ...(opts.applyDelayMs ? { applyDelayMs: opts.applyDelayMs } : {}),
      },
    });
  }

  /** Read-only connection URL for the web servers (DATABASE_REPLICA_URLS). */
  get databaseUrl(): string {
    return this.server.url(DATABASE_NAME);
  }

  async start(): Promise<ChildProcess> {
    if (this.fresh || this.failures >= RECLONE_AFTER_FAILURES) {
      await this.server.stop();
      this.server.removeData();
    }
    try {
      await this.server.start(); // clones first when it has no data; returns once it accepts connections
    } catch (err) {
      this.failures++;
      throw err;
    }
    this.fresh = false;
    this.failures = 0;
    capDatabaseNode(this.ctx, this.name, this.server, this.cpu);
    return this.server.process!;
  }

  async waitReady(): Promise<void> {
    // start() returns once the standby accepts connections; streaming catches up on its own.
  }

  async stop(): Promise<void> {
    await this.server.stop(ROLES['postgres-replica'].stopTimeoutMs);
    removeGroup(`${this.ctx.groupPrefix}-${this.name}`);
  }
}
