// The state of a topology started by `ladder up`, kept in <stateDir>/up/state.json by the
// supervisor and read by `ladder status`, `down`, `chaos` and `logs`. Its JSON shape is
// what `ladder status --json` prints (a contract: {entry, rung, nodes:[{name,role,pid,port,url,state}]}).
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export type NodeRole =
  | 'postgres'
  | 'postgres-replica'
  | 'redis'
  | 'haproxy'
  | 'web'
  | 'varnish'
  | 'prometheus'
  | 'alertmanager'
  | 'etcd'
  | 'pgbouncer'
  | 'redis-replica'
  | 'sentinel'
  | 'queue'
  | 'relay'
  | 'worker';
export type NodeRunState = 'starting' | 'ready' | 'restarting' | 'stopping' | 'stopped' | 'failed';

export interface NodeState {
  name: string;
  role: NodeRole;
  pid: number | null;
  port: number;
  url: string;
  state: NodeRunState;
  restarts: number;
  /** Cores the node is capped at, when it is. */
  cpu?: number;
  /** --ha database nodes: Patroni's REST API. */
  api?: string;
  /** Rung 10 database nodes: the shard cluster they belong to (`catalog` for the catalog). */
  shard?: string;
  /** --ha database nodes: their Postgres' postmaster.pid (the postmaster is no child of Patroni). */
  pidFile?: string;
  /** The node's metrics exporter, a process of its own beside it (Postgres, Redis): stopped with the node. */
  exporter?: { pid: number | null; port: number };
}

/** The autoscaler's part of the state file (`ladder status --json`), with `--autoscale`. */
export interface AutoscalerState {
  /** Its Prometheus endpoint (loopback). */
  url: string;
  min: number;
  max: number;
  targetCpu: number;
  syncSeconds: number;
  scaleInWindowSeconds: number;
}

export interface UpState {
  entry: string | null;
  rung: number | null;
  state: 'starting' | 'ready' | 'stopping' | 'stopped' | 'failed';
  supervisorPid: number | null;
  startedAt: string | null;
  notes: string[];
  /** The monitoring dashboard's URL, when the topology runs monitoring. */
  dashboard?: string | null;
  nodes: NodeState[];
  /** With `--autoscale`: its settings and the URL of its Prometheus endpoint. */
  autoscaler?: AutoscalerState;
}

export function upDir(stateDir: string): string {
  return path.join(stateDir, 'up');
}

export function statePath(stateDir: string): string {
  return path.join(upDir(stateDir), 'state.json');
}

export function readUpState(stateDir: string): UpState | undefined {
  const file = statePath(stateDir);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as UpState;
  } catch {
    return undefined; // torn or hand-edited: treated as no state
  }
}

/** Atomic write (rename), so a reader never sees half a file. */
export function writeUpState(stateDir: string, state: UpState): void {
  const file = statePath(stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2));
  renameSync(tmp, file);
}

export function logFile(stateDir: string, node: string): string {
  return path.join(upDir(stateDir), 'logs', `${node}.log`);
}
