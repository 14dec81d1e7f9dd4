// The transactional outbox (rung 9): a business write appends its event to the `outbox`
// table in the same transaction, so the event exists if and only if the write committed.
// The relay (outbox-relay.ts) publishes unsent rows to the broker and marks them sent.
// Below rung 9 there is no relay, and the outbox is off: appending does nothing.
import type { TxDb } from '../db/database.ts';

export interface OutboxEvent {
  /** What happened, such as `link.created`. */
  type: string;
  /** Events with the same key are published in the order they were written (the link id). */
  key: string;
  payload: Record<string, string | number | null>;
}

export interface Outbox {
  /** False below rung 9: callers may then skip the transaction they would open for it. */
  readonly enabled: boolean;
  append(tx: TxDb, event: OutboxEvent): Promise<void>;
}

export const NO_OUTBOX: Outbox = { enabled: false, append: async () => undefined };

export const PG_OUTBOX: Outbox = {
  enabled: true,
  append: async (tx, e) => {
    await tx.query('insert into outbox (type, key, payload) values ($1, $2, $3::jsonb)', [e.type, e.key, JSON.stringify(e.payload)]);
  },
};
