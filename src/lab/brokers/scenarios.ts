// The three measurements of the broker comparison, each bounded in messages and in time:
//   throughput  - publish N messages (pipelined or bulk), then drain them with 2 concurrent
//                 consumers acknowledging each; rates and the broker's CPU per message.
//   redelivery  - a consumer process takes a message and is killed: time until another
//                 consumer gets it (the visibility timeout); a message whose handler always
//                 fails: attempts seen and time until it reaches the dead-letter queue; a
//                 message that kills every consumer that takes it: deliveries until it is
//                 dead-lettered; a handler that hangs without acknowledging: whether another
//                 consumer gets the message.
//   recovery    - the broker is killed with SIGKILL while a publisher and 2 consumers run,
//                 and started again on the same port and folder: acknowledged publishes
//                 lost, time until consumers and publisher resume by themselves, duplicates.
import { fork } from 'node:child_process';
import { treeCpuSeconds } from '../../kit/process/process-cpu.ts';
import type { BrokerServer, Candidate, Delivery, QueueClient, QueueSettings } from './candidate.ts';
import { sleep } from './server-process.ts';
import { BATCH, clickBatch, type MessageSize } from './workload.ts';

const PUBLISH_CHUNK = 100;
/** The recovery scenario's probe message, published on a fresh connection once the broker is back. */
const PROBE = 1_000_000_000;

export interface ThroughputResult {
  size: string;
  bytes: number;
  published: number;
  consumed: number;
  publishPerSec: number;
  consumePerSec: number;
  /** CPU of the broker's processes per message, µs (a figure a busy neighbour moves less than rates). */
  brokerCpuUsPerMsgPublish: number;
  brokerCpuUsPerMsgConsume: number;
  /** CPU of this process (clients) per message, µs. */
  clientCpuUsPerMsgPublish: number;
  clientCpuUsPerMsgConsume: number;
  timedOut: boolean;
}

function brokerCpu(server: BrokerServer): number {
  const pid = server.pid();
  return pid ? (treeCpuSeconds(pid) ?? 0) : 0;
}

function ownCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

const perMsgUs = (seconds: number, n: number) => (n > 0 ? Math.round((seconds / n) * 1e6) : 0);

export async function throughput(
  candidate: Candidate,
  server: BrokerServer,
  size: MessageSize,
  bytes: number,
  count: number,
  timeoutMs: number,
  queueName: string,
): Promise<ThroughputResult> {
  const client = await candidate.client(server.address, { name: queueName, visibilityMs: 30_000, maxAttempts: 3, retryDelayMs: 1000 });
  try {
    await client.setup();
    let published = 0;
    let b0 = brokerCpu(server);
    let c0 = ownCpu();
    let t0 = performance.now();
    while (published < count && performance.now() - t0 < timeoutMs) {
      const n = Math.min(PUBLISH_CHUNK, count - published);
      const chunk = Array.from({ length: n }, (_, i) => clickBatch(size, published + i));
      await client.publish(chunk);
      published += n;
    }
    const publishS = (performance.now() - t0) / 1000;
    const publishBroker = brokerCpu(server) - b0;
    const publishClient = ownCpu() - c0;

    let consumed = 0;
    let allIn: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allIn = resolve));
    b0 = brokerCpu(server);
    c0 = ownCpu();
    t0 = performance.now();
    const sub = await client.consume(2, async () => {
      if (++consumed >= published) allIn();
      return 'ack';
    });
    const timedOut = (await within(done.then(() => true), timeoutMs)) !== true;
    const consumeS = (performance.now() - t0) / 1000;
    const consumeBroker = brokerCpu(server) - b0;
    const consumeClient = ownCpu() - c0;
    await sub.close();
    return {
      size: size.label,
      bytes,
      published,
      consumed,
      publishPerSec: Math.round(published / publishS),
      consumePerSec: Math.round(consumed / consumeS),
      brokerCpuUsPerMsgPublish: perMsgUs(publishBroker, published),
      brokerCpuUsPerMsgConsume: perMsgUs(consumeBroker, consumed),
      clientCpuUsPerMsgPublish: perMsgUs(publishClient, published),
      clientCpuUsPerMsgConsume: perMsgUs(consumeClient, consumed),
      timedOut,
    };
  } finally {
    await client.close();
  }
}

