// A topology launched with `ladder up`, as a bench run drives it: started and stopped
// through the `ladder` command itself (the path people type, so the bench measures
// what they run), in a state folder of the run's own (<bench dir>/topology, never the
// developer's .ladder). It pins the nodes, points the load driver at the entry or at one
// web server, and reads each node's CPU from /proc and its CPU cap's throttling from the
// cgroup.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { haproxyCommand, haproxySocketPath, serverStates } from '../../launcher/haproxy.ts';
import { statusOf } from '../../launcher/up-commands.ts';
import { logFile, upDir } from '../../launcher/up-state.ts';
import type { BenchSession } from '../machine/bench-session.ts';
import { pin, pinTree, type PinningPlan } from '../machine/cpu-pinning.ts';
import type { CpuSample, MeasureTarget } from '../measure/measurement.ts';
import type { ReadCounts } from '../measure/read-counts.ts';
import { LADDER_BIN } from '../machine/node-entry.ts';
import { cpuSeconds, treeCpuSeconds } from '../machine/proc-stats.ts';
import { cleanEnv } from '../machine/clean-env.ts';
import { favour } from '../machine/priority.ts';

/** One node as `ladder status --json` lists it. */
export interface TopologyNode {
  name: string;
  role: string;
  pid: number | null;
  port: number;
  url: string;
  state: string;
  restarts?: number;
  /** Cores the node is capped at; absent when it runs uncapped. */
  cpu?: number;
}

export interface TopologyStatus {
  entry: string | null;
  rung: number | null;
  state: string;
  notes: string[];
  nodes: TopologyNode[];
}

export interface LaunchOptions {
  rung: number;
  /** `--web K`; undefined: the rung's default. */
  web: number | undefined;
  /** `--cpu C`; undefined: uncapped. */
  cpu: number | undefined;
  /** `--replicas R`; undefined: the rung's default. */
  replicas?: number | undefined;
  /** `--db-cpu C`: every database node capped; undefined: uncapped. */
  dbCpu?: number | undefined;
  /**
   * Prometheus, Alertmanager and the exporters beside the topology (`--monitor`). Off unless
   * asked (`--no-monitor`): they scrape every node each second, and the recorded figures were
   * measured without them.
   */
  monitor?: boolean;
  /** Folder under the session's, for a run with several topologies side by side. Default `topology`. */
  folder?: string;
  pinning: PinningPlan;
  /** Environment for the topology's processes on top of the basics (the web servers inherit it). */
  env?: Record<string, string>;
  /** More `ladder up` flags (the autoscale scenario's --autoscale ...). */
  upArgs?: readonly string[];
}

/** How long `ladder up` may take (it waits for every node itself, up to 180 s). */
const UP_TIMEOUT_MS = 240_000;
const DOWN_TIMEOUT_MS = 120_000;

/** Superuser of the launcher's Postgres (SUPERUSER in src/launcher/postgres-server.ts). */
const PG_USER = 'postgres';

/**
 * The environment of the topology: the basics from ours and nothing else, so that a
 * REDIS_URL, LOG_REQUESTS or rate-limit setting in the developer's shell cannot change
 * what is measured (the web servers inherit the supervisor's environment).
 */
function topologyEnv(stateDir: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  return cleanEnv({ LADDER_STATE_DIR: stateDir, LOG_LEVEL: 'warn', ...extra });
}

/** CFS periods and throttled periods of the cgroup v1 cpu group a process is in. */
function throttling(pid: number): { periods: number; throttled: number } | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.split(':')[1]?.split(',').includes('cpu'));
    const group = line?.split(':').slice(2).join(':');
    if (!group || group === '/') return undefined;
    const stat = readFileSync(path.join('/sys/fs/cgroup/cpu', group, 'cpu.stat'), 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(stat)?.[1] ?? NaN);
    return { periods: field('nr_periods'), throttled: field('nr_throttled') };
  } catch {
    return undefined;
  }
}

export class BenchTopology {
  /** Web servers in HAProxy's rotation, once balanceOver has chosen; undefined: all. */
  private active: Set<string> | undefined;

  private constructor(
    private readonly session: BenchSession,
    readonly stateDir: string,
    private readonly env: NodeJS.ProcessEnv,
    readonly pinning: PinningPlan,
  ) {}

