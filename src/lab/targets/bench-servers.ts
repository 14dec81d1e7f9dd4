// The servers a bench run measures, each in its own process, pinned to the servers' CPUs:
// the Links app exactly as `npm start` runs it, and the bare reference handlers.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../../launcher/state-dir.ts';
import { benchCode, benchUrl } from '../dataset/bench-links.ts';
import type { BenchSession } from '../machine/bench-session.ts';
import { cleanEnv } from '../machine/clean-env.ts';
import { pinTree } from '../machine/cpu-pinning.ts';
import type { CpuSample, MeasureTarget } from '../measure/measurement.ts';
import { LADDER_BIN, nodeEntry } from '../machine/node-entry.ts';
import { servingPid, treeCpuSeconds } from '../machine/proc-stats.ts';
import { favour } from '../machine/priority.ts';
import type { ManagedProcess } from '../machine/process-supervisor.ts';

export interface ServerUnderTest extends MeasureTarget {
  /** Stable key used in the report, e.g. "app", "ref-pg". */
  name: string;
  /** What it is, for people. */
  label: string;
  host: string;
  port: number;
  proc: ManagedProcess;
  /** Postmaster pid of the Postgres it queries, when it queries one (for CPU accounting). */
  databasePid: number | undefined;
}

/** CPU of the server's process and of the Postgres tree it queries. */
// A server's whole process tree: `ladder start` serves from a child web process (the
// launcher starts it by command), a reference from its own process.
function cpuSampler(pid: number, databasePid: number | undefined): () => CpuSample {
  return () => ({ server: treeCpuSeconds(pid), database: databasePid === undefined ? null : treeCpuSeconds(databasePid) });
}

const HOST = '127.0.0.1';

export interface StartOptions {
  cpus: string | undefined;
  /** For the preflight check: how many links are seeded. */
  links: number;
}

/** The Links app: `node bin/ladder.mjs start` with DATABASE_URL, so it starts no Postgres of its own. */
export async function startApp(
  session: BenchSession,
  opts: StartOptions & {
    databaseUrl: string;
    databasePid: number | undefined;
    /** Another app under test beside the first (default 'app', 'Links app (ladder start)'). */
    name?: string;
    label?: string;
    /** More settings, e.g. CACHE_REDIS_URL. */
    env?: Record<string, string>;
  },
): Promise<ServerUnderTest> {
  const port = await freePort();
  const name = opts.name ?? 'app';
  // Its own working folder, so its .ladder state (lock, secret) is not the developer's.
  const cwd = path.join(session.dir, name);
  mkdirSync(cwd, { recursive: true });
  const proc = session.supervisor.spawn(name, process.execPath, [LADDER_BIN, 'start'], {
    cwd,
    env: cleanEnv({
      DATABASE_URL: opts.databaseUrl,
      PORT: String(port),
      HOST,
      LOG_LEVEL: 'warn',
      LADDER_SECRET: randomBytes(32).toString('base64url'),
      LADDER_STATE_DIR: path.join(cwd, '.ladder'),
      ...opts.env,
    }),
  });
  const sut: ServerUnderTest = {
    name,
    label: opts.label ?? 'Links app (ladder start)',
    host: HOST,
    port,
    proc,
    databasePid: opts.databasePid,
    sampleCpu: cpuSampler(proc.pid, opts.databasePid),
  };
  await ready(session, sut, opts, true);
  // `ladder start` runs its web server in a session of its own (it outlives a closed
  // terminal): that session is the one to favour, as the lab's own is (machine/priority.ts).
  favour(servingPid(proc.pid));
  return sut;
}

export type ReferenceKind = 'constant' | 'pg' | 'pglite';

/** A bare Fastify handler (reference-server.ts) in its own process. */
export async function startReference(
  session: BenchSession,
  opts: StartOptions & {
    name: string;
    label: string;
    kind: ReferenceKind;
    databaseUrl?: string;
    databasePid?: number;
    pool?: number;
  },
): Promise<ServerUnderTest> {
  const port = await freePort();
  const { command, args } = nodeEntry('targets/reference-server.ts');
  const proc = session.supervisor.spawn(opts.name, command, args, {
    env: cleanEnv({
      REF_KIND: opts.kind,
      REF_PORT: String(port),
      REF_HOST: HOST,
      REF_DATABASE_URL: opts.databaseUrl ?? '',
      REF_LINKS: String(opts.links),
      REF_POOL: String(opts.pool ?? 10),
    }),
  });
  const sut: ServerUnderTest = {
    name: opts.name,
    label: opts.label,
    host: HOST,
    port,
    proc,
    databasePid: opts.databasePid,
    sampleCpu: cpuSampler(proc.pid, opts.databasePid),
  };
  await ready(session, sut, opts, opts.kind !== 'constant');
  return sut;
}

/** Waits for /healthz, pins the process and its children (the web server of `ladder start`), and checks that two seeded codes redirect right. */
async function ready(session: BenchSession, sut: ServerUnderTest, opts: StartOptions, checkLocation: boolean): Promise<void> {
  const base = `http://${sut.host}:${sut.port}`;
  // PGlite seeds inside the server before it listens: allow for a large seed.
  const deadline = performance.now() + 60_000 + opts.links / 100;
  for (;;) {
    if (sut.proc.exitStatus !== undefined) {
      throw new Error(`${sut.label} stopped while starting (${sut.proc.exitStatus}):\n${session.supervisor.tail(sut.proc)}`);
    }
    if (performance.now() > deadline) throw new Error(`${sut.label} did not answer /healthz in time; see ${sut.proc.logFile}`);
    try {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  pinTree(sut.proc.pid, opts.cpus);
  for (const i of [0, opts.links - 1]) {
    const res = await fetch(`${base}/${benchCode(i)}`, { redirect: 'manual' });
    await res.arrayBuffer();
    const location = res.headers.get('location');
    if (res.status !== 302 || (checkLocation && location !== benchUrl(i))) {
      throw new Error(`${sut.label}: GET /${benchCode(i)} answered ${res.status} ${location ?? ''}, expected 302 to ${benchUrl(i)}`);
    }
  }
  session.log(`${sut.label} is up (pid ${sut.proc.pid}, port ${sut.port})`);
}