export interface RedeliveryResult {
  visibilityMs: number;
  maxAttempts: number;
  retryDelayMs: number;
  /** From the SIGKILL of the consumer holding the message to its delivery to another consumer. */
  redeliveredAfterKillMs: number | null;
  /** From the first delivery (to the consumer that died) to the second. */
  redeliveredAfterTakeMs: number | null;
  /** The attempt number the second consumer saw (2 if the broker counts the lost delivery). */
  attemptSeenOnRedelivery: number | null;
  /** A message whose handler always fails: the attempt numbers its deliveries carried. */
  failingAttemptsSeen: number[];
  /** From its publish until it was found in the dead-letter queue (polled every 50 ms). */
  deadLetteredAfterMs: number | null;
  deadLettered: boolean;
  /** A message that kills each consumer taking it: the attempt numbers those consumers saw. */
  crashLoopAttemptsSeen: number[];
  /** Whether it reached the dead-letter queue (within maxAttempts + 2 consumers), and when (from its publish). */
  crashLoopDeadLettered: boolean;
  crashLoopDeadLetteredAfterMs: number | null;
  /** A handler that never finishes (nor acknowledges): ms from its take until another consumer got the message; null if none did within visibility + 7 s. */
  hungRedeliveredAfterMs: number | null;
}

interface ChildConsumer {
  ready: Promise<void>;
  took: Promise<Delivery>;
  kill(): void;
}