  /**
   * `ladder up --rung N [--web K] [--cpu C]` in <session dir>/topology; stopped with
   * `ladder down` when the session closes (or, if our process is exiting, by SIGTERM to
   * its supervisor, which stops its nodes).
   */
  static async launch(session: BenchSession, opts: LaunchOptions): Promise<BenchTopology> {
    const stateDir = path.join(session.dir, opts.folder ?? 'topology');
    const t = new BenchTopology(session, stateDir, topologyEnv(stateDir, opts.env ?? {}), opts.pinning);
    // The folder is ours (the session holds the bench lock): anything running there was left
    // by an earlier run that was killed before it could stop it.
    if (t.status().state !== 'stopped') {
      session.log('a topology left by an earlier bench run is still up: stopping it');
      await t.down();
    }
    session.defer(
      'the topology (ladder down)',
      () => t.down(),
      () => {
        const supervisor = (statusOf(stateDir) as { supervisor?: number | null }).supervisor;
        if (supervisor) process.kill(supervisor, 'SIGTERM');
      },
    );
    const args = ['up', '--rung', String(opts.rung)];
    if (opts.web !== undefined) args.push('--web', String(opts.web));
    if (opts.cpu !== undefined) args.push('--cpu', String(opts.cpu));
    if (opts.replicas !== undefined) args.push('--replicas', String(opts.replicas));
    if (opts.dbCpu !== undefined) args.push('--db-cpu', String(opts.dbCpu));
    args.push(opts.monitor ? '--monitor' : '--no-monitor');
    if (opts.upArgs) args.push(...opts.upArgs);
    session.log(`ladder ${args.join(' ')} (state in ${path.relative(process.cwd(), stateDir)})…`);
    await t.ladder(args, UP_TIMEOUT_MS);
    t.pin();
    const supervisor = (statusOf(stateDir) as { supervisor?: number | null }).supervisor;
    if (supervisor) favour(supervisor);
    return t;
  }

