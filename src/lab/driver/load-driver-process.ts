// The load driver seen from the bench process: a child node process (load-driver-main.ts)
// pinned to its own CPU, sent one phase at a time over IPC.
import type { BenchSession } from '../machine/bench-session.ts';
import { pin } from '../machine/cpu-pinning.ts';
import type { FromDriver, PhaseResult, PhaseSpec, ToDriver } from './driver-protocol.ts';
import { nodeEntry } from '../machine/node-entry.ts';
import type { ManagedProcess } from '../machine/process-supervisor.ts';

export class LoadDriverProcess {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: PhaseResult) => void; reject: (e: Error) => void }>();

  private constructor(
    session: BenchSession,
    readonly proc: ManagedProcess,
  ) {
    proc.child.on('message', (msg: FromDriver) => {
      if (msg.type === 'ready') return;
      const w = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      if (msg.type === 'result') w?.resolve(msg.result);
      else w?.reject(new Error(`load driver: ${msg.message}`));
    });
    void proc.exited.then((how) => {
      const err = new Error(`the load driver stopped (${how}):\n${session.supervisor.tail(proc)}`);
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    });
  }

  static async start(session: BenchSession, cpus: string | undefined): Promise<LoadDriverProcess> {
    const { command, args } = nodeEntry('driver/load-driver-main.ts');
    const proc = session.supervisor.spawn('load-driver', command, args, { ipc: true });
    const ready = new Promise<void>((resolve, reject) => {
      proc.child.once('message', () => resolve());
      void proc.exited.then((how) => reject(new Error(`the load driver did not start (${how}):\n${session.supervisor.tail(proc)}`)));
    });
    await ready;
    pin(proc.pid, cpus);
    return new LoadDriverProcess(session, proc);
  }

  run(spec: PhaseSpec): Promise<PhaseResult> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.proc.exitStatus !== undefined) return reject(new Error(`the load driver has stopped (${this.proc.exitStatus})`));
      this.waiting.set(id, { resolve, reject });
      this.proc.child.send({ type: 'run', id, spec } satisfies ToDriver);
    });
  }
}