/** A consumer in a process of its own (consumer-child.ts), to be killed with SIGKILL. */
function childConsumer(candidate: Candidate, server: BrokerServer, childEntry: URL, settings: QueueSettings): ChildConsumer {
  const child = fork(childEntry, [candidate.name, JSON.stringify(settings)], {
    env: { ...process.env, LADDER_BROKER_ADDRESS: server.address },
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const fromChild = <T>(pick: (m: Record<string, unknown>) => T | undefined, what: string) =>
    new Promise<T>((resolve, reject) => {
      child.on('message', (m: Record<string, unknown>) => {
        const v = pick(m);
        if (v !== undefined) resolve(v);
      });
      child.once('exit', (code, signal) => reject(new Error(`the child consumer exited (${code ?? signal}) before ${what}`)));
    });
  const ready = fromChild((m) => (m.ready ? true : undefined), 'it was ready').then(() => undefined);
  const took = fromChild((m) => (typeof m.took === 'number' ? { seq: m.took, attempt: Number(m.attempt) } : undefined), 'it took a message');
  // Whoever does not wait for these still must not see an unhandled rejection when the child is killed.
  ready.catch(() => undefined);
  took.catch(() => undefined);
  return { ready, took, kill: () => child.kill('SIGKILL') };
}

export async function redelivery(
  candidate: Candidate,
  server: BrokerServer,
  childEntry: URL,
  queueName: string,
): Promise<RedeliveryResult> {
  const settings: QueueSettings = { name: queueName, visibilityMs: 5000, maxAttempts: 3, retryDelayMs: 500 };
  const client = await candidate.client(server.address, settings);
  const result: RedeliveryResult = {
    ...{ visibilityMs: settings.visibilityMs, maxAttempts: settings.maxAttempts, retryDelayMs: settings.retryDelayMs },
    ...{ redeliveredAfterKillMs: null, redeliveredAfterTakeMs: null, attemptSeenOnRedelivery: null },
    ...{ failingAttemptsSeen: [], deadLetteredAfterMs: null, deadLettered: false },
    ...{ crashLoopAttemptsSeen: [], crashLoopDeadLettered: false, crashLoopDeadLetteredAfterMs: null, hungRedeliveredAfterMs: null },
  };
  const children: ChildConsumer[] = [];
  const spawnChild = () => {
    const c = childConsumer(candidate, server, childEntry, settings);
    children.push(c);
    return c;
  };
  try {
    await client.setup();

    // 1. A consumer takes the message and dies.
    const first = spawnChild();
    await bounded(first.ready, 60_000, 'the child consumer was not ready within 60 s');
    await client.publish([clickBatch(BATCH, 1)]);
    await bounded(first.took, 10_000, 'the child consumer did not take the message within 10 s');
    const tTook = performance.now();
    let redelivered: (d: Delivery) => void = () => undefined;
    const again = new Promise<Delivery>((resolve) => (redelivered = resolve));
    const sub = await client.consume(1, async (d) => {
      if (d.seq === 1) {
        redelivered(d);
        return 'ack';
      }
      result.failingAttemptsSeen.push(d.attempt);
      return 'fail';
    });
    const tKill = performance.now();
    first.kill();
    const d = await within(again, settings.visibilityMs + 15_000);
    if (d) {
      const t = performance.now();
      result.redeliveredAfterKillMs = Math.round(t - tKill);
      result.redeliveredAfterTakeMs = Math.round(t - tTook);
      result.attemptSeenOnRedelivery = d.attempt;
    }

    // 2. A message whose handler always fails.
    const tPub = performance.now();
    await client.publish([clickBatch(BATCH, 2)]);
    const found = await waitForDeadLetter(client, 2, tPub + 15_000);
    if (found !== null) {
      result.deadLettered = true;
      result.deadLetteredAfterMs = Math.round(found - tPub);
    }
    await sub.close();

    // 3. A message that kills every consumer that takes it. The next consumer is started
    // as soon as the last is killed, so it is waiting when the visibility timeout ends.
    let next = spawnChild();
    await bounded(next.ready, 60_000, 'the child consumer was not ready within 60 s');
    const tPoison = performance.now();
    await client.publish([clickBatch(BATCH, 3)]);
    for (let round = 0; round < settings.maxAttempts + 2; round++) {
      const current = next;
      const outcome = await Promise.race([
        current.took.then((t) => ({ took: t })),
        waitForDeadLetter(client, 3, performance.now() + settings.visibilityMs + 10_000).then((at) => ({ dead: at })),
      ]);
      if ('dead' in outcome) {
        if (outcome.dead !== null) {
          result.crashLoopDeadLettered = true;
          result.crashLoopDeadLetteredAfterMs = Math.round(outcome.dead - tPoison);
        }
        break;
      }
      result.crashLoopAttemptsSeen.push(outcome.took.attempt);
      current.kill();
      next = spawnChild();
      await bounded(next.ready, 60_000, 'the child consumer was not ready within 60 s');
    }

    // 4. A handler that hangs: does another consumer get the message after the visibility timeout?
    result.hungRedeliveredAfterMs = await hungHandler(candidate, server, { ...settings, name: `${settings.name}_hung` });
    return result;
  } finally {
    for (const c of children) c.kill();
    await client.close();
  }
}

/** The time the message was found in the dead-letter queue (polled every 50 ms), or null at the deadline. */
async function waitForDeadLetter(client: QueueClient, seq: number, deadline: number): Promise<number | null> {
  while (performance.now() < deadline) {
    if ((await client.deadLettered()).includes(seq)) return performance.now();
    await sleep(50);
  }
  return null;
}

async function hungHandler(candidate: Candidate, server: BrokerServer, settings: QueueSettings): Promise<number | null> {
  const a = await candidate.client(server.address, settings);
  const b = await candidate.client(server.address, settings);
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  try {
    await a.setup();
    let took: () => void = () => undefined;
    const taken = new Promise<void>((resolve) => (took = resolve));
    const subA = await a.consume(1, async () => {
      took();
      await released;
      return 'ack';
    });
    await a.publish([clickBatch(BATCH, 4)]);
    await bounded(taken, 10_000, 'the hanging consumer did not take the message within 10 s');
    const tTook = performance.now();
    let got: () => void = () => undefined;
    const gotIt = new Promise<void>((resolve) => (got = resolve));
    const subB = await b.consume(1, async () => {
      got();
      return 'ack';
    });
    const ok = await within(gotIt.then(() => true), settings.visibilityMs + 7000);
    const after = ok ? Math.round(performance.now() - tTook) : null;
    release();
    await within(Promise.allSettled([subA.close(), subB.close()]), 5000);
    return after;
  } finally {
    release();
    await within(Promise.allSettled([a.close(), b.close()]), 5000);
  }
}

export interface RecoveryResult {
  messageBytes: number;
  /** How long the broker stayed down before it was started again. */
  downForMs: number;
  publishWindowMs: number;
  killAtMs: number;
  /** From the SIGKILL to the restarted broker accepting connections. */
  downMs: number;
  publishAttempted: number;
  publishAcked: number;
  publishFailed: number;
  /** Publishes whose acknowledgement had not come within the bound (3 s); counted as not acked. */
  publishTimedOut: number;
  /** Acknowledged publishes never consumed by the end of the drain. */
  ackedLost: number;
  /** Messages still in the queue at the end (waiting or in flight). */
  stillQueued: number | null;
  /** Of the acknowledged publishes never consumed, how many are in the dead-letter queue (moved there without a delivery to a handler). */
  lostInDeadLetter: number;
  /** Messages delivered and acknowledged more than once (extra deliveries). */
  duplicates: number;
  /** Publishes that failed or timed out but were delivered anyway. */
  unackedDelivered: number;
  /**
   * From the broker accepting connections again to a probe message, published then on a
   * fresh connection, being consumed by the consumers that were running before the crash.
   */
  consumersResumedMs: number | null;
  /** From the broker accepting connections to the probe's publish being acknowledged (a fresh client; retried every 100 ms). */
  probePublishedMs: number | null;
  /** From the broker being back to the first publish acknowledged after it. */
  publisherResumedMs: number | null;
  drainedAll: boolean;
}

export async function recovery(
  candidate: Candidate,
  server: BrokerServer,
  queueName: string,
  size: MessageSize,
  bytes: number,
  downForMs: number,
): Promise<RecoveryResult> {
  const settings: QueueSettings = { name: queueName, visibilityMs: 5000, maxAttempts: 5, retryDelayMs: 500 };
  const killAtMs = 3000;
  const publishWindowMs = killAtMs + downForMs + 6000;
  const tickMs = 50;
  const perTick = 5;
  const publishBoundMs = 3000;
  const drainBoundMs = 20_000;

  const publisher = await candidate.client(server.address, settings);
  await publisher.setup();
  const consumer = await candidate.client(server.address, settings);
  const consumedCount = new Map<number, number>();
  const consumedAt = new Map<number, number>();
  const acked = new Set<number>();
  const ackedAt: number[] = [];
  let failed = 0;
  let timedOut = 0;
  const sub = await consumer.consume(2, async (d) => {
    consumedCount.set(d.seq, (consumedCount.get(d.seq) ?? 0) + 1);
    if (!consumedAt.has(d.seq)) consumedAt.set(d.seq, performance.now());
    return 'ack';
  });

  const t0 = performance.now();
  let tKill = 0;
  let tReady = 0;
  let probeAcked: number | null = null;
  const chaos = (async () => {
    await sleep(killAtMs);
    tKill = performance.now();
    await server.kill();
    await sleep(downForMs);
    await server.start();
    tReady = performance.now();
    const probe = await candidate.client(server.address, settings).catch(() => undefined);
    const until = tReady + 10_000;
    while (probe && performance.now() < until) {
      if ((await within(probe.publish([clickBatch(size, PROBE)]).then(() => true, () => false), 3000)) === true) {
        probeAcked = performance.now();
        break;
      }
      await sleep(100);
    }
    await within(probe?.close() ?? Promise.resolve(), 3000);
  })();

  let seq = 0;
  const pending: Promise<void>[] = [];
  while (performance.now() - t0 < publishWindowMs) {
    const tick = performance.now();
    const batch = Array.from({ length: perTick }, () => clickBatch(size, seq++));
    const p = publisher.publish(batch).then(
      () => {
        for (const b of batch) acked.add(b.seq);
        ackedAt.push(performance.now());
      },
      () => {
        failed += batch.length;
      },
    );
    pending.push(p);
    // One publish call at a time, as a relay would; a hung call is given up after the bound
    // (its acknowledgement, if it ever comes, still counts).
    if ((await within(p.then(() => true), publishBoundMs)) !== true) timedOut += batch.length;
    const wait = tickMs - (performance.now() - tick);
    if (wait > 0) await sleep(wait);
  }
  await chaos;

  const drainDeadline = performance.now() + drainBoundMs;
  const allAckedIn = () => [...acked].every((s) => consumedCount.has(s)) && (probeAcked === null || consumedCount.has(PROBE));
  while (performance.now() < drainDeadline && !allAckedIn()) await sleep(100);
  // Late acknowledgements of publishes given up on: wait for them within the same bound.
  await within(Promise.allSettled(pending), Math.max(0, drainDeadline - performance.now()));
  const stillQueued = await within(publisher.depth().catch(() => null), 3000);
  const dead = new Set((await within(publisher.deadLettered().catch(() => []), 3000)) ?? []);
  await within(sub.close(), 5000);
  await within(Promise.allSettled([consumer.close(), publisher.close()]), 5000);

  const probeConsumed = consumedAt.get(PROBE);
  consumedCount.delete(PROBE);
  const lost = [...acked].filter((s) => !consumedCount.has(s));
  let duplicates = 0;
  for (const n of consumedCount.values()) duplicates += n - 1;
  const unackedDelivered = [...consumedCount.keys()].filter((s) => !acked.has(s)).length;
  const firstAckAfter = ackedAt.filter((t) => t >= tReady).sort((a, b) => a - b)[0];
  return {
    messageBytes: bytes,
    downForMs,
    publishWindowMs,
    killAtMs,
    downMs: Math.round(tReady - tKill),
    publishAttempted: seq,
    publishAcked: acked.size,
    publishFailed: failed,
    publishTimedOut: timedOut,
    ackedLost: lost.length,
    stillQueued: stillQueued === undefined ? null : stillQueued,
    lostInDeadLetter: lost.filter((x) => dead.has(x)).length,
    duplicates,
    unackedDelivered,
    consumersResumedMs: probeConsumed === undefined ? null : Math.round(probeConsumed - tReady),
    probePublishedMs: probeAcked === null ? null : Math.round(probeAcked - tReady),
    publisherResumedMs: firstAckAfter === undefined ? null : Math.round(firstAckAfter - tReady),
    drainedAll: lost.length === 0,
  };
}

/** The promise's value, or undefined if it did not settle within ms (a rejection rejects). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function bounded<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  const v = await within(p.then((x) => ({ x })), ms);
  if (!v) throw new Error(message);
  return v.x;
}

