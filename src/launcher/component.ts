// A component: one real program the launcher runs (Postgres, a replica, Redis, HAProxy, a
// web server; later Varnish, Prometheus, etcd, Patroni, PgBouncer, workers). The supervisor
// knows only this interface; each program's details live in its module under components/.
//
// Adding a program: a role in NodeRole (up-state.ts) and in ROLES below, a module under
// components/ that implements Component, and a line in plan.ts that creates it for the
// topologies that run it.
import type { ChildProcess } from 'node:child_process';
import type { ScrapeTarget } from './monitoring/prometheus-config.ts';
import type { NodeRole } from './up-state.ts';

export interface Component {
  /** The node's name in `ladder status`, `chaos` and `logs` (postgres, replica1, web2, ...). */
  readonly name: string;
  readonly role: NodeRole;
  readonly port: number;
  /** Where it serves, as `ladder status` shows it. */
  readonly url: string;
  /** Where its output goes (`ladder logs NAME`). */
  readonly logFile: string;
  /** Cores it is capped at, when it is (shown by `ladder status`). */
  readonly cpu?: number;
  /** Starts the program (preparing its data first when needed: initdb, a clone) and returns its process. */
  start(): Promise<ChildProcess>;
  /** Resolves once the started program serves; throws when it will not (it exited, or the deadline passed). */
  waitReady(child: ChildProcess): Promise<void>;
  /** Stops it: its graceful signal, then SIGKILL after its timeout. */
  stop(child: ChildProcess): Promise<void>;
  /**
   * A node whose role changes while it runs (a Patroni node: leader or replica): its role
   * now, or undefined when it cannot tell. The supervisor asks every second.
   */
  currentRole?(): Promise<NodeRole | undefined>;
  /** With currentRole: the role it is shown with while it is not running (a dead Patroni node leads nothing). */
  readonly downRole?: NodeRole;
  /**
   * The least time between an unexpected exit and the restart: a Patroni node killed as a
   * lost machine must stay away until its leader key has expired, or it would come back in
   * time to keep leading and no failover would happen (a rebooted machine takes that long too).
   */
  readonly restartDelayMs?: number;
  /** Rung 10 database nodes: their shard cluster (shard1, ...; `catalog`), shown in `ladder status --json`. */
  readonly shard?: string;
  /** Its management API, shown in `ladder status --json` (Patroni's REST API). */
  readonly apiUrl?: string;
  /** A pid file naming a process of the node that is not a descendant of its pid (chaos takes it too). */
  readonly pidFile?: string;
  /**
   * Where Prometheus scrapes this node (monitoring.md): its own /metrics, or an exporter
   * that the supervisor runs beside it and stops with it. A role with metrics says so here;
   * nothing else is needed for it to become a target labelled with its node and role.
   */
  readonly metrics?: MetricsTarget;
}

/** A node's scrape target: a loopback port and path, and the exporter that serves it when the program has none of its own. */
export interface MetricsTarget {
  port: number;
  path: string;
  exporter?: ExporterSpec;
}

/** An exporter process run beside its node (prometheus-postgres-exporter, prometheus-redis-exporter, ...). */
export interface ExporterSpec {
  /** The binary, found with requireBinary. */
  command: string;
  args: string[];
  /** On top of the launcher's environment: where credentials go, never on the command line. */
  env?: Record<string, string>;
  logFile: string;
}

/**
 * A component that spreads requests over the web servers (HAProxy). Scaling tells it
 * about servers added and removed at runtime, without a reload.
 */
export interface Balancer {
  addServer(web: Component): Promise<void>;
  /** Adds a server at a small share of the traffic and raises it to a full one over `rampMs`. */
  addServerGradually(web: Component, rampMs: number): Promise<void>;
  /** Stops new traffic to a server; its open requests finish. */
  drainServer(web: Component): Promise<void>;
  removeServer(web: Component): Promise<void>;
}

/** The component that scrapes the others (Prometheus): told the scrape targets whenever the nodes change. */
export interface TargetSink {
  setTargets(targets: readonly ScrapeTarget[]): void;
}

export function isTargetSink(c: Component): c is Component & TargetSink {
  return typeof (c as Partial<TargetSink>).setTargets === 'function';
}

export function isBalancer(c: Component): c is Component & Balancer {
  return typeof (c as Partial<Balancer>).addServer === 'function';
}

export interface RoleInfo {
  /** Roles that must be ready before this one starts, and that stop only after it. */
  after: readonly NodeRole[];
  /** Found in the command line of a live process of this role: how `ladder down` checks a pid from the state file is still ours. */
  command: string;
  /** Another command line a process of this role may have (a Patroni node's pid is Patroni's). */
  altCommand?: string;
  /** The graceful signal, also used for a process left behind by a supervisor that died. */
  stopSignal: NodeJS.Signals;
  stopTimeoutMs: number;
}

