// `req.queue`: fire-and-forget work that must not make the request wait. At rung 1 the
// InProcessQueue aggregates messages by key in memory and flushes them in batches; rung 9
// replaces it with a transactional outbox and workers behind the same interface.
//
// What a crash can lose at rung 1: messages buffered since the last flush (at most one
// flush interval, 1 s by default) if the process dies without a clean shutdown (SIGKILL,
// power loss). A clean shutdown (SIGTERM/SIGINT) flushes everything.

export type Message = Record<string, string | number>;

export interface Queue {
  publish(topic: string, message: Message): void;
}

export interface Consumer {
  /** Messages with equal keys are merged into one entry with a count. */
  key(message: Message): string;
  handle(batch: { message: Message; count: number }[]): Promise<void>;
}

export interface InProcessQueueOptions {
  flushIntervalMs?: number;
  /** Flush early once this many distinct keys are waiting. */
  maxKeys?: number;
  onFlush?: (topic: string, messages: number) => void;
  onError?: (topic: string, err: unknown) => void;
  onBuffered?: (n: number) => void;
}

export class InProcessQueue implements Queue {
  private readonly consumers = new Map<string, Consumer>();
  private readonly pending = new Map<string, Map<string, { message: Message; count: number }>>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private buffered = 0;
  private readonly flushIntervalMs: number;
  private readonly maxKeys: number;

  constructor(private readonly opts: InProcessQueueOptions = {}) {
    this.flushIntervalMs = opts.flushIntervalMs ?? 1000;
    this.maxKeys = opts.maxKeys ?? 50_000;
  }

  consume(topic: string, consumer: Consumer): void {
    this.consumers.set(topic, consumer);
    this.pending.set(topic, new Map());
  }

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.flushIntervalMs);
    this.timer.unref();
  }

  publish(topic: string, message: Message): void {
    const consumer = this.consumers.get(topic);
    const pending = this.pending.get(topic);
    if (!consumer || !pending) throw new Error(`no consumer for topic ${topic}`);
    this.add(pending, consumer.key(message), message, 1);
    if (pending.size >= this.maxKeys) void this.flush();
  }

  get size(): number {
    return this.buffered;
  }

  private add(pending: Map<string, { message: Message; count: number }>, key: string, message: Message, n: number) {
    const entry = pending.get(key);
    if (entry) entry.count += n;
    else pending.set(key, { message, count: n });
    this.buffered += n;
    this.opts.onBuffered?.(this.buffered);
  }

  /** Writes everything buffered; a failed batch goes back into the buffer. */
  async flush(): Promise<void> {
    // One flush at a time; a caller arriving mid-flush waits for it, then flushes what came since.
    while (this.flushing) await this.flushing;
    this.flushing = this.flushOnce();
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
    }
  }

  private async flushOnce(): Promise<void> {
    for (const [topic, pending] of this.pending) {
      if (pending.size === 0) continue;
      const consumer = this.consumers.get(topic)!;
      const batch = [...pending.values()];
      const n = batch.reduce((s, e) => s + e.count, 0);
      pending.clear();
      this.buffered -= n;
      try {
        await consumer.handle(batch);
        this.opts.onFlush?.(topic, n);
      } catch (err) {
        for (const e of batch) this.add(pending, consumer.key(e.message), e.message, e.count);
        this.opts.onError?.(topic, err);
      }
      this.opts.onBuffered?.(this.buffered);
    }
  }

  /** Stops the timer and flushes, retrying a few times before giving up (reported). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      await this.flush();
      if (this.buffered === 0) return;
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  }
}
