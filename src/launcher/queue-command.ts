// `ladder queue stats | dlq list | dlq retry [--json]`: the broker of a running rung 9
// topology, read through the kit's broker interface (the same one the workers use).
import { LadderFailure } from '../kit/errors.ts';
import { BROKER_DEFAULTS, BrokerQueue, QUEUE_NAMES, type DeadLetter, type QueueStats } from '../kit/queue/broker.ts';
import { ConfigError } from '../topology/config-error.ts';
import { readUpState } from './up-state.ts';

type Say = (msg: string) => void;

const USAGE = 'use ladder queue stats|dlq list|dlq retry [--json]';

function brokerUrl(stateDir: string): string {
  const state = readUpState(stateDir);
  const node = state?.nodes.find((n) => n.role === 'queue');
  if (!state || state.state === 'stopped' || !node) {
    throw new LadderFailure('NOT_RUNNING', 'no topology with a broker is running here: start one with `ladder up --rung 9`');
  }
  return node.url;
}

async function withQueues<T>(stateDir: string, fn: (queues: BrokerQueue[]) => Promise<T>): Promise<T> {
  const url = brokerUrl(stateDir);
  const queues = QUEUE_NAMES.map((name) => new BrokerQueue(name, { ...BROKER_DEFAULTS, url }, { failFast: true }));
  try {
    return await fn(queues);
  } catch (err) {
    throw new LadderFailure('BROKER_UNAVAILABLE', `the broker at ${url} did not answer: ${(err as Error).message}`, { cause: err });
  } finally {
    await Promise.all(queues.map((q) => q.close().catch(() => undefined)));
  }
}

export async function queueCommand(stateDir: string, args: string[], json: boolean, say: Say): Promise<number> {
  const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
  const [what, sub, ...extra] = args;
  if (what === 'stats' && sub === undefined) {
    const queues: QueueStats[] = await withQueues(stateDir, (qs) => Promise.all(qs.map((q) => q.stats())));
    if (json) out({ queues });
    else for (const q of queues) process.stdout.write(`${q.name.padEnd(12)} depth ${String(q.depth).padEnd(8)} oldest ${q.oldestAgeSeconds.toFixed(1).padStart(6)} s   dead letters ${q.deadLetters}\n`);
    return 0;
  }
  if (what === 'dlq' && sub === 'list' && extra.length === 0) {
    const deadLetters: DeadLetter[] = (await withQueues(stateDir, (qs) => Promise.all(qs.map((q) => q.deadLetters())))).flat();
    if (json) out({ deadLetters });
    else if (deadLetters.length === 0) say('no dead letters');
    else for (const d of deadLetters) process.stdout.write(`${d.queue.padEnd(12)} ${d.id.padEnd(40)} ${d.receives} receives  ${d.reason.slice(0, 120)}\n`);
    return 0;
  }
  if (what === 'dlq' && sub === 'retry' && extra.length === 0) {
    const retried = await withQueues(stateDir, async (qs) => (await Promise.all(qs.map(async (q) => (await q.redrive()).map((id) => ({ queue: q.name, id }))))).flat());
    if (json) out({ retried });
    else say(`sent ${retried.length} dead letter(s) back to their queue`);
    return 0;
  }
  throw new ConfigError('queue', `"${args.join(' ').slice(0, 60)}" is not a queue command`, USAGE);
}
