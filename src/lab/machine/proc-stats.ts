// What /proc says about a process: CPU time used and resident memory. The report uses the
// CPU figures to tell who was the bottleneck (app, Postgres, or the driver itself).
import { readFileSync } from 'node:fs';
import { descendants } from '../../kit/process/process-tree.ts';

/** Linux reports CPU times in clock ticks; USER_HZ is 100 on every architecture we run on. */
const TICKS_PER_SECOND = 100;

interface Stat {
  ppid: number;
  /** utime + stime, in seconds. */
  own: number;
  /** cutime + cstime (reaped children), in seconds. */
  children: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses; fields are counted after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (i: number) => Number(f[i - 3]); // f[0] is field 3 (state) of proc(5)
  return { ppid: n(4), own: (n(14) + n(15)) / TICKS_PER_SECOND, children: (n(16) + n(17)) / TICKS_PER_SECOND };
}

/** CPU seconds used by one process (all its threads). */
export function cpuSeconds(pid: number): number {
  return readStat(pid)?.own ?? 0;
}

/** Pids of every live descendant of `pid` (one helper for the whole project). */
export { descendants };

/**
 * CPU seconds used by a process tree (a postmaster and its backends): the live processes'
 * own time plus what the root has collected from children that already exited.
 */
export function treeCpuSeconds(pid: number): number {
  const root = readStat(pid);
  if (!root) return 0;
  let total = root.own + root.children;
  for (const d of descendants(pid)) total += readStat(d)?.own ?? 0;
  return total;
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
