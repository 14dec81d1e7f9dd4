// CPU time a process, or a process tree, has used, from /proc: what the lab reports to tell
// who was the bottleneck and what the autoscaler divides by the wall time for utilisation.
import { readFileSync } from 'node:fs';
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
