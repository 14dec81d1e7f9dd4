// Entry of the background supervisor process (`ladder __supervise`, started by `ladder up`).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildTopology, checkWebCount, type TopologyInput } from '../topology/topology.ts';
import { Supervisor, type Progress } from './supervisor.ts';
import { upDir } from './up-state.ts';

function report(p: Progress): void {
  process.stdout.write(`${new Date().toISOString()} ${JSON.stringify(p)}\n`);
  // After `ladder up` has returned the channel is gone; progress then only goes to the log.
  if (process.connected) process.send?.(p, undefined, undefined, () => undefined);
}

export async function runSupervisor(): Promise<number> {
  const input = JSON.parse(process.env.LADDER_TOPOLOGY ?? '{}') as TopologyInput;
  const topology = buildTopology(input);
  const supervisor = new Supervisor({ topology, report });
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= supervisor.stop());
  process.on('SIGTERM', () => void stop().then(() => process.exit(0)));
  process.on('SIGINT', () => void stop().then(() => process.exit(0)));
  process.on('SIGHUP', () => undefined);
  process.on('SIGUSR2', () => {
    try {
      const { web, shards } = JSON.parse(readFileSync(path.join(upDir(topology.stateDir), 'scale.json'), 'utf8')) as { web?: number; shards?: number };
      if (shards !== undefined) {
        // `ladder reshard --to` more clusters than run.
        supervisor.addClusters(shards).catch((err: unknown) => report({ type: 'note', message: `adding shard clusters failed: ${(err as Error).message}` }));
        return;
      }
      if (web === undefined) throw new Error('no web count');
      checkWebCount(web, topology.features.loadBalancer);
      supervisor.scale(web).catch((err: unknown) => report({ type: 'note', message: `scale failed: ${(err as Error).message}` }));
    } catch (err) {
      report({ type: 'note', message: `scale request unreadable: ${(err as Error).message}` });
    }
  });
  try {
    const entry = await supervisor.start();
    report({ type: 'ready', entry });
  } catch (err) {
    report({ type: 'error', message: (err as Error).message });
    await stop();
    return 1;
  }
  await new Promise<void>(() => undefined); // runs until a signal
  return 0;
}