  /** Runs `ladder ARGS` with the topology's environment; its messages go to the bench log. */
  private ladder(args: string[], timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [LADDER_BIN, ...args], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        let nl: number;
        while ((nl = err.indexOf('\n')) >= 0) {
          const line = err.slice(0, nl).replace(/^ladder: /, '');
          err = err.slice(nl + 1);
          if (line.trim()) this.session.log(`  ${line}`);
        }
      });
      const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`ladder ${args.join(' ')} failed (${signal ?? `exit ${code}`}); see ${path.join(upDir(this.stateDir), 'logs')}`));
      });
    });
  }

  async down(): Promise<void> {
    await this.ladder(['down'], DOWN_TIMEOUT_MS);
  }

  /** The autoscaler's decisions so far, one line each, from the supervisor's log. */
  autoscalerDecisions(): string[] {
    try {
      return readFileSync(logFile(this.stateDir, 'supervisor'), 'utf8').split('\n').filter((l) => l.startsWith('autoscaler: '));
    } catch {
      return [];
    }
  }

  /** `ladder status --json`, read in-process (the same document). */
  status(): TopologyStatus {
    return statusOf(this.stateDir) as TopologyStatus;
  }

  nodes(role?: string): TopologyNode[] {
    return this.status().nodes.filter((n) => role === undefined || n.role === role);
  }

  /** The web servers, in name order (web1, web2, …). */
  webs(): TopologyNode[] {
    const num = (n: TopologyNode) => Number(n.name.replace(/\D/g, ''));
    return this.nodes('web').sort((a, b) => num(a) - num(b));
  }

  get entry(): URL {
    const entry = this.status().entry;
    if (!entry) throw new Error('the topology has no entry URL (is it up?)');
    return new URL(entry);
  }

  /**
   * URL of the topology's database, with the superuser's password, which PostgresServer
   * keeps beside its data folder (<state>/up/postgres/pg-password, mode 600). Never print it.
   */
  databaseUrl(): string {
    const pgNode = this.nodes('postgres')[0];
    if (!pgNode) throw new Error('the topology has no postgres node');
    const password = readFileSync(path.join(upDir(this.stateDir), 'postgres', 'pg-password'), 'utf8').trim();
    const u = new URL(pgNode.url);
    u.username = PG_USER;
    u.password = encodeURIComponent(password);
    return u.href;
  }

  /** Whether every database node runs under the CPU cap asked for (`--db-cpu`, the cgroup was writable). */
  databaseCapped(): boolean {
    const dbs = this.databaseNodes();
    return dbs.length > 0 && dbs.every((n) => n.cpu !== undefined);
  }

  /** The primary and its replicas, primary first. */
  databaseNodes(): TopologyNode[] {
    return [...this.nodes('postgres'), ...this.nodes('postgres-replica').sort((a, b) => a.name.localeCompare(b.name))];
  }

  /**
   * Plain reads the web servers have had served so far, by role: ladder_db_reads_total of
   * every web server's /metrics, summed (counters since each server started; take the
   * difference of two calls).
   */
  async databaseReads(): Promise<ReadCounts> {
    const texts = await Promise.all(
      this.webs().map(async (w) => {
        const res = await fetch(new URL('/metrics', w.url), { signal: AbortSignal.timeout(10_000) });
        if (!res.ok) throw new Error(`GET ${w.url}/metrics answered ${res.status}`);
        return res.text();
      }),
    );
    const reads: ReadCounts = { primary: 0, replica: 0, statements: 0, redirects: 0, byReplica: {} };
    const sample = /^([a-z_]+)\{(.*)\} (\S+)$/;
    for (const text of texts) {
      for (const line of text.split('\n')) {
        const m = sample.exec(line);
        if (!m) continue;
        const [, name, labels, value] = m as unknown as [string, string, string, string];
        const label = (key: string) => new RegExp(`(?:^|,)${key}="([^"]*)"`).exec(labels)?.[1];
        if (name === 'ladder_db_reads_total') {
          const role = label('role');
          if (role === 'primary' || role === 'replica') reads[role] += Number(value);
        } else if (name === 'ladder_db_queries_total') {
          reads.statements += Number(value);
        } else if (name === 'ladder_db_replica_reads_total') {
          const replica = label('replica') ?? '?';
          reads.byReplica[replica] = (reads.byReplica[replica] ?? 0) + Number(value);
        } else if (name === 'http_request_duration_seconds_count' && label('route') === '/:code') {
          reads.redirects += Number(value);
        }
      }
    }
    return reads;
  }

  /** Whether every web server runs under the CPU cap asked for (the cgroup was writable). */
  capped(): boolean {
    const webs = this.webs();
    return webs.length > 0 && webs.every((w) => w.cpu !== undefined);
  }

  private get adminSocket(): string {
    return haproxySocketPath(path.join(upDir(this.stateDir), 'haproxy'));
  }

  private async haproxy(command: string): Promise<void> {
    const answer = await haproxyCommand(this.adminSocket, command);
    if (answer !== '') throw new Error(`HAProxy refused "${command}": ${answer}`);
  }

  /**
   * Puts web1..webK in HAProxy's rotation and every other web server in maintenance, through
   * HAProxy's runtime API (the calls `ladder scale` makes, without stopping or starting a
   * process), then waits until HAProxy has exactly those K servers up. The servers out of
   * rotation keep running, idle and warm: a freshly started server capped at 0.2 core needs
   * far longer than a phase's warm-up before V8 has compiled its hot path (measured: 159
   * req/s after 1 s, about 700 once warm), and `ladder scale` would start fresh ones for
   * every larger size.
   * With `healthChecks: false` the servers in rotation are not health-checked (HAProxy
   * counts them up): under saturation a server capped at 0.2 core can take longer than the
   * 500 ms check timeout to answer /readyz behind its queue, HAProxy then takes it out of
   * rotation for a second or more, and the phase measures the check, not the servers.
   */
  async balanceOver(count: number, { healthChecks }: { healthChecks: boolean }): Promise<void> {
    const webs = this.webs();
    if (count < 1 || count > webs.length) throw new Error(`cannot balance over ${count} of ${webs.length} web servers`);
    const want = webs.slice(0, count).map((w) => w.name);
    for (const w of webs) {
      const inRotation = want.includes(w.name);
      await this.haproxy(`${inRotation && !healthChecks ? 'disable' : 'enable'} health web/${w.name}`);
      await this.haproxy(`set server web/${w.name} state ${inRotation ? 'ready' : 'maint'}`);
    }
    const deadline = performance.now() + 30_000;
    for (;;) {
      const states = await serverStates(this.adminSocket).catch((): Record<string, string> => ({}));
      const up = Object.entries(states)
        .filter(([, s]) => s.startsWith('UP') || s === 'no check')
        .map(([name]) => name);
      if (up.length === count && want.every((w) => up.includes(w))) break;
      if (performance.now() > deadline) throw new Error(`HAProxy did not have ${want.join(', ')} up within 30 s (up: ${up.join(', ') || 'none'})`);
      await new Promise((r) => setTimeout(r, 100));
    }
    this.active = new Set(want);
  }

  /**
   * How many times HAProxy has taken a web server out of rotation because its health check
   * failed (the `chkdown` counters of `show stat`, summed); 0 without HAProxy.
   */
  async healthCheckDowns(): Promise<number> {
    if (this.nodes('haproxy').length === 0) return 0;
    const csv = await haproxyCommand(this.adminSocket, 'show stat');
    const lines = csv.split('\n');
    const header = lines[0]?.replace(/^# /, '').split(',') ?? [];
    const col = header.indexOf('chkdown');
    if (col < 0) return 0;
    let downs = 0;
    for (const line of lines.slice(1)) {
      const f = line.split(',');
      if (f[0] === 'web' && f[1] !== 'BACKEND') downs += Number(f[col]) || 0;
    }
    return downs;
  }

  /**
   * Web servers on the servers' CPUs; Postgres (every backend), HAProxy and Redis on the
   * support CPUs for saturation, beside the web servers for a fixed rate (see
   * planTopologyPinning for why).
   */
  pin(phase: 'saturation' | 'fixed-rate' = 'saturation'): void {
    const { servers } = this.pinning;
    const support = phase === 'saturation' ? this.pinning.support : servers;
    for (const n of this.status().nodes) {
      if (n.pid === null) continue;
      if (n.role === 'web') pin(n.pid, servers);
      else if (n.role === 'postgres' || n.role === 'postgres-replica') pinTree(n.pid, support);
      else pin(n.pid, support);
    }
  }

  /**
   * A load target: the entry (HAProxy from rung 3), or one web server directly (`via` names it). CPU is always
   * the whole topology's, by component: the web servers (the report's "server"), every
   * Postgres node, HAProxy, Redis, and the web servers' cgroup throttling.
   */
  target(name: string, via = 'entry'): MeasureTarget {
    let url: URL;
    if (via === 'entry') url = this.entry;
    else {
      const node = this.webs().find((w) => w.name === via);
      if (!node) throw new Error(`no web server named ${via}`);
      url = new URL(node.url);
    }
    return { name, host: url.hostname, port: Number(url.port), sampleCpu: () => this.sampleCpu() };
  }

  private sampleCpu(): CpuSample {
    const nodes = this.status().nodes.filter((n) => n.pid !== null);
    const sum = (role: string, f: (pid: number) => number) => nodes.filter((n) => n.role === role).reduce((s, n) => s + f(n.pid!), 0);
    const components: Record<string, number> = {};
    for (const role of ['haproxy', 'redis']) if (nodes.some((n) => n.role === role)) components[role] = sum(role, cpuSeconds);
    const sample: CpuSample = {
      server: sum('web', cpuSeconds),
      database: sum('postgres', treeCpuSeconds) + sum('postgres-replica', treeCpuSeconds),
      components,
    };
    // Each database node on its own (primary, replicas), and its cap's throttling when capped.
    const dbs = nodes.filter((n) => n.role === 'postgres' || n.role === 'postgres-replica');
    if (dbs.length > 0) {
      sample.databaseNodes = Object.fromEntries(dbs.map((n) => [n.name, treeCpuSeconds(n.pid!)]));
      const capped = dbs.filter((n) => n.cpu !== undefined).map((n) => [n.name, throttling(n.pid!)] as const);
      if (capped.length > 0) {
        sample.databaseThrottling = Object.fromEntries(capped.filter(([, t]) => t !== undefined)) as Record<string, { periods: number; throttled: number }>;
      }
    }
    // Throttling of the servers in rotation only: an idle one's few periods would dilute it.
    const throttles = nodes
      .filter((n) => n.role === 'web' && n.cpu !== undefined && (this.active?.has(n.name) ?? true))
      .map((n) => throttling(n.pid!));
    const known = throttles.filter((t) => t !== undefined);
    if (known.length > 0 && known.length === throttles.length) {
      sample.throttling = {
        periods: known.reduce((s, t) => s + t.periods, 0),
        throttled: known.reduce((s, t) => s + t.throttled, 0),
      };
    }
    return sample;
  }
}
