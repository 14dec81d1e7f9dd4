// `ladder up | status | down | chaos | logs | scale`: the background launcher's commands.
// `up` starts a supervisor process in the background and returns once every node is
// ready; the others read the state file it keeps, and signal processes by PID.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { isAlive } from '../kit/process/pid.ts';
import { descendants } from '../kit/process/process-tree.ts';
import { stopPid } from '../kit/process/stop-process.ts';
import { buildTopology, checkWebCount, type TopologyInput } from '../topology/topology.ts';
import { requireBinary } from './binaries.ts';
import { edgeStatsSync, varnishWorkDir } from './components/varnish.ts';
import { readPostmasterPid } from './components/patroni.ts';
import { findLeader } from './patroni-api.ts';
import { EXPORTER_COMMAND, ROLES, startOrder } from './component.ts';
import { LADDER_BIN } from './ladder-bin.ts';
import { systemBinDir } from './postgres-server.ts';
import { DEFAULT_CHAOS_DOWN_S, writeChaosHold } from './chaos-hold.ts';
import { lockHolder } from './state-dir.ts';
import type { Progress } from './supervisor.ts';
import { logFile, readUpState, upDir, writeUpState, type NodeState, type UpState } from './up-state.ts';
import { LadderFailure } from '../kit/errors.ts';
const UP_TIMEOUT_MS = 180_000;