/** Every role, its dependencies and how its process is recognised and stopped. */
export const ROLES: Readonly<Record<NodeRole, RoleInfo>> = {
  // --ha: the membership store Patroni's leader key lives in, up before any database node.
  etcd: { after: [], command: 'etcd', stopSignal: 'SIGTERM', stopTimeoutMs: 10_000 },
  postgres: { after: ['etcd'], command: 'postgres', altCommand: 'patroni', stopSignal: 'SIGINT', stopTimeoutMs: 15_000 },
  'postgres-replica': { after: ['postgres'], command: 'postgres', altCommand: 'patroni', stopSignal: 'SIGINT', stopTimeoutMs: 15_000 },
  redis: { after: [], command: 'redis-server', stopSignal: 'SIGTERM', stopTimeoutMs: 5_000 },
  // --ha from rung 7: the session Redis' replica and the sentinels that fail over to it.
  'redis-replica': { after: ['redis'], command: 'redis-server', stopSignal: 'SIGTERM', stopTimeoutMs: 5_000 },
  sentinel: { after: ['redis', 'redis-replica'], command: 'redis-sentinel', altCommand: 'sentinel', stopSignal: 'SIGTERM', stopTimeoutMs: 5_000 },
  // SIGINT: PgBouncer's safe shutdown (after its clients, the web servers, have gone).
  pgbouncer: { after: ['postgres'], command: 'pgbouncer', stopSignal: 'SIGINT', stopTimeoutMs: 10_000 },
  web: { after: ['postgres', 'postgres-replica', 'redis', 'redis-replica', 'sentinel', 'pgbouncer'], command: '__web', stopSignal: 'SIGTERM', stopTimeoutMs: 15_000 },
  // SIGUSR1: HAProxy's soft stop, which finishes open requests.
  haproxy: { after: ['web'], command: 'haproxy', stopSignal: 'SIGUSR1', stopTimeoutMs: 10_000 },
  // The edge (rung 6): SIGTERM to the manager, which stops its cacher child.
  varnish: { after: ['haproxy'], command: 'varnishd', stopSignal: 'SIGTERM', stopTimeoutMs: 10_000 },
  alertmanager: { after: [], command: 'alertmanager', stopSignal: 'SIGTERM', stopTimeoutMs: 5_000 },
  // Rung 9: the broker (a Redis of its own, persisted), the relay that feeds it from the web
  // servers' click logs and the outbox, and the workers that consume it. The web servers need
  // none of them to answer: a click goes to a local log first.
  queue: { after: [], command: 'redis-server', stopSignal: 'SIGTERM', stopTimeoutMs: 10_000 },
  relay: { after: ['postgres', 'pgbouncer', 'queue'], command: '__relay', stopSignal: 'SIGTERM', stopTimeoutMs: 10_000 },
  worker: { after: ['postgres', 'pgbouncer', 'queue'], command: '__worker', stopSignal: 'SIGTERM', stopTimeoutMs: 15_000 },
  // Last up and first down: it watches every other node, and a stop is not reported as an outage.
  prometheus: { after: ['alertmanager', 'haproxy', 'web', 'varnish', 'relay', 'worker'], command: 'prometheus', stopSignal: 'SIGTERM', stopTimeoutMs: 10_000 },
};

/** What the command line of a node's exporter contains (`ladder down` checks a pid is still one before stopping it). */
export const EXPORTER_COMMAND = 'exporter';

/**
 * Roles in start order: each after every role it depends on. Stopping goes in the reverse
 * order (the balancer first, the database last).
 */
export function startOrder(roles: readonly NodeRole[] = Object.keys(ROLES) as NodeRole[]): NodeRole[] {
  const out: NodeRole[] = [];
  const visit = (r: NodeRole, path: NodeRole[]) => {
    if (out.includes(r)) return;
    if (path.includes(r)) throw new Error(`roles depend on each other in a cycle: ${[...path, r].join(' -> ')}`);
    for (const dep of ROLES[r].after) visit(dep, [...path, r]);
    out.push(r);
  };
  for (const r of roles) visit(r, []);
  return out.filter((r) => roles.includes(r));
}

/** What every component gets from the supervisor that runs it. */
export interface ComponentContext {
  /** The topology's state folder (.ladder). */
  stateDir: string;
  /** The running topology's folder (<stateDir>/up): each component keeps its data in a folder under it. */
  dir: string;
  /** Prefix of the cgroups this topology creates, unique per state folder. */
  groupPrefix: string;
  /** Whether --cpu / --db-cpu can be applied (the cgroup cpu controller is writable). */
  cpuCapped: boolean;
  /** A note for the user (`ladder up` prints it, `ladder status --json` keeps it). */
  note(message: string): void;
}
