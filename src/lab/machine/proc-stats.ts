// What /proc says about a process: CPU time used and resident memory. The report uses the
// CPU figures to tell who was the bottleneck (app, Postgres, or the driver itself).
import { readFileSync } from 'node:fs';
import { treeCpuSeconds as treeCpu } from '../../kit/process/process-cpu.ts';
import { descendants } from '../../kit/process/process-tree.ts';

/** CPU seconds of a process (one implementation, in the kit, for the lab and the autoscaler). */
export { cpuSeconds } from '../../kit/process/process-cpu.ts';

/** Pids of every live descendant of `pid` (one helper for the whole project). */
export { descendants };

/** CPU seconds used by a process tree (0 when it is gone). */
export function treeCpuSeconds(pid: number): number {
  return treeCpu(pid) ?? 0;
}

export interface MemoryUse {
  /** Resident set now, in MiB. */
  rssMb: number;
  /** Peak resident set, in MiB. */
  peakMb: number;
}

/**
 * The process that serves requests for a server we started: `ladder start` answers from a
 * child web process (`... __web`), a reference from its own process.
 */
export function servingPid(pid: number): number {
  for (const d of descendants(pid)) {
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes('__web')) return d;
    } catch {
      // It exited between the listing and the read: not the one we are looking for.
    }
  }
  return pid;
}

export function memoryUse(pid: number): MemoryUse | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}
