// The SQL of Links, in one place. Every statement is parameterized; handlers pass the
// request's Db so the kit decides where each query runs.
//
// Rung 10: every statement says what it is about (dbFor(db, key)): a link by its code or id,
// an owner's "my links" index, or the directory (users). Below rung 10 dbFor is the db itself.
import { batchedLookup } from '../../kit/db/batched-lookup.ts';
import { dbFor, type Db, type ReadDb, type TxDb } from '../../kit/db/database.ts';
import { logicalOfKey } from '../../kit/db/shard-key.ts';
import type { ClickCount } from '../../kit/queue/click-log-format.ts';
import { NO_OUTBOX, type Outbox } from '../../kit/queue/outbox.ts';
import { INDEX_EVENTS, writeWithIndex } from './owner-index.ts';

export interface LinkRow {
  id: string;
  code: string;
  url: string;
  owner_id: string;
  created_at: Date;
  clicks?: string;
}

export interface UserRow {
  id: string;
  email: string;
  password_hash: string;
}

export async function findUserByEmail(db: ReadDb, email: string): Promise<UserRow | undefined> {
  const rows = await dbFor(db, 'directory').read<UserRow & Record<string, unknown>>(
    'select id, email, password_hash from users where lower(email) = $1',
    [email],
  );
  return rows[0];
}

export async function findUserById(db: ReadDb, id: number): Promise<{ id: string; email: string } | undefined> {
  const rows = await dbFor(db, 'directory').read<{ id: string; email: string }>('select id, email from users where id = $1', [id]);
  return rows[0];
}

/** Inserts the user (inside the caller's transaction); undefined when the email is taken. */
export async function insertUser(tx: TxDb, email: string, passwordHash: string): Promise<{ id: string; email: string } | undefined> {
  const rows = await tx.query<{ id: string; email: string }>(
    'insert into users (email, password_hash) values ($1, $2) on conflict do nothing returning id, email',
    [email, passwordHash],
  );
  return rows[0];
}

/** The cache key of a code's redirect target, and the filter of every code that exists. */
export const linkKey = (code: string) => `link:${code}`;
export const CODES_FILTER = 'codes';

/** A page of every code, in order (to build the codes filter). */
export async function codesAfter(db: ReadDb, after: string | undefined, limit: number): Promise<string[]> {
  const rows = after === undefined
    ? await db.read<{ code: string }>('select code from links order by code limit $1', [limit])
    : await db.read<{ code: string }>('select code from links where code > $1 order by code limit $2', [after, limit]);
  return rows.map((r) => r.code);
}

const targetsByCode = batchedLookup<{ code: string; id: string; url: string }>({
  sql: 'select code, id, url from links where code = any($1::text[])',
  keyColumn: 'code',
});

/**
 * The hot path of the redirect: a lookup on the unique code index. Concurrent redirects'
 * lookups go out as one statement (kit/db/batched-lookup.ts).
 */
export async function findTarget(db: ReadDb, code: string): Promise<{ id: string; url: string } | undefined> {
  const row = await targetsByCode(dbFor(db, { link: code }), code);
  return row && { id: row.id, url: row.url };
}

/** The events of link writes, appended to the outbox in the write's transaction (rung 9). */
export const LINK_EVENTS = { created: 'link.created', edited: 'link.edited', deleted: 'link.deleted' } as const;

/**
 * Runs a write alone, or, when the outbox is on, in a transaction with its event: the event
 * is kept if and only if the write commits.
 */
async function withEvent<T>(
  db: Db,
  outbox: Outbox,
  write: (q: TxDb) => Promise<T>,
  event: (result: T) => { type: string; key: string; payload: Record<string, string | number | null> } | undefined,
): Promise<T> {
  if (!outbox.enabled) return write({ query: (sql, params) => db.write(sql, params) });
  return db.tx(async (tx) => {
    const result = await write(tx);
    const e = event(result);
    if (e) await outbox.append(tx, e);
    return result;
  });
}

