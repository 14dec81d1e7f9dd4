// The background process behind `ladder up`: registers a topology's components (plan.ts),
// launches them in dependency order, reports each as it comes up, restarts any that dies
// with backoff, scales the web tier, and on SIGTERM stops them all in reverse order. It knows
// components only through the Component interface. Its state is the state file that
// `ladder status` prints.
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { exited, hasExited } from '../kit/process/stop-process.ts';
import type { Topology } from '../topology/topology.ts';
import { Autoscaler, type ScalableServer } from './autoscaler.ts';
import { cgroupAvailable } from './cgroup-cpu.ts';
import { isBalancer, isTargetSink, startOrder, type Component, type ComponentContext } from './component.ts';
import { MAX_WEB } from './components/haproxy.ts';
import { chaosHoldMs } from './chaos-hold.ts';
import { startExporter, stopExporter } from './exporter.ts';
import { planTopology, type Plan } from './plan.ts';
import { acquireLock, ensureDir } from './state-dir.ts';
import { warmServer } from './warm-up.ts';
import { upDir, writeUpState, type NodeRole, type NodeState, type UpState } from './up-state.ts';

export { MAX_WEB };

export type Progress =
  | { type: 'node'; node: NodeState }
  | { type: 'note'; message: string }
  | { type: 'ready'; entry: string }
  | { type: 'error'; message: string };

/** A registered component and what the supervisor tracks of it. */
interface Managed {
  component: Component;
  info: NodeState;
  child?: ChildProcess;
  /** Its metrics exporter, when it has one (component.metrics.exporter): runs while the node does. */
  exporter?: ChildProcess;
  stopRequested?: boolean;
  recentRestarts: number[];
}

export interface SupervisorOptions {
  topology: Topology;
  /** Where progress goes (the IPC channel to `ladder up`). */
  report: (p: Progress) => void;
}

/** A server added at runtime goes from a tenth of a full share of the traffic to all of it in this long. */
const ADD_RAMP_MS = 10_000;
/** How often a node with a changing role (a Patroni node) is asked for it. */
const ROLE_REFRESH_MS = 1000;

/** Restarts within this window count towards the backoff. */
const RESTART_WINDOW_MS = 30_000;

export class Supervisor {
  private readonly nodes: Managed[] = [];
  private readonly state: UpState;
  private readonly dir: string;
  private stopping = false;
  private release: (() => void) | undefined;
  private plan: Plan | undefined;
  private autoscaler: Autoscaler | undefined;
  /** Scale requests (`ladder scale`, the autoscaler) run one after the other. */
  private scaling: Promise<void> = Promise.resolve();
  /** Servers being raised to a full share of the traffic. */
  private readonly ramps = new Set<Promise<void>>();

  constructor(private readonly opts: SupervisorOptions) {
    const t = opts.topology;
    this.dir = ensureDir(upDir(t.stateDir));
    this.state = {
      entry: null,
      rung: t.rung,
      state: 'starting',
      supervisorPid: process.pid,
      startedAt: new Date().toISOString(),
      notes: [],
      nodes: [],
    };
  }

  private save(): void {
    this.state.nodes = this.nodes.map((n) => n.info);
    writeUpState(this.opts.topology.stateDir, this.state);
    this.publishTargets();
  }

  /** Every node with metrics is a scrape target, labelled with its name and role; Prometheus learns of each change. */
  private publishTargets(): void {
    const sink = this.nodes.map((n) => n.component).find(isTargetSink);
    if (!sink) return;
    const autoscaler = this.state.autoscaler ? new URL(this.state.autoscaler.url) : undefined;
    sink.setTargets([
      ...this.nodes.flatMap(({ component: c }) => (c.metrics ? [{ node: c.name, role: c.role, port: c.metrics.port, path: c.metrics.path }] : [])),
      // The autoscaler's decisions (ladder_autoscaler_*), served by this process.
      ...(autoscaler ? [{ node: 'autoscaler', role: 'autoscaler' as const, port: Number(autoscaler.port), path: autoscaler.pathname }] : []),
    ]);
  }

  private note(message: string): void {
    this.state.notes.push(message);
    this.opts.report({ type: 'note', message });
    this.save();
  }

  private setNode(n: Managed, patch: Partial<NodeState>): void {
    Object.assign(n.info, patch);
    this.save();
    this.opts.report({ type: 'node', node: { ...n.info } });
  }

