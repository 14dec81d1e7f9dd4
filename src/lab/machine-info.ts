// What the report says about the machine, so figures are never read without their context.
import { readFileSync } from 'node:fs';
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
  /** Whether the cgroup cpu controller is writable (later rungs cap web servers with it). */
  cgroupCpu: string;
}

function cgroupCpu(): string {
  try {
    const controllers = readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8');
    return controllers.split(/\s+/).includes('cpu') ? 'cgroup v2 cpu controller present' : 'cgroup v2 without the cpu controller';
  } catch {
    return 'no cgroup v2 cpu controller visible';
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