/** Inserts the link; undefined when the code is taken. */
export async function insertLink(db: Db, code: string, url: string, ownerId: number, outbox: Outbox = NO_OUTBOX): Promise<LinkRow | undefined> {
  if (db.sharded) {
    // The id names the link's logical shard; the owner's index learns of it through the outbox.
    const logical = logicalOfKey({ link: code });
    return writeWithIndex(db, code, ownerId, async (tx) => {
      const rows = await tx.query<LinkRow & { created_text: string } & Record<string, unknown>>(
        `insert into links (id, logical_shard, code, url, owner_id) values (ladder_id($4), $4, $1, $2, $3)
         on conflict (code) do nothing
         returning id, code, url, owner_id, created_at, created_at::text as created_text`,
        [code, url, ownerId, logical],
      );
      const row = rows[0];
      return {
        result: row,
        event: row && { type: INDEX_EVENTS.add, ownerId: String(ownerId), linkId: String(row.id), code, createdAt: row.created_text },
      };
    });
  }
  return withEvent(
    db,
    outbox,
    async (q) => {
      const rows = await q.query<LinkRow & Record<string, unknown>>(
        `insert into links (code, url, owner_id) values ($1, $2, $3)
         on conflict (code) do nothing
         returning id, code, url, owner_id, created_at`,
        [code, url, ownerId],
      );
      return rows[0];
    },
    (row) => row && { type: LINK_EVENTS.created, key: String(row.id), payload: { linkId: String(row.id), ownerId: String(ownerId), code, url } },
  );
}

const CLICKS = '(select coalesce(sum(d.clicks), 0) from link_clicks_daily d where d.link_id = l.id) as clicks';

export async function findOwnLink(db: ReadDb, code: string, ownerId: number): Promise<LinkRow | undefined> {
  const rows = await dbFor(db, { link: code }).read<LinkRow & Record<string, unknown>>(
    `select l.id, l.code, l.url, l.owner_id, l.created_at, ${CLICKS}
     from links l where l.code = $1 and l.owner_id = $2`,
    [code, ownerId],
  );
  return rows[0];
}

/** Newest first; the cursor is the (created_at, id) of the last item already seen. */
export async function listOwnLinks(
  db: ReadDb,
  ownerId: number,
  limit: number,
  after: { createdAt: string; id: string } | undefined,
): Promise<LinkRow[]> {
  if (db.sharded) return listFromOwnerIndex(db, ownerId, limit, after);
  const params: unknown[] = [ownerId, limit];
  let where = 'l.owner_id = $1';
  if (after) {
    params.push(after.createdAt, after.id);
    where += ' and (l.created_at, l.id) < ($3::timestamptz, $4::bigint)';
  }
  return db.read<LinkRow & Record<string, unknown>>(
    `select l.id, l.code, l.url, l.owner_id, l.created_at, ${CLICKS}
     from links l where ${where}
     order by l.created_at desc, l.id desc limit $2`,
    params,
  );
}

/**
 * Rung 10: a page of the owner's index (on the owner's shard), then the links themselves
 * from their shards, one statement per shard named, in the index's order. A link the index
 * names but its shard no longer has (a removal not yet applied) is left out.
 */
async function listFromOwnerIndex(db: ReadDb, ownerId: number, limit: number, after: { createdAt: string; id: string } | undefined): Promise<LinkRow[]> {
  const params: unknown[] = [ownerId, limit];
  let where = 'owner_id = $1 and not deleted';
  if (after) {
    params.push(after.createdAt, after.id);
    where += ' and (created_at, link_id) < ($3::timestamptz, $4::bigint)';
  }
  const index = await dbFor(db, { owner: ownerId }).read<{ link_id: string; code: string }>(
    `select link_id, code from owner_links where ${where} order by created_at desc, link_id desc limit $2`,
    params,
  );
  const byShard = new Map<ReadDb, string[]>();
  for (const r of index) {
    const shard = dbFor(db, { link: r.code });
    const list = byShard.get(shard);
    if (list) list.push(r.code);
    else byShard.set(shard, [r.code]);
  }
  const found = new Map<string, LinkRow>();
  await Promise.all(
    [...byShard].map(async ([shard, codes]) => {
      const rows = await shard.read<LinkRow & Record<string, unknown>>(
        `select l.id, l.code, l.url, l.owner_id, l.created_at, ${CLICKS}
         from links l where l.code = any($1::text[]) and l.owner_id = $2`,
        [codes, ownerId],
      );
      for (const row of rows) found.set(row.code, row);
    }),
  );
  return index.flatMap((r) => found.get(r.code) ?? []);
}