  async start(): Promise<string> {
    const t = this.opts.topology;
    this.release = acquireLock(this.dir, 'A topology (`ladder up`)');
    for (const skipped of t.skipped) this.note(`${skipped} is not built yet: this topology runs without it`);
    let cpuCapped = false;
    if (t.web.cpu !== undefined || t.database.cpu !== undefined) {
      cpuCapped = cgroupAvailable();
      if (!cpuCapped) this.note(`cannot cap CPU: /sys/fs/cgroup/cpu is not writable here; every node runs uncapped`);
    }
    const ctx: ComponentContext = {
      stateDir: t.stateDir,
      dir: this.dir,
      groupPrefix: createHash('sha256').update(path.resolve(this.dir)).digest('hex').slice(0, 8),
      cpuCapped,
      note: (m) => this.note(m),
    };
    this.save();
    this.plan = await planTopology(t, ctx);
    for (const c of this.plan.components) this.register(c);
    // Role by role in dependency order; the components of one role start together.
    for (const role of startOrder()) await Promise.all(this.byRole(role).map((n) => this.launch(n)));
    if (this.plan.dashboard) this.state.dashboard = await this.plan.dashboard.start(() => ({ ...this.state, nodes: this.nodes.map((n) => ({ ...n.info })) }));
    this.state.entry = this.plan.entry;
    if (t.autoscale) {
      this.autoscaler = new Autoscaler(t.autoscale, this, (line) => process.stderr.write(`${line}\n`));
      this.state.autoscaler = await this.autoscaler.start();
    }
    // The roles `up` reports are the live ones: every Patroni node starts as a leader candidate.
    await this.watchRoles();
    this.state.state = 'ready';
    this.save();
    return this.plan.entry;
  }

