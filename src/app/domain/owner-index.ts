// Rung 10: "my links" when links live on the shard of their code. An owner's links are
// spread over every shard, so listing them by owner_id would be a scatter-gather on every
// page view; instead each owner has an index (owner_links) on the owner's own shard, kept
// current through the outbox:
//  - the link's write appends an owner-index event to the outbox of the link's shard, in
//    the write's transaction (the event exists if and only if the write committed);
//  - the writing request then applies it to the owner's shard itself and marks it sent,
//    through the request's handle, so its consistency token for the owner's shard is kept
//    and the owner's next "my links" sees the link (read-your-writes). Always a write of its
//    own, even when both live on one cluster: each write is fenced by its own key's logical
//    shard (shard-router.ts), and the owner's may be moving when the link's is not;
//  - a request that died in between leaves the event unsent: every web process sweeps
//    unsent events older than SWEEP_AFTER_MS and applies them (sweepOwnerIndex).
// Applying is idempotent and order-free: an add does nothing over an existing row, a removal
// leaves a tombstone an add cannot undo.
import { dbFor, type Db, type TxDb } from '../../kit/db/database.ts';
import { logicalOfKey } from '../../kit/db/shard-key.ts';

export const INDEX_EVENTS = { add: 'owner-index.add', remove: 'owner-index.remove' } as const;

export interface IndexEvent {
  type: (typeof INDEX_EVENTS)[keyof typeof INDEX_EVENTS];
  ownerId: string;
  linkId: string;
  code: string;
  /** The link's created_at as Postgres prints it (microseconds kept: the page cursor compares it). */
  createdAt: string;
}

/** An unsent event is swept by any web process once it is this old (its request has had time). */
export const SWEEP_AFTER_MS = 3000;

/** Appends the event to the outbox of the transaction's shard; `sent`: applied in this same transaction. */
export async function appendIndexEvent(tx: TxDb, e: IndexEvent, sent: boolean): Promise<string> {
  const rows = await tx.query<{ id: string }>(
    `insert into outbox (type, key, payload, sent_at) values ($1, $2, $3::jsonb, case when $4 then now() end) returning id`,
    [e.type, e.linkId, JSON.stringify({ ownerId: e.ownerId, linkId: e.linkId, code: e.code, createdAt: e.createdAt }), sent],
  );
  return rows[0]!.id;
}

/** Applies the event on the owner's shard (`q` runs there). */
export async function applyIndexEvent(q: TxDb, e: IndexEvent): Promise<void> {
  const logical = logicalOfKey({ owner: e.ownerId });
  if (e.type === INDEX_EVENTS.add) {
    await q.query(
      `insert into owner_links (owner_id, link_id, code, created_at, logical_shard) values ($1, $2, $3, $4::timestamptz, $5)
       on conflict (owner_id, link_id) do nothing`,
      [e.ownerId, e.linkId, e.code, e.createdAt, logical],
    );
  } else {
    await q.query(
      `insert into owner_links (owner_id, link_id, code, created_at, logical_shard, deleted) values ($1, $2, $3, $4::timestamptz, $5, true)
       on conflict (owner_id, link_id) do update set deleted = true`,
      [e.ownerId, e.linkId, e.code, e.createdAt, logical],
    );
  }
}

/**
 * A link write with its index event: `write` runs in a transaction on the link's shard and
 * returns the event (or undefined: nothing written). The event is applied as the header says.
 */
export async function writeWithIndex<T>(db: Db, code: string, ownerId: number, write: (tx: TxDb) => Promise<{ result: T; event: IndexEvent | undefined }>): Promise<T> {
  const linkDb = dbFor(db, { link: code });
  const ownerDb = dbFor(db, { owner: ownerId });
  const { result, event, outboxId } = await linkDb.tx(async (tx) => {
    const { result, event } = await write(tx);
    if (!event) return { result, event, outboxId: undefined };
    return { result, event, outboxId: await appendIndexEvent(tx, event, false) };
  });
  if (event && outboxId !== undefined) {
    await applyIndexEvent({ query: (sql, params) => ownerDb.write(sql, params) }, event);
    await linkDb.write('update outbox set sent_at = now() where id = $1 and sent_at is null', [outboxId]);
  }
  return result;
}

/**
 * Applies the unsent owner-index events of one shard that are older than SWEEP_AFTER_MS
 * (their request died between its commit and applying them), at most `limit`; returns how
 * many. Rows are locked (skip locked), so processes sweeping at once share the work.
 */
export async function sweepOwnerIndex(database: Db, shard: Db, limit = 100): Promise<number> {
  return shard.tx(async (tx) => {
    const rows = await tx.query<{ id: string; type: IndexEvent['type']; payload: Omit<IndexEvent, 'type'> }>(
      `select id, type, payload from outbox
       where sent_at is null and type like 'owner-index.%' and created_at < now() - make_interval(secs => $1::double precision / 1000)
       order by id limit $2 for update skip locked`,
      [SWEEP_AFTER_MS, limit],
    );
    for (const r of rows) {
      const e: IndexEvent = { type: r.type, ...r.payload };
      const ownerDb = dbFor(database, { owner: e.ownerId });
      await applyIndexEvent({ query: (sql, params) => ownerDb.write(sql, params) }, e);
    }
    if (rows.length > 0) await tx.query('update outbox set sent_at = now() where id = any($1::bigint[])', [rows.map((r) => r.id)]);
    return rows.length;
  });
}
