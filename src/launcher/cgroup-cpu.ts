// Caps a process at C cores with the cgroup v1 cpu controller (cfs quota), so that small
// instances can be emulated on a small machine. When the controller is not writable the
// caller is told, and the process runs uncapped.
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { descendants } from '../kit/process/process-tree.ts';

const ROOT = '/sys/fs/cgroup/cpu';
const PERIOD_US = 100_000;

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
  for (const child of descendants(pid)) {
    try {
      writeFileSync(path.join(dir, 'cgroup.procs'), String(child));
    } catch {
      /* exited meanwhile */
    }
  }
  return dir;
}

/** Removes a group once its processes have exited (best effort). */
export function removeGroup(group: string): void {
  try {
    rmdirSync(path.join(ROOT, 'ladder', group));
  } catch {
    /* still in use or already gone */
  }
}