  /** Nodes whose role changes while they run (Patroni: leader or replica) are asked every second. */
  private async watchRoles(): Promise<void> {
    const live = this.nodes.filter((n) => n.component.currentRole !== undefined);
    if (live.length === 0) return;
    let busy = false;
    const refresh = async () => {
      for (const n of this.nodes) {
        if (this.stopping || !n.component.currentRole || n.info.state !== 'ready') continue;
        const role = await n.component.currentRole();
        if (role !== undefined && role !== n.info.role && !this.stopping) {
          process.stderr.write(`${new Date().toISOString()} ${n.info.name} is now ${role}\n`);
          this.setNode(n, { role });
        }
      }
    };
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void refresh().finally(() => (busy = false));
    }, ROLE_REFRESH_MS);
    timer.unref();
    busy = true;
    await refresh().finally(() => (busy = false));
  }

  private register(component: Component): Managed {
    const { name, role, port, url, cpu, apiUrl, pidFile, shard } = component;
    const info: NodeState = {
      name, role, port, url, pid: null, state: 'starting', restarts: 0,
      ...(shard !== undefined ? { shard } : {}),
      ...(cpu !== undefined ? { cpu } : {}),
      ...(apiUrl !== undefined ? { api: apiUrl } : {}),
      ...(pidFile !== undefined ? { pidFile } : {}),
    };
    const n: Managed = { component, info, recentRestarts: [] };
    this.nodes.push(n);
    return n;
  }

  private byRole(role: NodeRole): Managed[] {
    return this.nodes.filter((n) => n.info.role === role);
  }

  /** Starts a component, waits until it is ready, records its pid, and watches it for an unexpected exit. */
  private async launch(n: Managed): Promise<void> {
    this.setNode(n, { state: n.info.restarts > 0 ? 'restarting' : 'starting' });
    const child = await n.component.start();
    n.child = child;
    n.stopRequested = false;
    try {
      await n.component.waitReady(child);
    } catch (err) {
      // Not ready: stop what was started, so a retry (or `down`) finds no stray process.
      await n.component.stop(child);
      throw err;
    }
    const metrics = n.component.metrics;
    if (metrics?.exporter) {
      await this.stopExporterOf(n); // one exporter per node, whatever happened to the last one
      try {
        n.exporter = await startExporter(n.info.name, metrics);
      } catch (err) {
        await n.component.stop(child);
        throw err;
      }
    }
    this.setNode(n, { pid: child.pid ?? null, state: 'ready', ...(n.exporter ? { exporter: { pid: n.exporter.pid ?? null, port: metrics!.port } } : {}) });
    const onExit = (how: string) => {
      // The node's exporter goes with it: a node that is down is a target that is down.
      if (n.child === child) void this.stopExporterOf(n);
      if (this.stopping || n.stopRequested || n.child !== child) return;
      this.onCrash(n, how, chaosHoldMs(this.opts.topology.stateDir, n.info.name, child.pid));
    };
    if (hasExited(child)) onExit(`exit ${child.exitCode ?? child.signalCode}`);
    else child.once('exit', (code, signal) => onExit(`exit ${code ?? signal}`));
  }

  private async stopExporterOf(n: Managed): Promise<void> {
    const exporter = n.exporter;
    n.exporter = undefined;
    if (n.info.exporter) n.info.exporter = { ...n.info.exporter, pid: null };
    await stopExporter(exporter);
  }

  /** Restarts a node that died, after its backoff, or after `holdMs` when `ladder chaos kill` asked to keep it down. */
  private onCrash(n: Managed, how: string, holdMs = 0): void {
    const now = Date.now();
    n.recentRestarts = n.recentRestarts.filter((t) => now - t < RESTART_WINDOW_MS);
    // Backoff: at once after a clean exit (a rolling restart), else 250 ms doubling to 5 s.
    const backoff = how === 'exit 0' && n.recentRestarts.length === 0 ? 0 : Math.min(5000, 250 * 2 ** n.recentRestarts.length);
    const delay = Math.max(backoff, holdMs, n.component.restartDelayMs ?? 0);
    n.recentRestarts.push(now);
    process.stderr.write(`${new Date().toISOString()} ${n.info.name} ${how}; restarting in ${delay} ms\n`);
    this.setNode(n, { state: 'restarting', pid: null, restarts: n.info.restarts + 1, ...(n.component.downRole ? { role: n.component.downRole } : {}) });
    setTimeout(() => {
      if (this.stopping) return;
      this.launch(n).catch((err: unknown) => {
        process.stderr.write(`${n.info.name} restart failed: ${(err as Error).message}\n`);
        if (!this.stopping) this.onCrash(n, 'failed restart');
      });
    }, delay).unref();
  }

  /** The web servers serving now (ready, not starting or draining), for the autoscaler. */
  servingWebs(): ScalableServer[] {
    return this.byRole('web')
      .filter((n) => n.info.state === 'ready' && n.info.pid !== null)
      .map((n) => ({ name: n.info.name, pid: n.info.pid!, ...(n.info.cpu !== undefined ? { cpu: n.info.cpu } : {}) }));
  }

  /** Adds or removes web servers at runtime; the balancer learns without a reload. */
  scale(count: number): Promise<void> {
    const next = this.scaling.then(() => this.scaleNow(count));
    this.scaling = next.catch(() => undefined);
    return next;
  }

  private async scaleNow(count: number): Promise<void> {
    if (this.stopping) return;
    const balancer = this.nodes.map((n) => n.component).find(isBalancer);
    if (balancer && count > MAX_WEB) throw new Error(`at most ${MAX_WEB} web servers behind HAProxy`);
    const webs = this.byRole('web');
    if (count > webs.length) {
      for (let i = webs.length + 1; i <= count; i++) {
        const n = this.register(await this.plan!.newWeb(`web${i}`));
        await this.launch(n);
        if (balancer) {
          // Its first requests run cold: they go to its own port, not to users; then it takes a
          // growing share of the traffic (not awaited: the next scaling need not wait for it).
          await warmServer(n.component.url);
          const ramp = balancer.addServerGradually(n.component, ADD_RAMP_MS).catch((err: unknown) => {
            if (!this.stopping) process.stderr.write(`${n.info.name}: adding to the balancer failed: ${(err as Error).message}\n`);
          });
          this.ramps.add(ramp);
          void ramp.finally(() => this.ramps.delete(ramp));
        }
      }
    } else {
      for (const n of webs.slice(count).reverse()) {
        n.stopRequested = true;
        this.setNode(n, { state: 'stopping' });
        // Drain first: the balancer stops sending new requests, then the server finishes its own.
        if (balancer) await balancer.drainServer(n.component);
        if (n.child) await n.component.stop(n.child);
        await this.stopExporterOf(n);
        if (balancer) await balancer.removeServer(n.component);
        this.nodes.splice(this.nodes.indexOf(n), 1);
        this.save();
      }
    }
  }

  /** Rung 10: starts shard clusters up to `count` (shard1..shardN), each primary before its replicas. */
  addClusters(count: number): Promise<void> {
    const next = this.scaling.then(async () => {
      if (this.stopping || !this.plan?.newCluster) throw new Error('this topology has no shards');
      for (let i = 1; i <= count; i++) {
        const name = `shard${i}`;
        if (this.nodes.some((n) => n.info.name === name)) continue;
        const [primary, ...replicas] = await this.plan.newCluster(name);
        await this.launch(this.register(primary!));
        await Promise.all(replicas.map((r) => this.launch(this.register(r))));
      }
    });
    this.scaling = next.catch(() => undefined);
    return next;
  }

  /** Stops everything in reverse dependency order (balancer first, database last). */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.state.state = 'stopping';
    this.save();
    await this.autoscaler?.stop();
    await this.scaling;
    await Promise.all(this.ramps);
    await this.plan?.dashboard?.stop();
    for (const role of startOrder().reverse()) {
      await Promise.all(
        this.byRole(role).map(async (n) => {
          this.setNode(n, { state: 'stopping' });
          if (n.child) {
            await n.component.stop(n.child).catch((err: unknown) => {
              process.stderr.write(`${n.info.name}: stop failed: ${(err as Error).message}; killing it\n`);
              n.child?.kill('SIGKILL');
            });
            await exited(n.child);
          }
          await this.stopExporterOf(n);
          this.setNode(n, { state: 'stopped', pid: null });
        }),
      );
    }
    this.state.state = 'stopped';
    this.save();
    this.release?.();
  }
}
