// Lookups by key that many requests make at once (the redirect's code lookup) go to the
// database together: keys asked for on one database handle become one statement,
// `... where key = any($1)`, and each caller gets its own row. Postgres then pays its
// per-statement cost (protocol messages, executor start, waking a backend) once per batch
// instead of once per request, and so does the web server's driver. Prisma batches
// findUnique calls the same way (its "dataloader").
//
// How keys are grouped, adaptively, without a timer:
//  - a batch goes out in the loop turn its first key arrives in, after that turn's I/O
//    callbacks (setImmediate), so an idle server answers as fast as one statement allows;
//  - at most `maxInFlight` statements per handle run at once. Keys that arrive while they
//    run wait for the first to finish and go out together (group commit's idea): under load
//    the batches grow with the load, a key waits at most for one statement's round trip,
//    and the database sees a few statements in flight, not one per request.
//
// Batching is per handle: below rung 4 every request shares the process-wide handle on the
// primary, so lookups batch across requests. A rung-4 request handle carries its caller's
// consistency token; it offers, through joinBatch, the shared handle of the replica its
// token lets it read (database.ts), so lookups of every caller that replica satisfies
// (everyone without a token, in rotation over the replicas) batch together there too.
import type { ReadDb, Row } from './database.ts';

export interface BatchedLookupOptions {
  /** One statement taking the keys as a text array in $1, returning rows with `keyColumn`. */
  sql: string;
  keyColumn: string;
  /** Keys per statement at most; more start another batch. */
  maxBatch?: number;
  /** Statements of this lookup running at once per handle. */
  maxInFlight?: number;
}

export type BatchedLookup<R extends Row> = (db: ReadDb, key: string) => Promise<R | undefined>;

type Waiter<R> = { resolve: (row: R | undefined) => void; reject: (err: unknown) => void };
type Batch<R> = Map<string, Waiter<R>[]>;

/** One handle's batches: those waiting to go out, oldest first, and how many run. */
interface HandleState<R> {
  waiting: Batch<R>[];
  inFlight: number;
  scheduled: boolean;
}

export function batchedLookup<R extends Row>(o: BatchedLookupOptions): BatchedLookup<R> {
  const maxBatch = o.maxBatch ?? 200;
  const maxInFlight = o.maxInFlight ?? 2;
  const handles = new WeakMap<ReadDb, HandleState<R>>();

  const schedule = (db: ReadDb, s: HandleState<R>) => {
    const limit = Math.min(maxInFlight, db.batchesInFlight ?? maxInFlight);
    if (s.scheduled || s.waiting.length === 0 || s.inFlight >= limit) return;
    s.scheduled = true;
    setImmediate(() => {
      s.scheduled = false;
      while (s.inFlight < limit && s.waiting.length > 0) void run(db, s, s.waiting.shift()!);
    });
  };

  const run = async (db: ReadDb, s: HandleState<R>, batch: Batch<R>): Promise<void> => {
    s.inFlight++;
    try {
      const rows = await db.read<R>(o.sql, [[...batch.keys()]]);
      const byKey = new Map<string, R>();
      for (const row of rows) byKey.set(String(row[o.keyColumn]), row);
      for (const [key, list] of batch) {
        const row = byKey.get(key);
        for (const w of list) w.resolve(row);
      }
    } catch (err) {
      for (const list of batch.values()) for (const w of list) w.reject(err);
    } finally {
      s.inFlight--;
      schedule(db, s);
    }
  };

  const enqueue = (db: ReadDb, key: string) =>
    new Promise<R | undefined>((resolve, reject) => {
      let s = handles.get(db);
      if (!s) handles.set(db, (s = { waiting: [], inFlight: 0, scheduled: false }));
      let batch = s.waiting[s.waiting.length - 1];
      if (!batch || batch.size >= maxBatch) s.waiting.push((batch = new Map<string, Waiter<R>[]>()));
      const list = batch.get(key);
      if (list) list.push({ resolve, reject });
      else batch.set(key, [{ resolve, reject }]);
      schedule(db, s);
    });

  return (db, key) => (db.joinBatch ? db.joinBatch((shared) => enqueue(shared, key)) : enqueue(db, key));
}
