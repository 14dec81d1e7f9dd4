// Entry of the load-driver process: runs the phases the bench process sends over IPC, one
// at a time, and answers with their results. Exits when the bench process goes away.
import type { FromDriver, ToDriver } from './driver-protocol.ts';
import { PathSource, runPhase, SessionSource, type RequestSource } from './load-driver.ts';
import { ZipfSampler } from './zipf.ts';

if (!process.send) {
  process.stderr.write('load-driver: start me from `ladder bench` (I need an IPC channel)\n');
  process.exit(2);
}

const send = (msg: FromDriver) => process.send!(msg);
// Building the Zipf CDF costs a few milliseconds per 100,000 links; keep it across phases.
// Each phase restarts the draw from the seed, so every server gets the same sequence.
const samplers = new Map<string, ZipfSampler>();
let queue: Promise<void> = Promise.resolve();

process.on('message', (msg: ToDriver) => {
  if (msg.type !== 'run') return;
  queue = queue.then(async () => {
    try {
      const { links, zipfS, seed, session } = msg.spec;
      let source: RequestSource;
      if (session) source = new SessionSource(session, seed);
      else {
        const key = `${links}/${zipfS}`;
        let sampler = samplers.get(key);
        if (!sampler) samplers.set(key, (sampler = new ZipfSampler(links, zipfS)));
        source = new PathSource(sampler, seed);
      }
      const result = await runPhase(msg.spec, source);
      send({ type: 'result', id: msg.id, result });
    } catch (err) {
      send({ type: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) });
    }
  });
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