export async function updateLinkUrl(db: Db, code: string, ownerId: number, url: string, outbox: Outbox = NO_OUTBOX): Promise<LinkRow | undefined> {
  return withEvent(
    dbFor(db, { link: code }),
    outbox,
    async (q) => {
      const rows = await q.query<LinkRow & Record<string, unknown>>(
        `update links l set url = $3, updated_at = now() where l.code = $1 and l.owner_id = $2
         returning l.id, l.code, l.url, l.owner_id, l.created_at, ${CLICKS}`,
        [code, ownerId, url],
      );
      return rows[0];
    },
    (row) => row && { type: LINK_EVENTS.edited, key: String(row.id), payload: { linkId: String(row.id), ownerId: String(ownerId), code, url } },
  );
}

export async function deleteLink(db: Db, code: string, ownerId: number, outbox: Outbox = NO_OUTBOX): Promise<boolean> {
  if (db.sharded) {
    const deleted = await writeWithIndex(db, code, ownerId, async (tx) => {
      const row = (await tx.query<{ id: string; created_text: string }>(
        'delete from links where code = $1 and owner_id = $2 returning id, created_at::text as created_text',
        [code, ownerId],
      ))[0];
      return {
        result: row !== undefined,
        event: row && { type: INDEX_EVENTS.remove, ownerId: String(ownerId), linkId: String(row.id), code, createdAt: row.created_text },
      };
    });
    return deleted;
  }
  const id = await withEvent(
    db,
    outbox,
    async (q) => (await q.query<{ id: string }>('delete from links where code = $1 and owner_id = $2 returning id', [code, ownerId]))[0]?.id,
    (linkId) => linkId !== undefined ? { type: LINK_EVENTS.deleted, key: String(linkId), payload: { linkId: String(linkId), ownerId: String(ownerId), code, url: null } } : undefined,
  );
  return id !== undefined;
}

export async function dailyClicks(db: ReadDb, linkId: string): Promise<{ day: string; clicks: string }[]> {
  return dbFor(db, { linkId }).read<{ day: string; clicks: string }>(
    `select to_char(day, 'YYYY-MM-DD') as day, clicks from link_clicks_daily
     where link_id = $1 order by day desc limit 366`,
    [linkId],
  );
}

/** Adds counted clicks in one statement; links deleted meanwhile are skipped. */
export async function addClicks(tx: TxDb, batch: { linkId: string; day: string; count: number }[]): Promise<void> {
  if (batch.length === 0) return;
  await tx.query(
    `insert into link_clicks_daily (link_id, day, clicks)
     select b.link_id, b.day, b.clicks
     from unnest($1::bigint[], $2::date[], $3::bigint[]) as b(link_id, day, clicks)
     where exists (select 1 from links l where l.id = b.link_id)
     order by b.link_id, b.day
     on conflict (link_id, day) do update set clicks = link_clicks_daily.clicks + excluded.clicks`,
    // Array literals built here: the ids, days and counts need no quoting, and node-postgres
    // would escape every element of a JS array one by one (a flush can carry tens of
    // thousands of links: measured as several % of a busy server's CPU).
    [arrayLiteral(batch.map((b) => b.linkId)), arrayLiteral(batch.map((b) => b.day)), arrayLiteral(batch.map((b) => b.count))],
  );
}

/**
 * `{a,b,c}` for values that are digits or ISO dates, or with `UUIDS` lower-case request keys
 * (checked: anything else is a bug).
 */
function arrayLiteral(values: (string | number)[], allowed: { chars: RegExp; what: string } = NUMBERS_OR_DATES): string {
  const text = values.join(',');
  if (!allowed.chars.test(text)) throw new Error(`click batch holds a value that is not ${allowed.what}`);
  return `{${text}}`;
}
const NUMBERS_OR_DATES = { chars: /^[0-9,-]*$/, what: 'a number or a date' };
const UUIDS = { chars: /^[0-9a-f,-]*$/, what: 'a request key (a UUID)' };

/** A click batch's name: the producer (a web server's log segment) and its first byte. */
export interface ClickBatchId {
  producer: string;
  start: number;
  end: number;
}

/** How long the request key of an applied click is kept (click_keys), and so recognised. */
export const CLICK_KEY_RETENTION_S = 3600;

/**
 * Applies a click batch once: records its id, and only if it was not recorded before records
 * the request keys of its clicks (click_keys), then adds its clicks (one upsert per link and
 * day), less those whose key was recorded before (a redirect retried by the balancer on
 * another server, or a key repeated), and the owners' totals, all in one transaction. A
 * redelivered batch finds its id and changes nothing. Returns whether it was applied now, and
 * how many of its clicks had a key recorded before (counted as none).
 */
