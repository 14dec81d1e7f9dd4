// Keeps the load driver off the servers' cores: with 2 cores, the servers (web process and
// Postgres) get CPU 0 and the driver CPU 1, so the driver's own work never steals time
// from what it measures. Uses taskset (util-linux); without it, or on one core, nothing
// is pinned and the report says so.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { descendants } from './proc-stats.ts';

export interface PinningPlan {
  /** taskset CPU lists, e.g. "0" and "1"; undefined when nothing is pinned. */
  servers: string | undefined;
  driver: string | undefined;
  /** Topologies only: CPUs of the nodes that are not web servers (Postgres, HAProxy, Redis)
   *  in saturation phases; in fixed-rate phases they join the web servers on `servers`. */
  support?: string | undefined;
  note: string;
}

/** CPUs this process may run on (Cpus_allowed_list, e.g. "0-1"). */
export function allowedCpus(): number[] {
  const text = readFileSync('/proc/self/status', 'utf8');
  const list = /^Cpus_allowed_list:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? '';
  const cpus: number[] = [];
  for (const part of list.split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a)) continue;
    for (let c = a; c <= (b ?? a); c++) cpus.push(c);
  }
  return cpus;
}

export function planPinning(): PinningPlan {
  const cpus = allowedCpus();
  if (spawnSync('taskset', ['--version']).status !== 0) {
    return { servers: undefined, driver: undefined, note: 'not pinned: taskset is missing (apt-get install util-linux)' };
  }
  if (cpus.length < 2) return { servers: undefined, driver: undefined, note: `not pinned: only ${cpus.length} CPU available` };
  const driver = String(cpus[cpus.length - 1]);
  const servers = cpus.slice(0, -1).join(',');
  return { servers, driver, note: `servers (web processes, Postgres) on CPU ${servers}; load driver on CPU ${driver}` };
}

/**
 * For a launched topology, whose web servers are what is measured (and, with --cpu, capped).
 * Saturation: the web servers get every CPU but the last; Postgres, HAProxy, Redis and the
 * driver share the last. On two cores that is CPU 0 for the web tier and CPU 1 for the rest.
 * Why not the rung 1 plan (Postgres with the servers): 4 web servers at 0.2 core fill 0.8 of
 * CPU 0, and Postgres and HAProxy at their throughput need about 0.6 core more, so it would
 * be them, not the capped web tier, that ran out (docs/performance.md, "Scaling out").
 * Fixed arrival rate: the whole topology on the web servers' CPUs and the driver alone on the
 * last, as in the rung 1 plan, because the open loop spins (setImmediate) and would take CPU
 * from HAProxy and Postgres; at half the saturation rate or less the topology fits.
 */
export function planTopologyPinning(): PinningPlan {
  const cpus = allowedCpus();
  if (spawnSync('taskset', ['--version']).status !== 0) {
    return { servers: undefined, driver: undefined, note: 'not pinned: taskset is missing (apt-get install util-linux)' };
  }
  if (cpus.length < 2) return { servers: undefined, driver: undefined, note: `not pinned: only ${cpus.length} CPU available` };
  const rest = String(cpus[cpus.length - 1]);
  const servers = cpus.slice(0, -1).join(',');
  return {
    servers,
    driver: rest,
    support: rest,
    note:
      `saturation: web servers on CPU ${servers}; Postgres, HAProxy, Redis and the load driver on CPU ${rest}. ` +
      `Fixed rate: the whole topology on CPU ${servers}, the load driver alone on CPU ${rest}`,
  };
}

/** Pins every thread of a running process to `cpus`; threads and children it makes later inherit it. */
export function pin(pid: number, cpus: string | undefined): void {
  if (cpus === undefined) return;
  const res = spawnSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cpus, String(pid)], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`taskset could not pin pid ${pid} to CPU ${cpus}: ${res.stderr.trim()}`);
}

/** Pins a process and its current descendants (a postmaster and the workers it has started). */
export function pinTree(pid: number, cpus: string | undefined): void {
  if (cpus === undefined) return;
  pin(pid, cpus);
  for (const p of descendants(pid)) {
    try {
      pin(p, cpus);
    } catch {
      // a worker that exited between listing and pinning: nothing left to pin
    }
  }
}
