// A CPU floor: every CPU held busy at idle priority (SCHED_IDLE) while a scaling run
// saturates, so that every size is measured on equally busy hardware.
//
// Why: on this kind of VM a CPU runs measurably slower while its neighbour is busy (shared
// execution units or a shared clock, from the host's side). Measured (docs/performance.md,
// "Batched lookups and the CPU floor"): one web server capped at 0.2 core served 6,180 redirects a second with
// the other CPU mostly idle and 4,475 (-28%) at the same cap with an idle-priority loop on
// the other CPU, which takes no time from anything else. A scaling run's 1-server phase
// leaves the CPUs mostly idle and its 4-server phase keeps them busy, so without a floor
// the ratio measures the hardware's slowdown under load as much as the scaling.
//
// An idle-priority task runs only when nothing else on its CPU wants to: any other task
// that wakes preempts it at once. So it takes no CPU time from the topology, but it does
// take the hardware's idle headroom, which slows everything on this VM: measured in one
// run, the floor cost the 4-server phase 13% (CPU 0 still had a quarter idle there) and
// the 1-server phase 37%. The scenario runs the smallest and largest sizes without the
// floor too, and reports both ratios.
//
// Each spinner is a tiny node loop pinned to one CPU (taskset) at SCHED_IDLE (chrt), that
// exits by itself when its parent goes away or its time is up, so no run can leave one
// behind. Paused with SIGSTOP and resumed with SIGCONT between phases.
import { spawnSync } from 'node:child_process';
import type { BenchSession } from './bench-session.ts';
import { allowedCpus } from './cpu-pinning.ts';
import type { ManagedProcess } from './process-supervisor.ts';

/** The spinner: busy until the parent is gone or the deadline (argv[1], epoch ms) passes. */
const SPINNER = `
const parent = process.ppid, deadline = Number(process.argv[1]);
for (let i = 0; ; i++) {
  if ((i & 0xfffff) === 0 && (process.ppid !== parent || Date.now() > deadline)) process.exit(0);
}`;

export class CpuFloor {
  private constructor(
    private readonly session: BenchSession,
    private readonly spinners: ManagedProcess[],
    readonly note: string,
  ) {}

  get active(): boolean {
    return this.spinners.length > 0;
  }

  /** Starts one spinner per allowed CPU, running; `maxSeconds` bounds their life. */
  static start(session: BenchSession, maxSeconds: number): CpuFloor {
    const missing = ['taskset', 'chrt'].filter((c) => spawnSync(c, ['--version']).status !== 0);
    if (missing.length > 0) return new CpuFloor(session, [], `no CPU floor: ${missing.join(' and ')} missing (apt-get install util-linux)`);
    const cpus = allowedCpus();
    const deadline = String(Date.now() + maxSeconds * 1000);
    const spinners = cpus.map((cpu) =>
      session.supervisor.spawn(`cpu-floor-${cpu}`, 'taskset', ['--cpu-list', String(cpu), 'chrt', '--idle', '0', process.execPath, '-e', SPINNER, deadline]),
    );
    return new CpuFloor(session, spinners, `CPU floor: CPU ${cpus.join(', ')} held busy at idle priority (SCHED_IDLE) during saturation phases`);
  }

  pause(): void {
    for (const s of this.spinners) if (s.exitStatus === undefined) process.kill(s.pid, 'SIGSTOP');
  }

  resume(): void {
    for (const s of this.spinners) if (s.exitStatus === undefined) process.kill(s.pid, 'SIGCONT');
  }

  async stop(): Promise<void> {
    this.resume();
    for (const s of this.spinners) await this.session.supervisor.stop(s);
  }
}
