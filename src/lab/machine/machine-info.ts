// What the report says about the machine, so figures are never read without their context.
import { accessSync, constants, readFileSync } from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  node: string;
  platform: string;
  kernel: string;
  /** 1, 5, 15 minute load averages when the run started: a busy shared machine shows here. */
  loadAverage: number[];
  /** Whether the cgroup cpu controller is writable (`ladder up --cpu` caps web servers with it). */
  cgroupCpu: string;
}

function cgroupCpu(): string {
  // What `ladder up --cpu` uses (src/launcher/cgroup-cpu.ts): the v1 controller's quota.
  try {
    accessSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us', constants.W_OK);
    return 'cgroup v1 cpu controller writable (/sys/fs/cgroup/cpu)';
  } catch {
    // not mounted, or not ours to write
  }
  try {
    const controllers = readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8');
    return controllers.split(/\s+/).includes('cpu')
      ? 'cgroup v2 cpu controller present (ladder up --cpu needs v1: caps not applied)'
      : 'no writable cgroup cpu controller (caps not applied)';
  } catch {
    return 'no writable cgroup cpu controller (caps not applied)';
  }
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: os.availableParallelism(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()}-${os.arch()}`,
    kernel: os.release(),
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    cgroupCpu: cgroupCpu(),
  };
}
