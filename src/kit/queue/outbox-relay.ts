// The relay's half of the outbox: polls unsent events in id order, publishes them, then marks
// them sent. At-least-once from commit to broker: a relay killed between the publish and the
// mark publishes the same rows again, under the same message ids (the event id), and the
// consumers apply an event id once. Events of one key (a link) are written in commit order
// (each write holds the link's row lock), so id order is their order.
import type pg from 'pg';

export interface OutboxMessage {
  id: string;
  type: string;
  key: string;
  payload: Record<string, unknown>;
}

export interface OutboxRelayOptions {
  pool: pg.Pool;
  send(events: OutboxMessage[]): Promise<void>;
  batch?: number;
  pollMs?: number;
  log?: (msg: string, err?: unknown) => void;
}

export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  published = 0;

  constructor(private readonly opts: OutboxRelayOptions) {}

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.running = this.drain()
        .then(() => undefined)
        .catch((err: unknown) => this.opts.log?.('outbox relay failed; retrying', err))
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) this.timer = setTimeout(loop, this.opts.pollMs ?? 100);
        });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Publishes every unsent event, a batch at a time; returns how many. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.once();
      total += n;
      if (n < (this.opts.batch ?? 500) || this.stopped) return total;
    }
  }

  private async once(): Promise<number> {
    const { rows } = await this.opts.pool.query<{ id: string; type: string; key: string; payload: Record<string, unknown> }>(
      'select id, type, key, payload from outbox where sent_at is null order by id limit $1',
      [this.opts.batch ?? 500],
    );
    if (rows.length === 0) return 0;
    await this.opts.send(rows.map((r) => ({ id: String(r.id), type: r.type, key: r.key, payload: r.payload })));
    await this.opts.pool.query('update outbox set sent_at = now() where id = any($1::bigint[])', [rows.map((r) => r.id)]);
    this.published += rows.length;
    return rows.length;
  }
}
