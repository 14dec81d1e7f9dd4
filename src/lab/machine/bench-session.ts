// One bench run's resources: its state folder (.ladder/bench, locked so that two runs never
// share it), the processes it started and the servers it must stop. Whatever happens
// (success, error, Ctrl-C, SIGTERM) everything is stopped before the run returns or exits.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { acquireLock } from '../../launcher/state-dir.ts';
import { ProcessSupervisor } from './process-supervisor.ts';

export interface BenchSessionOptions {
  /** Folder for data and logs. Postgres clusters are kept between runs (a server orphaned by
   *  a killed run is found and stopped through its data folder); logs are emptied. */
  dir: string;
  log: (msg: string) => void;
}

export class BenchSession {
  readonly supervisor: ProcessSupervisor;
  readonly logDir: string;
  private readonly cleanups: { what: string; run: () => Promise<void>; now: () => void }[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    readonly log: (msg: string) => void,
  ) {
    this.logDir = path.join(dir, 'logs');
    rmSync(this.logDir, { recursive: true, force: true });
    mkdirSync(this.logDir, { recursive: true });
    this.supervisor = new ProcessSupervisor(this.logDir);
  }

  /**
   * Registers something to stop when the run ends, newest first. `now` is the synchronous
   * last resort used if our process exits before `run` could finish.
   */
  defer(what: string, run: () => Promise<void>, now: () => void = () => undefined): void {
    this.cleanups.push({ what, run, now });
  }

  /** Stops the processes, then the other resources, newest first. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.supervisor.stopAll();
      for (const c of this.cleanups.reverse()) {
        try {
          await c.run();
        } catch (err) {
          this.log(`could not stop ${c.what}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    })();
    return this.closing;
  }

  killAllNow(): void {
    this.supervisor.killAllNow();
    for (const c of this.cleanups) c.now();
  }
}

/** Runs `fn` in a fresh session and always cleans up, also on SIGINT/SIGTERM. */
export async function withBenchSession<T>(opts: BenchSessionOptions, fn: (session: BenchSession) => Promise<T>): Promise<T> {
  const release = acquireLock(opts.dir, 'A Ladder benchmark');
  const session = new BenchSession(opts.dir, opts.log);
  const onSignal = (sig: NodeJS.Signals) => {
    opts.log(`${sig}: stopping every process this run started…`);
    void session.close().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  const onExit = () => session.killAllNow();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', onExit);
  try {
    return await fn(session);
  } finally {
    await session.close();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('exit', onExit);
    release();
  }
}
