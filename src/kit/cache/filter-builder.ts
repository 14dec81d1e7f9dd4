// Fills a set's membership filter (membership-filter.ts) in Redis for a generation: one
// process does it, under a lock, reading every member from the database in pages and
// setting their bits in small pipelined batches; then marks it ready (filter-ready-2.lua).
// Until it is ready, lookups do not trust it (lookup-6.lua answers 'building').
import type { Redis } from 'ioredis';
import type { Database } from '../db/database.ts';
import type { CacheScripts } from './cache-scripts.ts';
import type { MemberSource } from './cache-tier.ts';
import { FreshReader } from './fresh-reader.ts';
import { filterPositions } from './membership-filter.ts';

const FILTER_PAGE = 10_000;
/** Members per pipeline while building a filter (7 SETBITs each: a few ms of Redis). */
const FILTER_BATCH = 500;
/** How long a builder may hold the lock; past it another process builds. */
const LOCK_MS = 120_000;
/** How soon to look again after a failed build, or while another process builds. */
const RETRY_MS = 5_000;

export interface FilterBuilderOptions {
  client: Redis;
  scripts: CacheScripts;
  database: Database;
  filters: Record<string, MemberSource>;
  /** A build failed (it is tried again later); for a log line and a metric. */
  onError: (err: unknown, filter: string) => void;
}

export class FilterBuilder {
  private readonly building = new Set<string>();

  constructor(private readonly o: FilterBuilderOptions) {}

  get names(): string[] {
    return Object.keys(this.o.filters);
  }

  /** Starts building the filter for `gen` unless built, being built here, or unknown. */
  build(name: string, gen: string): void {
    const source = this.o.filters[name];
    const id = `${gen}:${name}`;
    if (!source || this.building.has(id)) return;
    this.building.add(id);
    const again = () => setTimeout(() => this.building.delete(id), RETRY_MS).unref();
    this.fill(name, gen, source).then(
      (done) => {
        if (!done) again(); // another process builds it; look again later
      },
      (err: unknown) => {
        this.o.onError(err, name);
        again();
      },
    );
  }

  /** True when the filter is complete (built here or before), false when another process holds the lock. */
  private async fill(name: string, gen: string, source: MemberSource): Promise<boolean> {
    const { client, scripts, database } = this.o;
    const keys = scripts.keys;
    const bitmap = keys.filter(gen, name);
    const lock = keys.filterLock(gen, name);
    if ((await client.exists(bitmap, keys.filterReady(gen, name))) === 2) return true;
    if ((await client.set(lock, '1', 'PX', LOCK_MS, 'NX')) !== 'OK') return false;
    // Every member committed before now: at least the primary's current position.
    const reader = new FreshReader(database, await database.commitPosition());
    let after: string | undefined;
    for (;;) {
      const page = await source(reader, after, FILTER_PAGE);
      if (page.length === 0) break;
      // Small batches: the requests' commands share this connection and its deadline.
      for (let i = 0; i < page.length; i += FILTER_BATCH) {
        const pipe = client.pipeline();
        for (const member of page.slice(i, i + FILTER_BATCH))
          for (const p of filterPositions(member)) pipe.setbit(bitmap, p, 1);
        const results = await pipe.exec();
        const failed = results?.find(([err]) => err);
        if (!results || failed) throw failed?.[0] ?? new Error('pipeline failed');
      }
      after = page[page.length - 1];
      if (page.length < FILTER_PAGE) break;
    }
    // An empty set still needs its bitmap to exist (a missing one reads as "building").
    await client.setbit(bitmap, 0, 1);
    await scripts.filterReady(gen, name);
    await client.del(lock);
    return true;
  }
}
