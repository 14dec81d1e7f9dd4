// CPU time a process, or a process tree, has used, from /proc: what the lab reports to tell
// who was the bottleneck and what the autoscaler divides by the wall time for utilisation.
import { readdirSync, readFileSync } from 'node:fs';
import { descendants } from './process-tree.ts';

/** Linux reports CPU times in clock ticks; USER_HZ is 100 on every architecture we run on. */
const TICKS_PER_SECOND = 100;

interface Stat {
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
  return { own: (n(14) + n(15)) / TICKS_PER_SECOND, children: (n(16) + n(17)) / TICKS_PER_SECOND };
}

/** CPU seconds used by one process (all its threads); 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  return readStat(pid)?.own ?? 0;
}

/**
 * CPU seconds used by a process tree (a postmaster and its backends): the live processes'
 * own time plus what the root has collected from children that already exited; undefined
 * when the root is gone.
 */
export function treeCpuSeconds(pid: number): number | undefined {
  const root = readStat(pid);
  if (!root) return undefined;
  let total = root.own + root.children;
  for (const d of descendants(pid)) total += readStat(d)?.own ?? 0;
  return total;
}

/**
 * CPU seconds one process's threads have run, to the nanosecond (each thread's schedstat under /proc/PID/task),
 * where /proc/PID/stat counts in 10 ms ticks: for per-second samples of a process capped at a
 * fraction of a core, whose second holds only a few ticks. Undefined when it is gone.
 */
export function preciseCpuSeconds(pid: number): number | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let ns = 0;
  for (const t of tasks) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* the thread exited meanwhile */
    }
  }
  return ns / 1e9;
}
