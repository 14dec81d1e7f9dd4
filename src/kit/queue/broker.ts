// The message broker behind rung 9, as the kit sees it: queues with the SQS model, so that SQS
// can back the same interface on AWS. At-least-once delivery; a received message is invisible
// to other consumers while its consumer holds it (the visibility timeout: BullMQ's job lock,
// renewed while the handler runs, so a consumer that dies lets it reappear); a message that
// fails is received again after a backoff, and after `maxReceives` receives it moves to the
// queue's dead letters (BullMQ's failed set), where `redrive` sends it back.
//
// Locally the broker is BullMQ on a Redis of its own (the `queue` node): AOF with fsync every
// second, noeviction. Connections retry forever (maxRetriesPerRequest: null), so a consumer
// whose broker went away resumes by itself when it returns.
import { Queue, Worker, type Job } from 'bullmq';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffSettings } from './backoff.ts';

/** Where the broker is: a redis:// URL. */
export interface BrokerSettings {
  url: string;
  /** Receives of one message before it becomes a dead letter. */
  maxReceives: number;
  /** How long a consumer holds a message without renewing before others may receive it. */
  visibilityTimeoutMs: number;
  backoff: BackoffSettings;
}

export const BROKER_DEFAULTS: Omit<BrokerSettings, 'url'> = {
  maxReceives: 5,
  visibilityTimeoutMs: 8_000,
  backoff: DEFAULT_BACKOFF,
};

/** The queues of rung 9. */
export const QUEUES = { clicks: 'clicks', linkEvents: 'link-events' } as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];
export const QUEUE_NAMES: readonly QueueName[] = [QUEUES.clicks, QUEUES.linkEvents];

/** Keys in the broker start with this (BullMQ's prefix). */
const PREFIX = 'ladder';
/** Completed messages kept for inspection (and so a resend of a just-finished id is ignored). */
const KEEP_COMPLETED = 1000;

export interface QueueStats {
  name: string;
  /** Messages not yet done: waiting, delayed for a retry, or being handled. */
  depth: number;
  /** Age of the oldest message waiting to be received, 0 when none waits. */
  oldestAgeSeconds: number;
  deadLetters: number;
}

export interface DeadLetter {
  queue: string;
  id: string;
  receives: number;
  reason: string;
  failedAt: string | null;
  body: unknown;
}

export type JobResult = 'done' | 'retried' | 'dead';

function connection(url: string, opts: { failFast?: boolean } = {}) {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    // ElastiCache on AWS: TLS (rediss://) and an AUTH token in the URL's password.
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // Consumers and producers wait for a broker that is away; only commands fail fast.
    maxRetriesPerRequest: opts.failFast ? 1 : null,
    ...(opts.failFast ? { enableOfflineQueue: false, connectTimeout: 2000, commandTimeout: 3000, retryStrategy: () => null } : { retryStrategy: (n: number) => Math.min(n * 100, 1000) }),
  };
}

/** Sends messages to one queue, and inspects it (stats, dead letters, redrive). */
export class BrokerQueue {
  private readonly queue: Queue;

  constructor(
    readonly name: QueueName,
    private readonly settings: BrokerSettings,
    opts: { failFast?: boolean } = {},
  ) {
    this.queue = new Queue(name, { connection: connection(settings.url, opts), prefix: PREFIX });
    // A broker that is away is retried by the connection; the error event must be listened to.
    this.queue.on('error', () => undefined);
  }

  /**
   * Sends messages; an id already in the queue is not sent twice (a resend after a crash). The
   * promise resolves once the broker has them (written to its AOF before it answers).
   */
  async send(messages: readonly { id: string; body: unknown }[]): Promise<void> {
    if (messages.length === 0) return;
    await this.queue.addBulk(
      messages.map((m) => ({
        name: this.name,
        data: m.body,
        opts: {
          jobId: m.id,
          attempts: this.settings.maxReceives,
          backoff: { type: 'ladder' },
          removeOnComplete: { count: KEEP_COMPLETED },
          removeOnFail: false,
        },
      })),
    );
  }

  async stats(): Promise<QueueStats> {
    const c = await this.queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized', 'failed');
    const [oldest] = await this.queue.getJobs(['wait'], 0, 0, true);
    const age = oldest ? Math.max(0, (Date.now() - oldest.timestamp) / 1000) : 0;
    return {
      name: this.name,
      depth: (c.waiting ?? 0) + (c.delayed ?? 0) + (c.active ?? 0) + (c.prioritized ?? 0),
      oldestAgeSeconds: Math.round(age * 1000) / 1000,
      deadLetters: c.failed ?? 0,
    };
  }

  async deadLetters(limit = 1000): Promise<DeadLetter[]> {
    const jobs = await this.queue.getFailed(0, limit - 1);
    return jobs.map((j) => ({
      queue: this.name,
      id: String(j.id),
      receives: j.attemptsMade,
      reason: j.failedReason ?? '',
      failedAt: j.finishedOn ? new Date(j.finishedOn).toISOString() : null,
      body: j.data as unknown,
    }));
  }

  /** Sends every dead letter back to the queue with its receive count reset; returns their ids. */
  async redrive(): Promise<string[]> {
    const ids: string[] = [];
    for (const job of await this.queue.getFailed(0, -1)) {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      ids.push(String(job.id));
    }
    return ids;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

export interface ConsumerOptions {
  settings: BrokerSettings;
  name: QueueName;
  /** Messages handled at once by this process. */
  concurrency: number;
  handle(body: unknown, meta: { id: string; receive: number }): Promise<void>;
  onResult?(queue: QueueName, result: JobResult, err?: unknown): void;
}

/**
 * A handler gets the visibility timeout, as under SQS: BullMQ renews the lock while the
 * handler runs, so one stuck on a dead socket would otherwise hold its message for ever. A
 * handler past it fails the receive (received again after the backoff); the handlers are
 * idempotent, so if the late one still commits, the next receive changes nothing.
 */
async function withinVisibility<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the handler ran past the visibility timeout (${ms} ms)`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Receives messages of one queue and handles them, with retries, backoff and dead letters. */
export class BrokerConsumer {
  private readonly worker: Worker;

  constructor(private readonly opts: ConsumerOptions) {
    const { settings } = opts;
    this.worker = new Worker(
      opts.name,
      async (job: Job) => withinVisibility(opts.handle(job.data as unknown, { id: String(job.id), receive: job.attemptsMade + 1 }), settings.visibilityTimeoutMs),
      {
        connection: connection(settings.url),
        prefix: PREFIX,
        concurrency: opts.concurrency,
        autorun: false,
        lockDuration: settings.visibilityTimeoutMs,
        stalledInterval: Math.max(1000, Math.floor(settings.visibilityTimeoutMs / 2)),
        // A stalled message is one whose consumer died, not a poison one: it is received
        // again, many times if consumers keep dying; only failures make it a dead letter.
        maxStalledCount: 1000,
        settings: { backoffStrategy: (attemptsMade: number) => backoffDelay(attemptsMade, settings.backoff) },
      },
    );
    this.worker.on('error', () => undefined);
    this.worker.on('completed', () => opts.onResult?.(opts.name, 'done'));
    this.worker.on('failed', (job, err) => {
      const dead = job !== undefined && job.attemptsMade >= (job.opts.attempts ?? 1);
      opts.onResult?.(opts.name, dead ? 'dead' : 'retried', err);
    });
  }

  start(): void {
    void this.worker.run().catch(() => undefined);
  }

  /** Stops receiving; waits for the messages being handled to finish (`force`: releases them instead). */
  async close(force = false): Promise<void> {
    await this.worker.close(force);
  }
}
