// Caps a process at C cores with the cgroup v1 cpu controller (cfs quota), so that small
// instances can be emulated on a small machine. When the controller is not writable the
// caller is told, and the process runs uncapped.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { descendants } from '../kit/process/process-tree.ts';

const ROOT = '/sys/fs/cgroup/cpu';
const PERIOD_US = 100_000;
/**
 * cpu.shares of the capped groups and of their parent (1024 is a plain task's weight). A
 * cap emulates a small instance, whose cores are its own: with high shares a capped node gets
 * its quota whenever it can run, even when the machine is busy with other work. At 1024 every
 * capped group together weighed as one task, and with a few neighbours running the capped
 * database nodes of a benchmark got less than their caps (the figures measured the neighbours).
 */
const CAPPED_SHARES = 16_384;

export function cgroupAvailable(): boolean {
  try {
    const probe = path.join(ROOT, 'ladder');
    mkdirSync(probe, { recursive: true });
    return existsSync(path.join(probe, 'cpu.cfs_quota_us'));
  } catch {
    return false;
  }
}

/** Puts pid into its own group capped at `cores`; returns the group folder. Throws when not possible. */
export function capCpu(group: string, pid: number, cores: number): string {
  const dir = path.join(ROOT, 'ladder', group);
  mkdirSync(dir, { recursive: true });
  for (const d of [path.join(ROOT, 'ladder'), dir]) writeFileSync(path.join(d, 'cpu.shares'), String(CAPPED_SHARES));
  writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
  writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(Math.max(1000, Math.round(cores * PERIOD_US))));
  writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
  return dir;
}

/**
 * Like capCpu, for a server that forks workers (Postgres): the process and every
 * descendant it has now; processes it forks later are born in the group.
 */
export function capProcessTree(group: string, pid: number, cores: number): string {
  const dir = capCpu(group, pid, cores);
  moveInto(dir, descendants(pid));
  return dir;
}

/** Writes each process into the group folder `dir`; one that exited meanwhile is skipped. */
function moveInto(dir: string, pids: Iterable<number | string>): void {
  for (const p of pids) {
    try {
      writeFileSync(path.join(dir, 'cgroup.procs'), String(p));
    } catch {
      /* exited meanwhile */
    }
  }
}

/** Removes a group once its processes have exited (best effort). */
export function removeGroup(group: string): void {
  try {
    rmdirSync(path.join(ROOT, 'ladder', group));
  } catch {
    /* still in use or already gone */
  }
}

/**
 * Puts each process (and its descendants) into a group of the lowest weight (cpu.shares 2),
 * directly under the root: it runs only when nothing else wants its CPU. For a benchmark that
 * stands in for separate hosts, so that what would run elsewhere never delays what it measures.
 * Returns the group folder. Throws when not possible.
 */
export function lowestWeight(group: string, pids: number[]): string {
  const dir = path.join(ROOT, group);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'cpu.shares'), '2');
  for (const pid of pids) moveInto(dir, [pid, ...descendants(pid)]);
  return dir;
}

/** Moves every process of a group folder (capCpu's, capProcessTree's or lowestWeight's) back to the root group and removes the folder. */
export function releaseGroupDir(dir: string): void {
  try {
    moveInto(ROOT, readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean));
    rmdirSync(dir);
  } catch {
    /* gone already */
  }
}
