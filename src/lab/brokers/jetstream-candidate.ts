// Candidate 2: NATS JetStream, file storage. The queue is a work-queue stream (a message is
// removed once acknowledged) read by one durable pull consumer that every worker shares;
// its AckWait is the visibility timeout and MaxDeliver caps the deliveries. JetStream has
// no dead-letter queue: at MaxDeliver it only emits an advisory and keeps the message. So,
// as people do, the worker dead-letters itself: after the last allowed attempt fails (or
// when a delivery arrives past it, after consumers died holding it) it publishes the
// message to a second stream and terminates the original. Retries wait with `nak(delay)`.
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import {
  AckPolicy,
  connect,
  nanos,
  RetentionPolicy,
  StorageType,
  type ConsumerMessages,
  type JsMsg,
  type NatsConnection,
} from 'nats';
import type { BrokerServer, Candidate, ClickBatch, Handler, QueueClient, QueueSettings, Subscription } from './candidate.ts';
import { accepts, ServerProcess, sleep } from './server-process.ts';

function natsServer(dir: string, port: number): BrokerServer {
  const proc = new ServerProcess({
    command: 'nats-server',
    args: ['-js', '-sd', dir, '-p', String(port), '-a', '127.0.0.1', '-l', `${dir}/nats.log`],
    logFile: `${dir}/nats.out`,
    ready: () => accepts(port),
  });
  return {
    address: String(port),
    pid: () => proc.pid,
    start: () => proc.start(),
    kill: () => proc.kill(),
    stop: () => proc.stop(),
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const DURABLE = 'workers';

async function jetstreamClient(address: string, s: QueueSettings): Promise<QueueClient> {
  // Reconnect forever, every 250 ms: what a worker fleet would be configured to do.
  const nc: NatsConnection = await connect({ servers: `127.0.0.1:${address}`, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const js = nc.jetstream();
  const jsm = await nc.jetstreamManager();
  const subject = `${s.name}.jobs`;
  const deadStream = `${s.name}_dead`;
  const stops: (() => Promise<void>)[] = [];

  async function deadLetter(m: JsMsg): Promise<void> {
    await js.publish(`${s.name}.dead`, m.data);
    m.term('dead-lettered');
  }

  return {
    async setup() {
      await jsm.streams.add({ name: s.name, subjects: [subject], retention: RetentionPolicy.Workqueue, storage: StorageType.File });
      await jsm.streams.add({ name: deadStream, subjects: [`${s.name}.dead`], storage: StorageType.File });
      await jsm.consumers.add(s.name, {
        durable_name: DURABLE,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(s.visibilityMs),
        // One more than the attempts, so that a message whose consumers died on every attempt
        // is seen once more and dead-lettered instead of staying in the stream, never delivered.
        max_deliver: s.maxAttempts + 1,
      });
    },
    async publish(batches) {
      // Pipelined: every publish is sent at once, then the acknowledgements are awaited.
      await Promise.all(batches.map((b) => js.publish(subject, encoder.encode(JSON.stringify(b)))));
    },
    async consume(concurrency: number, handler: Handler): Promise<Subscription> {
      const consumer = await js.consumers.get(s.name, DURABLE);
      let stopped = false;
      let current: ConsumerMessages | undefined;
      const inFlight = new Set<Promise<void>>();
      const handle = async (m: JsMsg) => {
        try {
          const attempt = m.info.deliveryCount;
          if (attempt > s.maxAttempts) return await deadLetter(m);
          const { seq } = JSON.parse(decoder.decode(m.data)) as ClickBatch;
          const outcome = await handler({ seq, attempt }).catch(() => 'fail' as const);
          if (outcome === 'ack') await m.ackAck();
          else if (attempt >= s.maxAttempts) await deadLetter(m);
          else m.nak(s.retryDelayMs);
        } catch {
          // The server went away before the acknowledgement: the message comes back after AckWait.
        }
      };
      const loop = (async () => {
        while (!stopped) {
          try {
            current = await consumer.consume({ max_messages: 50 });
            for await (const m of current) {
              while (inFlight.size >= concurrency) await Promise.race(inFlight);
              const p = handle(m).finally(() => inFlight.delete(p));
              inFlight.add(p);
            }
          } catch {
            await sleep(250);
          }
        }
      })();
      const close = async () => {
        stopped = true;
        current?.stop();
        await loop;
      };
      stops.push(close);
      return { close };
    },
    async deadLettered() {
      const info = await jsm.streams.info(deadStream);
      const seqs: number[] = [];
      for (let i = info.state.first_seq; i <= info.state.last_seq && info.state.messages > 0; i++) {
        const m = await jsm.streams.getMessage(deadStream, { seq: i });
        seqs.push((JSON.parse(decoder.decode(m.data)) as ClickBatch).seq);
      }
      return seqs;
    },
    async depth() {
      return (await jsm.streams.info(s.name)).state.messages;
    },
    async close() {
      await Promise.all(stops.map((stop) => stop()));
      await nc.close();
    },
  };
}

export const jetstream: Candidate = {
  name: 'nats-jetstream',
  describe() {
    const require = createRequire(import.meta.url);
    const client = (require('nats/package.json') as { version: string }).version;
    const server = spawnSync('nats-server', ['--version'], { encoding: 'utf8' }).stdout.trim();
    return {
      client: `nats.js ${client}`,
      server,
      settings: 'file storage, work-queue stream, one durable pull consumer (AckWait = visibility, MaxDeliver = attempts + 1), ackAck, nak(delay) for retries, worker-side dead-lettering',
    };
  },
  server: natsServer,
  client: jetstreamClient,
};
