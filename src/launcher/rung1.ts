// Rung 1 (`ladder start`, what `npm start` runs): one web server and one Postgres on this
// machine, in the foreground. The Postgres is the embedded engine from the npm dependencies
// (no system install), data under <stateDir>/rung1, unless DATABASE_URL names an external
// one. The web server is `ladder __web` as a child process, as at every other rung; the
// launcher imports none of the app.
//
// Both children run in process groups of their own, so a Ctrl-C in the terminal reaches
// only this process, which stops them in order: the web server first (in-flight requests
// finish, buffered clicks are written), then Postgres. Their pids are kept under
// <stateDir>/rung1, so a start after a kill -9 of this process stops what it left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadServerConfig } from '../kit/config.ts';
import { isAlive } from '../kit/process/pid.ts';
import { exited, hasExited, stopChild, stopPid } from '../kit/process/stop-process.ts';
import type { Topology } from '../topology/topology.ts';
import { ROLES } from './component.ts';
import { PostgresComponent } from './components/postgres.ts';
import { webCommand } from './components/web.ts';
import { runMigrations } from './migrations.ts';
import { acquireLock, ensureDir, freePort, loadSecret } from './state-dir.ts';
import { LadderFailure } from '../kit/errors.ts';

export interface Rung1 {
  url: string;
  databaseUrl: string;
  /** Resolves if the web server exits by itself (a crash), never after stop(): the caller then stops and fails. */
  webExited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Stops the web server, then Postgres; resolves once both have exited. */
  stop(): Promise<void>;
}

export interface DatabaseHandle {
  url: string;
  /** The embedded server, when this process started one. */
  postgres: PostgresComponent | undefined;
  stop(): Promise<void>;
}

/** How long `ladder start` waits for the web server to say where it serves. */
const WEB_START_TIMEOUT_MS = 60_000;

function rung1Dir(topology: Topology): string {
  return ensureDir(path.join(topology.stateDir, 'rung1'));
}

/** Starts (or connects to) the database and applies migrations (by command). */
export async function startDatabase(topology: Topology, log: (msg: string) => void): Promise<DatabaseHandle> {
  if (topology.database.kind === 'external') {
    const url = topology.database.url!;
    await runMigrations(url, log);
    return { url, postgres: undefined, stop: async () => undefined };
  }
  const dir = rung1Dir(topology);
  const postgres = new PostgresComponent(
    { groupPrefix: 'rung1', note: log },
    { dataDir: path.join(dir, 'pgdata'), port: await freePort(), logFile: path.join(dir, 'postgres.log'), detached: true, log, onMigration: log },
  );
  const stop = async () => {
    if (postgres.server.process) await postgres.stop();
  };
  try {
    const child = await postgres.start();
    await postgres.waitReady();
    if (hasExited(child)) throw new LadderFailure('COMPONENT_FAILED', `Postgres exited while starting; see ${postgres.logFile}`);
    return { url: postgres.databaseUrl, postgres, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The web server's pid file: what a later start stops if this process was killed with -9. */
function webPidFile(topology: Topology): string {
  return path.join(rung1Dir(topology), 'web.pid');
}

/** Stops a web server left running by a `ladder start` that was killed, if the pid is still one. */
async function stopOrphanWeb(topology: Topology, log: (msg: string) => void): Promise<void> {
  const file = webPidFile(topology);
  if (!existsSync(file)) return;
  const pid = Number(readFileSync(file, 'utf8').trim());
  rmSync(file, { force: true });
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch (err) {
    log(`cannot check pid ${pid} from ${file}: ${(err as Error).message}; leaving it alone`);
    return;
  }
  if (!cmdline.includes(ROLES.web.command)) return; // the pid was reused by another program
  log(`stopping the web server left running from an earlier run (pid ${pid})`);
  await stopPid(pid, { signal: ROLES.web.stopSignal, timeoutMs: ROLES.web.stopTimeoutMs });
}

/**
 * Starts `ladder __web` in the foreground: its log lines go to this process's output, and
 * its `serving at URL` line says where it listens (PORT=0 picks a free port).
 */
function startWeb(env: NodeJS.ProcessEnv): { child: ChildProcess; url: Promise<string> } {
  const { command, args } = webCommand();
  const child = spawn(command, args, { env, stdio: ['ignore', 'inherit', 'pipe'], detached: true });
  const url = new Promise<string>((resolve, reject) => {
    let partial = '';
    const timer = setTimeout(() => reject(new LadderFailure('COMPONENT_FAILED', `the web server did not start within ${WEB_START_TIMEOUT_MS / 1000} s`)), WEB_START_TIMEOUT_MS);
    child.stderr.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const serving = /^web: serving at (\S+)$/.exec(line);
        if (serving) {
          clearTimeout(timer);
          resolve(serving[1]!);
        } else if (!/^web: SIG[A-Z]+: /.test(line)) {
          // Its own shutdown notice repeats the one `ladder start` prints; the rest is passed on.
          process.stderr.write(`${line}\n`);
        }
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (partial) process.stderr.write(`${partial}\n`);
      reject(new LadderFailure('COMPONENT_FAILED', `the web server exited (${code ?? signal}) before serving`));
    });
  });
  url.catch(() => undefined); // awaited by startRung1; this only keeps an early exit from being unhandled
  return { child, url };
}

export async function startRung1(topology: Topology, log: (msg: string) => void = () => undefined): Promise<Rung1> {
  const release = acquireLock(rung1Dir(topology), 'Ladder rung 1');
  let db: DatabaseHandle | undefined;
  let web: ChildProcess | undefined;
  // A second Ctrl-C exits at once (signals.ts): what is still running goes with this process.
  const onExit = () => {
    if (web && !hasExited(web)) web.kill('SIGKILL');
    const pg = db?.postgres?.server.pid;
    if (pg !== undefined && isAlive(pg)) process.kill(pg, 'SIGINT'); // fast shutdown; it finishes on its own
  };
  process.once('exit', onExit);
  try {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOST: topology.web.host,
      PORT: String(topology.web.port),
      LADDER_SECRET: loadSecret(topology.stateDir),
      LADDER_NODE: 'web',
    };
    // The web server's settings are checked before anything starts, so a bad one fails at once.
    loadServerConfig({}, env);
    await stopOrphanWeb(topology, log);
    db = await startDatabase(topology, log);
    env.DATABASE_URL = db.url;
    const started = startWeb(env);
    web = started.child;
    writeFileSync(webPidFile(topology), String(web.pid));
    const url = await started.url;
    const child = web;
    const database = db;
    let stopping = false;
    const webExited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      if (hasExited(child)) resolve({ code: child.exitCode, signal: child.signalCode });
      else child.once('exit', (code, signal) => !stopping && resolve({ code, signal }));
    });
    return {
      url,
      databaseUrl: db.url,
      webExited,
      stop: async () => {
        if (stopping) return;
        stopping = true;
        try {
          await stopChild(child, { signal: ROLES.web.stopSignal, timeoutMs: ROLES.web.stopTimeoutMs });
          rmSync(webPidFile(topology), { force: true });
          await database.stop();
        } finally {
          process.removeListener('exit', onExit);
          release();
        }
      },
    };
  } catch (err) {
    if (web) {
      await stopChild(web, { timeoutMs: ROLES.web.stopTimeoutMs });
      await exited(web);
      rmSync(webPidFile(topology), { force: true });
    }
    await db?.stop();
    process.removeListener('exit', onExit);
    release();
    throw err;
  }
}
