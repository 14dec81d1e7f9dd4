// Startup cost of one web process, the way the launcher starts it (`node bin/ladder.mjs __web`
// with DATABASE_URL, PORT, LADDER_SECRET): the time from spawn to the first 200 from
// /healthz, and the resident memory (VmRSS) once it has answered 100 more requests. Several
// checkouts can be compared in one run, e.g. the tsx-run sources against the compiled build:
// their runs alternate (A B A B ...), so a change in the machine's load hits both alike.
//
//   npm run build && node dist/lab/measure/startup-measure.js [--runs 10] [checkout ...]
//
// Each checkout must be installed (npm install); the default is this one. One Postgres (the
// embedded engine, in a temp folder) serves every run, migrated by the first checkout's
// `ladder migrate`. Figures: docs/performance.md, "Compiled build: startup and memory".
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PostgresServer } from '../../launcher/postgres-server.ts';

const HERE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SECRET = 'startup-measure-secret-0123456789abcdef';
const REQUESTS = 100;
const READY_TIMEOUT_MS = 60_000;

/** The web process being measured, for the signal handler to stop. */
let current: ChildProcess | undefined;

interface Sample {
  readyMs: number;
  /** CPU time (user + system) the process had used when /healthz first answered: unlike the
   *  wall time, barely moved by other load on the machine. */
  cpuMs: number;
  rssMiB: number;
}

/** Kernel clock ticks per second, the unit of /proc/PID/stat's times (100 on Linux). */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function cpuMs(pid: number): number {
  // Fields after the command name (which may hold spaces, hence the last ')'): utime is the 12th, stime the 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

async function get(url: string): Promise<number> {
  const res = await fetch(url, { redirect: 'manual' });
  await res.arrayBuffer();
  return res.status;
}

/** One web process of `root`: spawned, timed to its first /healthz, loaded, measured, stopped. */
async function measureOnce(root: string, databaseUrl: string): Promise<Sample> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    PORT: String(port),
    HOST: '127.0.0.1',
    LADDER_SECRET: SECRET,
    LOG_LEVEL: 'warn',
    LADDER_BUILD_CHECKED: '1', // as a process the launcher starts: no stale-build check
  };
  const started = performance.now();
  const child = spawn(process.execPath, [path.join(root, 'bin/ladder.mjs'), '__web'], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  current = child;
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  try {
    let readyMs: number | undefined;
    let cpu = 0;
    while (readyMs === undefined) {
      if (exitedEarly)
        throw new Error(`the web process of ${root} exited before /healthz answered:\n${stderr}`);
      if (performance.now() - started > READY_TIMEOUT_MS)
        throw new Error(`no /healthz from ${root} within ${READY_TIMEOUT_MS} ms:\n${stderr}`);
      try {
        if ((await get(`${base}/healthz`)) === 200) {
          readyMs = performance.now() - started;
          cpu = cpuMs(child.pid!);
        }
      } catch (err) {
        // Refused: not listening yet, so poll again after a short pause; anything else is real.
        if ((err as { cause?: { code?: string } }).cause?.code !== 'ECONNREFUSED') throw err;
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    // The requests a fresh server sees first: pages, API, redirects (a miss), health.
    const paths = ['/', '/healthz', '/api/me', '/nosuchcode'];
    for (let i = 0; i < REQUESTS; i++) await get(`${base}${paths[i % paths.length]}`);
    return { readyMs, cpuMs: cpu, rssMiB: rssMiB(child.pid!) };
  } finally {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    current = undefined;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function main(argv: string[]): Promise<number> {
  let runs = 10;
  const roots: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runs') runs = Number(argv[++i]);
    else roots.push(path.resolve(argv[i]!));
  }
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a whole number ≥ 1');
  if (roots.length === 0) roots.push(HERE_ROOT);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'ladder-startup-'));
  chmodSync(dir, 0o755); // reachable by the unprivileged user Postgres runs as under root
  const server = new PostgresServer({
    dataDir: path.join(dir, 'pgdata'),
    port: await freePort(),
    settings: { fsync: 'off' },
  });
  const cleanup = async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  // Ctrl-C or a kill mid-run: no web process or Postgres left behind.
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`${signal}: stopping\n`);
    current?.kill('SIGKILL');
    cleanup().then(
      () => process.exit(1),
      (err: unknown) => {
        process.stderr.write(`stopping Postgres failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await server.start();
    const admin = new pg.Client({ connectionString: server.url('postgres') });
    await admin.connect();
    await admin.query('create database startup');
    await admin.end();
    const databaseUrl = server.url('startup');
    const migrate = spawnSync(process.execPath, [path.join(roots[0]!, 'bin/ladder.mjs'), 'migrate'], {
      env: { ...process.env, DATABASE_URL: databaseUrl },
      encoding: 'utf8',
    });
    if (migrate.status !== 0) throw new Error(`ladder migrate failed:\n${migrate.stderr}`);

    const samples = new Map<string, Sample[]>(roots.map((r) => [r, []]));
    for (const root of roots) await measureOnce(root, databaseUrl); // warm the page cache; not counted
    for (let i = 0; i < runs; i++) {
      for (const root of roots) {
        const s = await measureOnce(root, databaseUrl);
        samples.get(root)!.push(s);
        process.stderr.write(
          `run ${i + 1}/${runs} ${root}: ${s.readyMs.toFixed(0)} ms (CPU ${s.cpuMs.toFixed(0)} ms), ${s.rssMiB.toFixed(1)} MiB\n`,
        );
      }
    }
    const load = os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ');
    process.stdout.write(`web process (ladder __web), ${runs} runs each, load average at the end ${load}\n`);
    for (const [root, ss] of samples) {
      const line = (label: string, xs: number[], unit: string, digits: number) =>
        `  ${label}: median ${median(xs).toFixed(digits)} ${unit} (min ${Math.min(...xs).toFixed(digits)}, max ${Math.max(...xs).toFixed(digits)})\n`;
      process.stdout.write(
        `${root}\n` +
          line(
            'first /healthz',
            ss.map((s) => s.readyMs),
            'ms',
            0,
          ) +
          line(
            'CPU time to it',
            ss.map((s) => s.cpuMs),
            'ms',
            0,
          ) +
          line(
            `RSS after ${REQUESTS} requests`,
            ss.map((s) => s.rssMiB),
            'MiB',
            1,
          ),
      );
    }
    return 0;
  } finally {
    await cleanup();
  }
}

process.exitCode = await main(process.argv.slice(2));
