// The machine is shared (ARCHITECTURE.md, "Measuring"): a benchmark's processes go before
// their neighbours'. Linux groups processes by session for scheduling (autogroups); the
// bench's own session (the lab, the load driver, the servers it starts) and each launched
// topology's (its supervisor detaches into a session of its own, and every node that is not
// capped lives in it) get the nice value below, a weight about 35 times a plain session's.
// Capped nodes are weighted by their cgroup instead (launcher/cgroup-cpu.ts). Needs root or
// CAP_SYS_NICE; without it the run is as before, and the report says so.
import { writeFileSync } from 'node:fs';

export const FAVOURED_NICE = -15;

/** Gives the session (autogroup) of `pid` the favoured nice value; false when not allowed. */
export function favour(pid: number | 'self'): boolean {
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(FAVOURED_NICE));
    return true;
  } catch {
    return false; // not root, or no autogroups (a kernel without them): no priority
  }
}

/** The note every report carries about it. */
export function priorityNote(favoured: boolean): string {
  return favoured
    ? `the bench's processes and the topologies it launched ran before the machine's other work (autogroup nice ${FAVOURED_NICE}; capped nodes by cgroup cpu.shares)`
    : 'the bench could not raise its processes\' priority (needs root): other work on the machine competed with it on equal terms';
}
