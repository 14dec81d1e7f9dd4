// `req.queue`: fire-and-forget work that must not make the request wait. At rung 1 the
// InProcessQueue aggregates messages by key in memory and flushes them in batches; rung 9
// replaces it with a durable local log that a relay ships to the broker and workers.
//
// What a crash can lose at rung 1: messages buffered since the last flush (at most one
// flush interval, 1 s by default) if the process dies without a clean shutdown (SIGKILL,
// power loss). A clean shutdown (SIGTERM/SIGINT) flushes everything. Rung 9 puts a
// ClickLogQueue (click-log.ts) behind the same interface: nothing buffered, nothing lost.

export type Message = Record<string, string | number>;

export interface Queue {
  publish(topic: string, message: Message): void;
}

/** The process-wide queue behind `req.queue`, with the lifecycle the kit's plugin drives. */
export interface ManagedQueue extends Queue {
  start(): void;
  close(): Promise<void>;
  /** Messages accepted but not yet written where they survive this process. */
  readonly size: number;
}

export interface Consumer {
  /**
   * Messages with equal keys (and equal groups, when the consumer has groups) are merged
   * into one entry with a count. Return strings the message already holds where possible
   * (`group` exists so that a two-part key, like a link and a day, needs no new string per
   * message: a fresh string must be hashed and compared by content on every publish).
   */
  key(message: Message): string;
  group?(message: Message): string;
  handle(batch: { message: Message; count: number }[]): Promise<void>;
}

export interface InProcessQueueOptions {
  flushIntervalMs?: number;
  /** Flush early once this many distinct keys are waiting. */
  maxKeys?: number;
  /**
   * Entries per handle() call at most: a flush of more goes out in chunks, one after the
   * other, each followed by a pause as long as the chunk took (so the flush takes at most
   * half the database's time while it runs, and no single statement holds a core for long).
   */
  maxBatch?: number;
  onFlush?: (topic: string, messages: number) => void;
  onError?: (topic: string, err: unknown) => void;
}

/** One group's waiting messages: counts by key, and the first message of each key. */
interface GroupTally {
  counts: Map<string, number>;
  messages: Map<string, Message>;
}

/** A topic's consumer and what waits for it. */
interface Topic {
  consumer: Consumer;
  groups: Map<string, GroupTally>;
  /** Distinct keys waiting, over all groups. */
  keys: number;
}

export class InProcessQueue implements ManagedQueue {
  private readonly topics = new Map<string, Topic>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** The flush that starts when the running one ends. */
  private queued: Promise<void> | undefined;
  private buffered = 0;
  private readonly flushIntervalMs: number;
  private readonly maxKeys: number;
  private readonly maxBatch: number;
  /** Closing: chunks go out without pauses. */
  private closing = false;

  constructor(private readonly opts: InProcessQueueOptions = {}) {
    this.flushIntervalMs = opts.flushIntervalMs ?? 1000;
    this.maxKeys = opts.maxKeys ?? 50_000;
    this.maxBatch = opts.maxBatch ?? Infinity;
  }

  consume(topic: string, consumer: Consumer): void {
    this.topics.set(topic, { consumer, groups: new Map(), keys: 0 });
  }

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.flushIntervalMs);
    this.timer.unref();
  }

  publish(topic: string, message: Message): void {
    const t = this.topics.get(topic);
    if (!t) throw new Error(`no consumer for topic ${topic}`);
    this.add(t, message, 1);
    if (t.keys >= this.maxKeys) void this.flush();
  }

  get size(): number {
    return this.buffered;
  }

  private add(t: Topic, message: Message, n: number): void {
    const group = t.consumer.group?.(message) ?? '';
    let g = t.groups.get(group);
    if (!g) t.groups.set(group, (g = { counts: new Map(), messages: new Map() }));
    const key = t.consumer.key(message);
    const count = g.counts.get(key);
    if (count === undefined) {
      g.messages.set(key, message);
      t.keys++;
    }
    g.counts.set(key, (count ?? 0) + n);
    this.buffered += n;
  }

  /**
   * Writes everything buffered; a failed batch goes back into the buffer. One flush runs at
   * a time. A caller arriving mid-flush gets the one flush queued behind it, which writes
   * what came since; every caller until that one starts shares it. (Each caller once queued
   * a flush of its own: a slow database and a full buffer made every publish a waiter, and
   * thousands of waiters woke on every flush, a CPU-bound storm.)
   */
  flush(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.flushing) return this.startFlush();
    const next = () => {
      this.queued = undefined;
      return this.startFlush();
    };
    this.queued = this.flushing.then(next, next);
    return this.queued;
  }

  private startFlush(): Promise<void> {
    const run: Promise<void> = this.flushOnce().finally(() => {
      if (this.flushing === run) this.flushing = undefined;
    });
    this.flushing = run;
    return run;
  }

  private async flushOnce(): Promise<void> {
    for (const [topic, t] of this.topics) {
      if (t.keys === 0) continue;
      const batch: { message: Message; count: number }[] = [];
      for (const g of t.groups.values()) for (const [key, count] of g.counts) batch.push({ message: g.messages.get(key)!, count });
      t.groups = new Map();
      t.keys = 0;
      this.buffered -= batch.reduce((s, e) => s + e.count, 0);
      for (let from = 0; from < batch.length; from += this.maxBatch) {
        const chunk = from === 0 && batch.length <= this.maxBatch ? batch : batch.slice(from, from + this.maxBatch);
        const n = chunk.reduce((s, e) => s + e.count, 0);
        const started = performance.now();
        try {
          await t.consumer.handle(chunk);
          this.opts.onFlush?.(topic, n);
        } catch (err) {
          // This chunk and the rest go back into the buffer, for the next flush.
          for (const e of batch.slice(from)) this.add(t, e.message, e.count);
          this.opts.onError?.(topic, err);
          break;
        }
        if (from + this.maxBatch < batch.length && !this.closing) {
          await new Promise((r) => setTimeout(r, Math.min(this.flushIntervalMs, performance.now() - started)));
        }
      }
    }
  }

  /** Stops the timer and flushes, retrying a few times before giving up (reported). */
  async close(): Promise<void> {
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      await this.flush();
      if (this.buffered === 0) return;
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  }
}
