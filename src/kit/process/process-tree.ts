// A process and the processes it has forked: a Postgres node is a postmaster and its
// workers (startup, WAL receiver, backends), and capping, pausing or measuring the node
// means all of them. One implementation for the launcher and the lab.
import { readdirSync, readFileSync } from 'node:fs';

/** Parent pid of every live process, from /proc (the parent pid is field 4 of /proc/N/stat). */
export function parentPids(): Map<number, number> {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited between readdir and read: not part of any tree any more
    }
    // The command name (field 2) may hold spaces and parentheses: parse after its last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    parentOf.set(Number(entry), ppid);
  }
  return parentOf;
}

/** Every live descendant of pid, breadth first (children before grandchildren). */
export function descendants(pid: number, parentOf: ReadonlyMap<number, number> = parentPids()): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const [child, parent] of parentOf) {
      if (parent === p) {
        out.push(child);
        queue.push(child);
      }
    }
  }
  return out;
}
