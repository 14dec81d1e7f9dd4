// Candidate 1: BullMQ on a Redis of its own (AOF with fsync every second, noeviction: a queue
// must never have its keys evicted). The visibility timeout is the job lock (lockDuration);
// a job whose lock expired is found by the stalled-job check of a live worker, which runs
// every `stalledInterval` (30 s by default, 1 s here so that the redelivery figure measures
// the lock rather than the check's period). Retries with backoff are `attempts` and
// `backoff`; the dead-letter queue is the failed set.
// BullMQ 6 also ships a PostgreSQL backend (`createPostgresBackend`): the same API and
// semantics on a Postgres server, measured here as a candidate of its own (`bullmq-postgres`).
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { createPostgresBackend, Queue, Worker, type Job, type JobsOptions, type JobType } from 'bullmq';
import { ping } from '../../launcher/redis-server.ts';
import type { BrokerServer, Candidate, ClickBatch, Handler, QueueClient, QueueSettings, Subscription } from './candidate.ts';
import { postgresQueue } from './postgres-candidate.ts';
import { ServerProcess } from './server-process.ts';

function redisServer(dir: string, port: number): BrokerServer {
  const proc = new ServerProcess({
    command: 'redis-server',
    args: [
      ...['--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes', '--dir', dir, '--daemonize', 'no'],
      ...['--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction'],
    ],
    logFile: `${dir}/redis.log`,
    ready: () => ping(port),
  });
  return {
    address: String(port),
    pid: () => proc.pid,
    start: () => proc.start(),
    kill: () => proc.kill(),
    stop: () => proc.stop(),
  };
}

/** As BullMQ's documentation asks of workers: retry every command forever, across reconnects. */
function connection(address: string) {
  return { host: '127.0.0.1', port: Number(address), maxRetriesPerRequest: null };
}

/** What this file uses of a BullMQ Queue, whichever its backend. */
interface QueueLike {
  waitUntilReady(): Promise<unknown>;
  on(event: 'error', listener: (err: Error) => void): unknown;
  addBulk(jobs: { name: string; data: ClickBatch; opts: JobsOptions }[]): Promise<unknown>;
  getFailed(start: number, end: number): Promise<{ data: unknown }[]>;
  getJobCounts(...types: JobType[]): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/** The BullMQ client on either backend: Redis (address: a port) or Postgres (address: a connection URL). */
async function bullmqClient(address: string, s: QueueSettings, onPostgres: boolean): Promise<QueueClient> {
  const queue: QueueLike = onPostgres
    ? new Queue(s.name, { connection: { connectionString: address, migrate: true } }, createPostgresBackend)
    : new Queue(s.name, { connection: connection(address) });
  queue.on('error', () => undefined); // reconnects are counted by the scenarios, not logged
  const workers: { close(force?: boolean): Promise<void> }[] = [];
  return {
    async setup() {
      await queue.waitUntilReady();
    },
    async publish(batches) {
      await queue.addBulk(
        batches.map((data) => ({
          name: 'clicks',
          data,
          opts: { attempts: s.maxAttempts, backoff: { type: 'fixed', delay: s.retryDelayMs }, removeOnComplete: true, removeOnFail: false },
        })),
      );
    },
    async consume(concurrency: number, handler: Handler): Promise<Subscription> {
      const processor = async (job: Job<ClickBatch>) => {
        const outcome = await handler({ seq: job.data.seq, attempt: job.attemptsStarted });
        if (outcome === 'fail') throw new Error('handler failed');
      };
      const common = {
        concurrency,
        lockDuration: s.visibilityMs,
        stalledInterval: 1000,
        // A job recovered from a stall does not spend an attempt; this many stalls then fail it.
        maxStalledCount: s.maxAttempts - 1,
      };
      const worker = onPostgres
        ? new Worker(s.name, processor, { connection: { connectionString: address, migrate: true }, ...common }, createPostgresBackend)
        : new Worker(s.name, processor, { connection: connection(address), ...common });
      worker.on('error', () => undefined);
      workers.push(worker);
      await worker.waitUntilReady();
      return { close: () => worker.close(true) };
    },
    async deadLettered() {
      const failed = await queue.getFailed(0, -1);
      return failed.map((j) => (j.data as ClickBatch).seq);
    },
    async depth() {
      const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
      return Object.values(c).reduce((a, b) => a + b, 0);
    },
    async close() {
      await Promise.all(workers.map((w) => w.close(true)));
      await queue.close();
    },
  };
}

export const bullmq: Candidate = {
  name: 'bullmq',
  describe() {
    const require = createRequire(import.meta.url);
    const v = (pkg: string) => (require(`${pkg}/package.json`) as { version: string }).version;
    const server = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim();
    return {
      client: `bullmq ${v('bullmq')}, ioredis ${v('ioredis')}`,
      server,
      settings: 'appendonly yes, appendfsync everysec, noeviction; lockDuration = visibility, stalledInterval 1 s, maxRetriesPerRequest null',
    };
  },
  server: redisServer,
  client: (address, s) => bullmqClient(address, s, false),
};

export const bullmqPostgres: Candidate = {
  name: 'bullmq-postgres',
  describe() {
    const require = createRequire(import.meta.url);
    const v = (pkg: string) => (require(`${pkg}/package.json`) as { version: string }).version;
    return {
      client: `bullmq ${v('bullmq')} with createPostgresBackend, pg ${v('pg')}`,
      server: postgresQueue.describe().server ?? '',
      settings: 'lockDuration = visibility, stalledInterval 1 s',
    };
  },
  server: (dir, port) => postgresQueue.server(dir, port),
  client: (address, s) => bullmqClient(address, s, true),
};