export async function applyClickBatch(
  db: Db,
  id: ClickBatchId,
  batch: ClickCount[],
): Promise<{ applied: boolean; repeated: number }> {
  const total = batch.reduce((s, c) => s + c.count, 0);
  return db.tx(async (tx) => {
    const fresh = await tx.query(
      `insert into click_batches (producer, start_offset, end_offset, clicks) values ($1, $2, $3, $4)
       on conflict do nothing returning 1`,
      [id.producer, id.start, id.end, total],
    );
    if (fresh.length === 0) return { applied: false, repeated: 0 };
    const clicks = await withoutSeenKeys(tx, batch);
    const repeated = total - clicks.reduce((s, c) => s + c.count, 0);
    await addClicks(tx, clicks);
    if (clicks.length > 0) {
      await tx.query(
        `insert into owner_summary (owner_id, clicks)
         select l.owner_id, sum(b.clicks)
         from unnest($1::bigint[], $2::bigint[]) as b(link_id, clicks) join links l on l.id = b.link_id
         group by l.owner_id order by l.owner_id
         on conflict (owner_id) do update set clicks = owner_summary.clicks + excluded.clicks, updated_at = now()`,
        [arrayLiteral(clicks.map((c) => c.linkId)), arrayLiteral(clicks.map((c) => c.count))],
      );
    }
    return { applied: true, repeated };
  });
}

/**
 * Records the batch's request keys (in sorted order, so that two workers recording
 * overlapping keys wait for each other instead of deadlocking) and returns its clicks less
 * one for every key that was recorded already, by an earlier batch or earlier in this one.
 */
async function withoutSeenKeys(tx: TxDb, batch: ClickCount[]): Promise<ClickCount[]> {
  const keys = batch.flatMap((c) => c.keys ?? []);
  if (keys.length === 0) return batch;
  const rows = await tx.query<{ k: string }>(
    `insert into click_keys (request_key) select k from unnest($1::uuid[]) as u(k) order by k
     on conflict do nothing returning request_key::text as k`,
    [arrayLiteral([...new Set(keys)].sort(), UUIDS)],
  );
  const fresh = new Set(rows.map((r) => r.k));
  return batch
    .map((c) => {
      if (!c.keys) return c;
      let seen = 0;
      for (const k of c.keys) if (!fresh.delete(k)) seen++;
      return { linkId: c.linkId, day: c.day, count: c.count - seen };
    })
    .filter((c) => c.count > 0);
}

/** Forgets the request keys applied more than CLICK_KEY_RETENTION_S ago, at most `limit` at a time. Returns how many. */
export async function pruneClickKeys(db: Db, limit = 10_000): Promise<number> {
  const rows = await db.write(
    `delete from click_keys where request_key in (
       select request_key from click_keys where applied_at < now() - make_interval(secs => $1) order by applied_at limit $2)
     returning 1`,
    [CLICK_KEY_RETENTION_S, limit],
  );
  return rows.length;
}

/** Applies a link event to its owner's summary once (the event id is recorded in the same transaction). */
export async function applyLinkEvent(db: Db, eventId: string, type: string, ownerId: string): Promise<boolean> {
  const delta = type === LINK_EVENTS.created ? [1, 0] : type === LINK_EVENTS.deleted ? [-1, 0] : type === LINK_EVENTS.edited ? [0, 1] : undefined;
  if (!delta) throw new Error(`unknown link event type ${type.slice(0, 40)}`);
  return db.tx(async (tx) => {
    const fresh = await tx.query('insert into outbox_applied (event_id) values ($1) on conflict do nothing returning 1', [eventId]);
    if (fresh.length === 0) return false;
    await tx.query(
      `insert into owner_summary (owner_id, links, edits)
       select id, $2, $3 from users where id = $1
       on conflict (owner_id) do update set links = owner_summary.links + excluded.links,
         edits = owner_summary.edits + excluded.edits, updated_at = now()`,
      [ownerId, delta[0], delta[1]],
    );
    return true;
  });
}

export async function ownerSummary(db: ReadDb, ownerId: number): Promise<{ links: string; edits: string; clicks: string } | undefined> {
  const rows = await db.read<{ links: string; edits: string; clicks: string }>('select links, edits, clicks from owner_summary where owner_id = $1', [ownerId]);
  return rows[0];
}