type Say = (msg: string) => void;

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** What a node's command line must contain for us to believe the pid is still that node. */
function looksLike(node: NodeState, pid: number): boolean {
  let cmd = '';
  try {
    cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  const role = ROLES[node.role] as (typeof ROLES)[keyof typeof ROLES] | undefined; // a state file from another version may name other roles
  return role !== undefined && (cmd.includes(role.command) || (role.altCommand !== undefined && cmd.includes(role.altCommand)));
}

/** A node's exporter pid from the state file, when that process is alive and still an exporter. */
function liveExporter(node: NodeState): number | undefined {
  const pid = node.exporter?.pid;
  if (pid === null || pid === undefined || !isAlive(pid)) return undefined;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(EXPORTER_COMMAND) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Stops what an earlier run left running (its supervisor died), by PID, checked first. */
async function cleanupStale(stateDir: string, state: UpState, say: Say): Promise<void> {
  const exporters = state.nodes.flatMap((n) => liveExporter(n) ?? []);
  for (const pid of exporters) await stopPid(pid, { signal: 'SIGTERM', timeoutMs: 3000 });
  const live = state.nodes.filter((n) => n.pid !== null && isAlive(n.pid) && looksLike(n, n.pid));
  if (live.length > 0) say(`stopping ${live.length} process(es) left by an earlier run whose supervisor died: ${live.map((n) => n.name).join(', ')}`);
  const order = startOrder().reverse();
  live.sort((a, b) => order.indexOf(a.role) - order.indexOf(b.role));
  for (const n of live) await stopPid(n.pid!, { signal: ROLES[n.role].stopSignal, timeoutMs: ROLES[n.role].stopTimeoutMs });
  writeUpState(stateDir, { ...state, state: 'stopped', supervisorPid: null, nodes: state.nodes.map((n) => ({ ...n, pid: null, state: 'stopped' })) });
}

export interface UpFlags extends TopologyInput {
  json?: boolean;
}

export async function up(flags: UpFlags, say: Say): Promise<number> {
  const topology = buildTopology({ ...flags, port: flags.port ?? 0 });
  if (topology.rung === 1) {
    say('rung 1 runs in the foreground: use `ladder start` (or --rung 2 and up for the background launcher)');
    return 1;
  }
  // Check everything we can before starting anything, so a failure leaves nothing behind.
  if (topology.features.loadBalancer) requireBinary('haproxy');
  if (topology.features.sharedSessions || topology.features.cache || topology.features.queue) requireBinary('redis-server');
  if (topology.features.monitoring) {
    for (const bin of ['prometheus', 'prometheus-alertmanager', 'prometheus-postgres-exporter']) requireBinary(bin);
    if (topology.features.sharedSessions || topology.features.cache || topology.features.queue) requireBinary('prometheus-redis-exporter');
    if (topology.features.cdn) requireBinary('prometheus-varnish-exporter');
  }
  if (topology.pgbouncer) requireBinary('pgbouncer');
  if (topology.ha.enabled && topology.features.sharedSessions) requireBinary('redis-sentinel');
  if (topology.ha.enabled) {
    requireBinary('patroni');
    requireBinary('etcd');
  }
  if (topology.database.replicas > 0) {
    // Replicas need the machine's PostgreSQL 15 (pg_basebackup); the error names the package.
    const bin = systemBinDir();
    if (!existsSync(path.join(bin, 'pg_basebackup'))) throw new LadderFailure('BINARY_MISSING', `pg_basebackup is not installed in ${bin}. Install it with: apt-get install -y postgresql`);
  }
  const dir = upDir(topology.stateDir);
  const holder = lockHolder(dir);
  if (holder !== undefined) {
    const s = readUpState(topology.stateDir);
    say(`a topology is already running here (rung ${s?.rung ?? '?'}, ${s?.entry ?? 'starting'}, supervisor pid ${holder}). Run \`ladder down\` first.`);
    return 1;
  }
  const stale = readUpState(topology.stateDir);
  if (stale && stale.state !== 'stopped') await cleanupStale(topology.stateDir, stale, say);
  if (topology.web.port !== 0 && !(await portFree(topology.web.host, topology.web.port))) {
    say(`port ${topology.web.port} is in use on ${topology.web.host}. Pick another with --port, or leave it out for a free one.`);
    return 1;
  }

  mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const supervisorLog = logFile(topology.stateDir, 'supervisor');
  const fd = openSync(supervisorLog, 'a');
  const child = spawn(process.execPath, [LADDER_BIN, '__supervise'], {
    detached: true, // its own session: it outlives this command and the terminal
    stdio: ['ignore', fd, fd, 'ipc'],
    env: { ...process.env, LADDER_TOPOLOGY: JSON.stringify({ ...flags, port: topology.web.port }) },
  });
  closeSync(fd);
  const { replicas, replicaDelayMs } = topology.database;
  say(
    `starting rung ${topology.rung}: ${topology.web.count} web server(s)${topology.features.loadBalancer ? ' behind HAProxy' : ''}` +
      `${replicas > 0 ? `, Postgres with ${replicas} replica(s)${replicaDelayMs > 0 ? ` applying ${replicaDelayMs} ms late` : ''}` : ''}` +
      `${topology.features.cache ? ', a cache (Redis + in-process L1)' : ''}` +
      `${topology.features.sharedSessions ? ', sessions in Redis' : ''}` +
      `${topology.features.queue ? `, a broker (BullMQ on Redis), the relay and ${topology.workers} worker(s)` : ''}` +
      `${topology.features.monitoring ? ', monitoring (Prometheus, Alertmanager, the dashboard)' : ''}` +
      `${topology.autoscale ? `; autoscaling ${topology.autoscale.min}..${topology.autoscale.max} web servers at ${Math.round(topology.autoscale.targetCpu * 100)}% CPU` : ''}` +
      `${topology.ha.enabled ? `; high availability: Patroni on pg1..pg${replicas + 1} with a 3-member etcd${topology.ha.sync ? ', synchronous replication' : ''}` : ''}`,
  );

  const result = await new Promise<{ ok: boolean; entry?: string; message?: string }>((resolve) => {
    const timer = setTimeout(() => resolve({ ok: false, message: `not ready within ${UP_TIMEOUT_MS / 1000} s` }), UP_TIMEOUT_MS);
    child.on('message', (m: Progress) => {
      if (m.type === 'node') {
        if (m.node.state === 'ready') say(`  ${m.node.name.padEnd(12)} ready  pid ${String(m.node.pid).padEnd(7)} ${m.node.url}${m.node.cpu ? `  (capped at ${m.node.cpu} core)` : ''}`);
      } else if (m.type === 'note') say(`  note: ${m.message}`);
      else if (m.type === 'ready') {
        clearTimeout(timer);
        resolve({ ok: true, entry: m.entry });
      } else {
        clearTimeout(timer);
        resolve({ ok: false, message: m.message });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ ok: false, message: `the supervisor exited (${code}) before the topology was ready` });
    });
  });
  if (!result.ok) {
    say(`could not start: ${result.message ?? 'unknown error'}`);
    if (isAlive(child.pid!)) await stopPid(child.pid!, { timeoutMs: 60_000 }); // it stops what it started
    say(`supervisor log: ${supervisorLog}`);
    return 1;
  }
  child.disconnect();
  child.unref();
  const dashboard = readUpState(topology.stateDir)?.dashboard;
  if (dashboard) say(`  dashboard ${dashboard}  (\`ladder dashboard\`; alerts: \`ladder alerts\`)`);
  if (flags.json) process.stdout.write(JSON.stringify(statusOf(topology.stateDir)) + '\n');
  else process.stdout.write(`${result.entry!}\n`);
  return 0;
}

/** The status document (`ladder status --json`), with pids that are gone shown as such. */
export function statusOf(stateDir: string) {
  const s = readUpState(stateDir);
  const supervisor = lockHolder(upDir(stateDir));
  if (!s || (s.state === 'stopped' && supervisor === undefined)) return { entry: null, rung: null, state: 'stopped', dashboard: null, nodes: [] };
  const nodes = s.nodes.map((n) => {
    const alive = n.pid !== null && isAlive(n.pid);
    return {
      name: n.name,
      role: n.role,
      pid: alive ? n.pid : null,
      port: n.port,
      url: n.url,
      state: alive ? n.state : n.state === 'restarting' ? 'restarting' : supervisor === undefined ? 'stopped' : n.state === 'ready' ? 'down' : n.state,
      restarts: n.restarts,
      ...(n.cpu !== undefined ? { cpu: n.cpu } : {}),
      // The edge's counters (varnishstat): hits, misses, passes, origin requests.
      ...(n.role === 'varnish' && alive ? { edge: edgeStatsSync(varnishWorkDir(upDir(stateDir))) ?? null } : {}),
      ...(n.api !== undefined ? { api: n.api } : {}),
      ...(n.shard !== undefined ? { shard: n.shard } : {}),
    };
  });
  return {
    entry: s.entry,
    rung: s.rung,
    state: supervisor === undefined ? 'stopped' : s.state,
    dashboard: supervisor === undefined ? null : (s.dashboard ?? null),
    supervisor: supervisor ?? null,
    notes: s.notes,
    nodes,
    ...(s.autoscaler ? { autoscaler: s.autoscaler } : {}),
  };
}

export function status(stateDir: string, json: boolean): number {
  const st = statusOf(stateDir);
  if (json) {
    process.stdout.write(JSON.stringify(st) + '\n');
    return 0;
  }
  if (st.nodes.length === 0) {
    process.stdout.write('nothing is running (start a topology with `ladder up --rung N`)\n');
    return 0;
  }
  process.stdout.write(`rung ${st.rung}  ${st.state}  entry ${st.entry}${st.dashboard ? `  dashboard ${st.dashboard}` : ''}\n`);
  for (const n of st.nodes) {
    process.stdout.write(`  ${n.name.padEnd(12)} ${n.role.padEnd(16)} ${n.state.padEnd(10)} pid ${String(n.pid ?? '-').padEnd(7)} ${n.url}${n.restarts ? `  restarts ${n.restarts}` : ''}\n`);
    if ('edge' in n && n.edge) {
      const e = n.edge;
      const looked = e.hits + e.misses;
      process.stdout.write(`               hits ${e.hits}  misses ${e.misses}  passes ${e.passes}  origin requests ${e.originRequests}  hit ratio ${looked ? ((100 * e.hits) / looked).toFixed(1) : '-'}%\n`);
    }
  }
  const a = "autoscaler" in st ? st.autoscaler : undefined;
  if (a) process.stdout.write(`  autoscaler ${a.min}..${a.max} web servers at ${Math.round(a.targetCpu * 100)}% CPU (sync ${a.syncSeconds} s, scale-in window ${a.scaleInWindowSeconds} s), metrics ${a.url}\n`);
  return 0;
}

export async function down(stateDir: string, say: Say): Promise<number> {
  const dir = upDir(stateDir);
  const supervisor = lockHolder(dir);
  const before = readUpState(stateDir);
  if (supervisor === undefined && (!before || before.state === 'stopped')) {
    say('nothing is running');
    return 0;
  }
  if (supervisor !== undefined) {
    say(`stopping the topology (supervisor pid ${supervisor})…`);
    await stopPid(supervisor, { timeoutMs: 90_000 });
  }
  // Whatever is still alive (a supervisor killed with -9 cannot stop its children) goes by PID.
  const after = readUpState(stateDir);
  if (after) await cleanupStale(stateDir, after, say);
  const left = (after?.nodes ?? []).filter((n) => n.pid !== null && isAlive(n.pid) && looksLike(n, n.pid));
  const exporters = (after?.nodes ?? []).filter((n) => liveExporter(n) !== undefined);
  if (left.length > 0 || exporters.length > 0) {
    say(`still running: ${[...left.map((n) => `${n.name} (pid ${n.pid})`), ...exporters.map((n) => `${n.name}'s exporter (pid ${n.exporter!.pid})`)].join(', ')}`);
    return 1;
  }
  say('stopped; no process of the topology is left');
  return 0;
}

const CHAOS: Record<string, NodeJS.Signals> = { kill: 'SIGKILL', stop: 'SIGSTOP', cont: 'SIGCONT', term: 'SIGTERM' };

/**
 * `ladder chaos ACTION NODE`; a killed node stays down `downS` seconds before the supervisor
 * restarts it. NODE `primary` is the Postgres that leads now: under --ha the node whose
 * Patroni holds the leader key (asked at once, not as of the last refresh). A --ha database
 * node is Patroni and its Postgres (whose postmaster is no child of Patroni): kill, stop and
 * cont take both trees, as losing or freezing the machine would.
 */
export async function chaos(stateDir: string, action: string | undefined, nodeName: string | undefined, say: Say, downS = DEFAULT_CHAOS_DOWN_S): Promise<number> {
  const signal = action ? CHAOS[action] : undefined;
  if (!signal || !nodeName) {
    say('usage: ladder chaos kill|stop|cont|term NODE (node names: `ladder status`; `primary` is the current Postgres leader)');
    return 1;
  }
  const s = readUpState(stateDir);
  const node = nodeName === 'primary' && s ? await currentPrimary(s.nodes) : s?.nodes.find((n) => n.name === nodeName);
  if (!s || !node) {
    const why = nodeName === 'primary' ? 'no Postgres leads right now' : `no node named "${nodeName}"`;
    say(`${why}${s ? `; nodes: ${s.nodes.map((n) => n.name).join(', ')}` : ' (nothing is running)'}`);
    return 1;
  }
  if (node.pid === null || !isAlive(node.pid)) {
    say(`${node.name} is not running right now (${node.state})`);
    return 1;
  }
  // kill and term go to the node's main process, as a crash or a stop request would; stop and
  // cont freeze and thaw the whole node (a Postgres node's backends and WAL receiver are
  // processes of their own, which would go on serving if only the postmaster were paused).
  // A --ha node's kill is the machine lost: Patroni, its Postgres and every backend.
  const whole = signal === 'SIGSTOP' || signal === 'SIGCONT' || (signal === 'SIGKILL' && node.pidFile !== undefined);
  const postmaster = node.pidFile !== undefined ? readPostmasterPid(node.pidFile) : undefined;
  const roots = [node.pid, ...(postmaster !== undefined && whole ? [postmaster] : [])];
  const targets = whole ? [...new Set(roots.flatMap((p) => [p, ...descendants(p)]))] : [node.pid];
  if (signal === 'SIGKILL' && downS > 0) writeChaosHold(stateDir, node.name, node.pid, downS * 1000);
  for (const pid of targets) {
    try {
      process.kill(pid, signal);
    } catch {
      /* exited meanwhile */
    }
  }
  say(
    `sent ${signal} to ${node.name} (pid ${node.pid}${targets.length > 1 ? ` and ${targets.length - 1} other process(es) of the node` : ''})` +
      `${signal === 'SIGKILL' ? (downS > 0 ? `; it stays down ${downS} s, then the supervisor restarts it` : '; the supervisor restarts it') : ''}`,
  );
  return 0;
}

/** The node that leads: asked of each Patroni API when there are some, else the state's `postgres` node. */
async function currentPrimary(nodes: readonly NodeState[]): Promise<NodeState | undefined> {
  const patroni = nodes.filter((n) => n.api !== undefined);
  if (patroni.length === 0) return nodes.find((n) => n.role === 'postgres');
  const i = await findLeader(patroni.map((n) => n.api!));
  return i === undefined ? undefined : patroni[i];
}

export function logs(stateDir: string, nodeName: string | undefined, lines: number, say: Say): number {
  if (!nodeName) {
    say('usage: ladder logs NODE [--lines N]');
    return 1;
  }
  const file = logFile(stateDir, nodeName);
  if (!/^[a-z0-9-]+$/.test(nodeName) || !existsSync(file)) {
    say(`no log for "${nodeName}" (see \`ladder status\` for node names)`);
    return 1;
  }
  const text = readFileSync(file, 'utf8').split('\n');
  process.stdout.write(text.slice(-lines - 1).join('\n'));
  return 0;
}

/** Asks the supervisor to run K web servers; returns once they are ready. */
export async function scale(stateDir: string, count: number, say: Say): Promise<number> {
  checkWebCount(count, false); // a count no topology can run is refused before anything is looked up
  const supervisor = lockHolder(upDir(stateDir));
  if (supervisor === undefined) {
    say('nothing is running');
    return 1;
  }
  // Refused here, at once, rather than by the supervisor after the wait below.
  checkWebCount(count, (readUpState(stateDir)?.nodes ?? []).some((n) => n.role === 'haproxy'));
  writeFileSync(path.join(upDir(stateDir), 'scale.json'), JSON.stringify({ web: count }));
  process.kill(supervisor, 'SIGUSR2');
  const deadline = performance.now() + 90_000;
  for (;;) {
    const webs = (readUpState(stateDir)?.nodes ?? []).filter((n) => n.role === 'web');
    if (webs.length === count && webs.every((n) => n.state === 'ready')) {
      say(`${count} web server(s) ready`);
      return 0;
    }
    if (performance.now() > deadline) {
      say(`not at ${count} ready web servers within 90 s; see \`ladder logs supervisor\``);
      return 1;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
