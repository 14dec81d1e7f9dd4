// The cache tier from rung 5: cache-aside with a loader, in two tiers, an in-process L1
// (l1-cache.ts) in front of a Redis shared by every web server. Handlers see it through
// `req.cache` (cache-tier.ts, request-cache.ts).
//
// How it stays correct (docs/consistency.md, "Caches", has the argument in full):
//  - A write invalidates after its commit, before its response: the Redis copy and any
//    lease go, a tombstone records the primary's WAL position, and a pub/sub message tells
//    every web server to drop its L1 copy (the delay is measured:
//    ladder_cache_invalidation_delay_seconds); the write waits, bounded, for their acks.
//  - Only the holder of a key's lease fills it, and only if the lease is still its own (an
//    invalidation since took it away: the load may predate the write) and the load reflects
//    at least the tombstone's position (a lagging replica's old row is never put back).
//    Loads after an invalidation ask the database for that position (fresh-reader.ts), so
//    they never read the old row either: an edited link does not flip back once the new
//    URL was served.
//  - The writer's own next requests skip L1 for a few seconds (request-cache.ts).
//  - L1 is used only while this process is connected to Redis, both for commands and for
//    invalidation messages; it is emptied whenever either connection is lost or comes back,
//    and a value is kept in L1 only if no invalidation overtook its read (invalidation.ts).
//    A process that could not deliver an invalidation (or a filter member) while Redis was
//    unreachable starts a new generation when it is back, which drops the whole cache.
//
// Stampedes (stampede-control.ts): concurrent misses for a key load once per process and
// once across servers (the Redis lease; the others poll for the value for up to the lease's
// life). Hot keys are refreshed in the background before they expire. TTLs have jitter.
// Unknown keys are cached as negative entries, and a membership filter (filter-builder.ts)
// answers lookups of members that were never added without the database.
// Redis slow or down: a short deadline, then the database, no error.
//
// Redis's side is in cache-scripts.ts and ./lua; key names in cache-keys.ts.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Database } from '../db/database.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { createRedisConnection, type RedisConnection, type RedisLog } from '../redis/redis-connection.ts';
import { CACHE_DEFAULTS } from './cache-defaults.ts';
import { CacheKeys } from './cache-keys.ts';
import { createCacheMetrics, type CacheMetrics } from './cache-metrics.ts';
import { CacheScripts, parsePosition, type LookupReply } from './cache-scripts.ts';
import type { CacheOptions, CacheTier, Loader, MemberSource, RequestCache } from './cache-tier.ts';
import { FilterBuilder } from './filter-builder.ts';
import { FreshReader } from './fresh-reader.ts';
import { InvalidationLog, parseInvalidationMessage } from './invalidation.ts';
import { L1Cache } from './l1-cache.ts';
import { filterPositions } from './membership-filter.ts';
import { TwoTierRequestCache, recentWriter, type SharedCache } from './request-cache.ts';
import { SingleFlight, jitter, nextToken } from './stampede-control.ts';

export interface TwoTierCacheOptions {
  url: string;
  database: Database;
  metrics: Metrics;
  log: RedisLog;
  l1Bytes: number;
  /** Sets with a membership filter, and how to list their members when building it. */
  filters?: Record<string, MemberSource>;
  ttlMs?: number;
  negativeTtlMs?: number;
  /** Upper bound of an L1 copy's life, invalidations aside. */
  l1TtlMs?: number;
  /** How long a miss's lease lasts: the time a load may take before others load too. */
  leaseMs?: number;
  /** How long a tombstone is kept: longer than any replica in rotation may lag. */
  tombstoneMs?: number;
  /** Deadline of a Redis command; past it the database answers. */
  commandTimeoutMs?: number;
  /** Key prefix and pub/sub channel, with a hash tag (tests run several caches on one Redis). */
  prefix?: string;
}

/** A value as stored in Redis: the value (null: does not exist) and when to refresh it. */
interface Stored {
  v: unknown;
  r: number;
}

/** Scripts that find another generation than the caller's are retried this often with it. */
const GEN_RETRIES = 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class TwoTierCache implements CacheTier, SharedCache {
  readonly m: CacheMetrics;
  /** The request counters, bound to their labels once (the hot path). */
  private readonly c;
  /** Errors handled without failing a request (ladder_background_errors_total{component="cache"}). */
  private readonly swallowed;
  /** L1 hits of the fast path, not yet added to the counter (a plain increment is cheaper). */
  private fastHits = 0;
  private readonly l1: L1Cache;
  private readonly cmd: RedisConnection;
  private readonly sub: RedisConnection;
  private readonly scripts: CacheScripts;
  private readonly keys: CacheKeys;
  private readonly filters: FilterBuilder;
  private readonly o: Required<Omit<TwoTierCacheOptions, 'filters'>>;
  private readonly flights = new SingleFlight();
  private readonly refreshing = new Set<string>();
  private readonly renewing = new Set<string>();
  /** An L1 copy read within this long of running out is renewed from Redis (the last tenth of its life). */
  private readonly renewWithinMs: number;
  private readonly invalidations: InvalidationLog;
  /** The generation this process's L1 belongs to ('' before Redis has said). */
  private gen = '';
  private cmdUp = false;
  private subUp = false;
  /** Invalidations or filter members that could not reach Redis: a new generation is due. */
  private lost = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: TwoTierCacheOptions) {
    this.o = {
      ttlMs: CACHE_DEFAULTS.ttlMs,
      negativeTtlMs: CACHE_DEFAULTS.negativeTtlMs,
      l1TtlMs: CACHE_DEFAULTS.l1TtlMs,
      leaseMs: CACHE_DEFAULTS.leaseMs,
      tombstoneMs: CACHE_DEFAULTS.tombstoneMs,
      commandTimeoutMs: CACHE_DEFAULTS.commandTimeoutMs,
      prefix: CACHE_DEFAULTS.prefix,
      ...opts,
    };
    this.keys = new CacheKeys(this.o.prefix);
    this.renewWithinMs = this.o.l1TtlMs / 10;
    this.invalidations = new InvalidationLog(this.o.leaseMs + 1000);
    this.m = createCacheMetrics(opts.metrics);
    const req = this.m.requests;
    this.c = {
      l1Hit: req.labels({ tier: 'l1', result: 'hit' }),
      l1Miss: req.labels({ tier: 'l1', result: 'miss' }),
      redisHit: req.labels({ tier: 'redis', result: 'hit' }),
      redisMiss: req.labels({ tier: 'redis', result: 'miss' }),
    };
    this.swallowed = opts.metrics.backgroundErrors.labels({ component: 'cache' });
    opts.metrics.beforeCacheCollect(() => {
      if (this.fastHits > 0) this.c.l1Hit.inc(this.fastHits);
      this.fastHits = 0;
    });
    this.l1 = new L1Cache(opts.l1Bytes, (n) => this.m.evictions.inc(n));
    const common = { url: opts.url, log: opts.log, commandTimeoutMs: this.o.commandTimeoutMs };
    const down = 'cache Redis unreachable; reads go to the database until it is back (reconnecting)';
    opts.metrics.redisUp.set({ role: 'cache' }, 0);
    this.cmd = createRedisConnection({
      ...common,
      role: 'cache',
      downMessage: down,
      onStateChange: (up) => {
        opts.metrics.redisUp.set({ role: 'cache' }, up ? 1 : 0);
        this.cmdUp = up;
        this.dropL1();
        if (up) void this.recover();
      },
    });
    this.sub = createRedisConnection({
      ...common,
      role: 'cache-events',
      downMessage: down,
      onStateChange: (up) => {
        this.subUp = false;
        this.dropL1();
        if (up) void this.subscribe();
      },
    });
    this.sub.client.on('message', (_channel: string, message: string) => this.onMessage(message));
    this.scripts = new CacheScripts(this.cmd.client, this.keys);
    this.filters = new FilterBuilder({
      client: this.cmd.client,
      scripts: this.scripts,
      database: opts.database,
      filters: opts.filters ?? {},
      onError: (err, filter) => {
        this.swallowed.inc();
        opts.log.warn({ err: errorSummary(err), filter }, 'cache filter build failed; lookups use the database until it is built (retrying)');
      },
    });
  }

  async start(): Promise<void> {
    this.cmd.connect();
    this.sub.connect();
    await Promise.all([this.cmd.waitReady(3000), this.sub.waitReady(3000)]);
    try {
      this.seeGeneration((await this.cmd.client.get(this.keys.gen)) ?? '0');
    } catch {
      // Not reachable yet: the first lookup learns the generation (its script returns it).
      this.swallowed.inc();
    }
    // A stopped Redis keeps its sockets open and sends nothing, so a silent subscriber looks
    // healthy; a regular PING on the command connection notices (its deadline closes it,
    // which the connection logs and reports as down: the failed PING itself says no more).
    this.heartbeat = setInterval(() => {
      if (!this.cmdUp) return;
      this.cmd.client.ping().catch(() => this.swallowed.inc());
      if (this.lost) void this.recover();
    }, CACHE_DEFAULTS.heartbeatMs);
    this.heartbeat.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    await Promise.all([this.cmd.close(), this.sub.close()]);
  }

  forRequest(req: FastifyRequest, reply: FastifyReply): RequestCache {
    return new TwoTierRequestCache(this, req, reply);
  }

  peek(key: string, cookieHeader: string | undefined): { value: unknown } | undefined {
    if (!this.l1Usable || (cookieHeader !== undefined && recentWriter(cookieHeader))) return undefined;
    const now = Date.now();
    const e = this.l1.get(key, now);
    if (!e || e.refreshAt <= now) return undefined;
    this.fastHits++; // added to ladder_cache_requests_total when scraped
    if (e.expiresAt - now <= this.renewWithinMs) this.renew(key);
    return e;
  }

  /** L1 may serve only while both connections are up (else invalidations could be missed). */
  get l1Usable(): boolean {
    return this.cmdUp && this.subUp && !this.closed;
  }

  async getOrLoad<V>(key: string, loader: Loader<V>, options: CacheOptions, skipL1: boolean): Promise<V | null> {
    const now = Date.now();
    if (this.l1Usable && !skipL1) {
      const e = this.l1.get(key, now);
      if (e) {
        this.c.l1Hit.inc();
        if (e.refreshAt <= now) {
          e.refreshAt = now + 1000; // one refresh attempt a second, whoever wins its lease
          this.refresh(key, loader, options);
        } else if (e.expiresAt - now <= this.renewWithinMs) this.renew(key);
        return e.value as V | null;
      }
      this.c.l1Miss.inc();
    }
    if (!this.cmdUp) {
      this.m.bypasses.inc({ reason: 'redis_down' });
      return this.flights.run(`db:${key}`, () => this.loadOnly(loader, 0n));
    }
    return this.flights.run(key, () => this.fetch(key, loader, options));
  }

  /** Redis, then (holding the lease) the database; or wait for the lease holder's fill. */
  private async fetch<V>(key: string, loader: Loader<V>, options: CacheOptions): Promise<V | null> {
    const token = nextToken();
    const filter = options.filter;
    const asked = filter ? { name: filter.name, positions: filterPositions(filter.member) } : undefined;
    const started = Date.now();
    let polls = 0;
    let genRetries = 0;
    let tomb = 0n;
    for (;;) {
      const seq = this.invalidations.seq;
      let r: LookupReply;
      try {
        r = await this.scripts.lookup(this.gen, key, asked, token, this.o.leaseMs);
      } catch {
        this.m.bypasses.inc({ reason: 'error' });
        return this.loadOnly(loader, tomb);
      }
      const gen = r.gen;
      this.seeGeneration(gen);
      if (r.status === 'gen') {
        // Keys were built for an older generation; seeGeneration has taken the new one.
        if (++genRetries > GEN_RETRIES) {
          this.m.bypasses.inc({ reason: 'error' });
          return this.loadOnly(loader, tomb);
        }
        continue;
      }
      if (filter && r.filter === 'building') this.filters.build(filter.name, gen);
      if (r.status === 'hit') {
        this.c.redisHit.inc();
        const stored = JSON.parse(r.payload) as Stored;
        this.keepL1(key, stored.v, r.payload.length, stored.r, seq, gen);
        if (stored.r <= Date.now()) this.refresh(key, loader, options);
        return stored.v as V | null;
      }
      tomb = parsePosition(r.payload);
      if (r.status === 'absent') {
        this.c.redisHit.inc();
        this.m.filterRejections.inc();
        const ttl = options.negativeTtlMs ?? this.o.negativeTtlMs;
        this.keepL1(key, null, 4, Date.now() + ttl, seq, gen);
        return null;
      }
      // A miss is a lookup that ends in a load; one that waits for another's fill and gets
      // it counts as a hit, so misses count database loads.
      if (r.status === 'lease') {
        this.c.redisMiss.inc();
        return this.loadAndFill(key, loader, options, { gen, token, tomb, seq });
      }
      // Someone else is loading it: poll for their fill, briefly at first, for up to the
      // lease's life (then the lease has expired and the next lookup takes it).
      polls++;
      if (Date.now() - started > this.o.leaseMs + 500) {
        this.c.redisMiss.inc();
        return this.loadOnly(loader, tomb);
      }
      await sleep(polls < 10 ? 5 : 25);
    }
  }

  private async loadAndFill<V>(
    key: string,
    loader: Loader<V>,
    options: CacheOptions,
    lease: { gen: string; token: string; tomb: bigint; seq: number },
  ): Promise<V | null> {
    const reader = new FreshReader(this.o.database, lease.tomb);
    let value: V | null;
    try {
      value = await loader(reader);
    } catch (err) {
      this.releaseLease(key, lease);
      throw err;
    }
    const ttl = jitter(
      value === null ? (options.negativeTtlMs ?? this.o.negativeTtlMs) : (options.ttlMs ?? this.o.ttlMs),
    );
    const refreshAt = Date.now() + CACHE_DEFAULTS.refreshShare * ttl;
    const payload = JSON.stringify({ v: value, r: refreshAt } satisfies Stored);
    let result = 'error';
    try {
      result = await this.scripts.fill(lease.gen, key, lease.token, reader.position, payload, ttl);
    } catch {
      // Redis went away meanwhile: the value is still right for this request. Counted as
      // ladder_cache_loads_total{result="error"} below.
    }
    this.m.loads.inc({ result });
    if (result === 'stale') this.releaseLease(key, lease);
    if (result === 'ok' && !this.keepL1(key, value, payload.length, refreshAt, lease.seq, lease.gen))
      this.l1.delete(key);
    return value;
  }

  /** Gives up a lease early, so the next lookup loads at once instead of waiting it out. */
  private releaseLease(key: string, lease: { gen: string; token: string }): void {
    // At worst the lease runs out by itself (its life is short).
    this.scripts.releaseLease(lease.gen, key, lease.token).catch(() => this.swallowed.inc());
  }

  /** A load that does not fill (Redis unreachable, or the lease holder never filled). */
  private async loadOnly<V>(loader: Loader<V>, atLeast: bigint): Promise<V | null> {
    this.m.loads.inc({ result: 'unfilled' });
    return loader(new FreshReader(this.o.database, atLeast));
  }

  /** Reloads a hot key in the background before it expires; one process does it. */
  private refresh<V>(key: string, loader: Loader<V>, options: CacheOptions): void {
    if (this.refreshing.has(key) || !this.cmdUp) return;
    this.refreshing.add(key);
    const seq = this.invalidations.seq;
    const token = nextToken();
    void (async () => {
      const got = await this.scripts.refreshLease(this.gen, key, token, this.o.leaseMs);
      this.seeGeneration(got.gen);
      if (got.tomb === undefined) return; // someone else refreshes it, or a new generation
      await this.loadAndFill(key, loader, options, { gen: got.gen, token, tomb: got.tomb, seq });
    })()
      // The value stays cached as it is; the next hit past its refresh time tries again.
      .catch(() => this.swallowed.inc())
      .finally(() => this.refreshing.delete(key));
  }

  /**
   * Renews an L1 copy that is still being read near the end of its life with the value Redis
   * holds, in the background: a hot key then never runs out onto the request path, and
   * copies filled together (at start, after a new generation) do not all run out together.
   * Nothing in Redis (invalidated, expired): the copy runs out and the next read loads.
   * keepL1 refuses the value if an invalidation of the key came in meanwhile.
   */
  private renew(key: string): void {
    if (this.renewing.has(key) || !this.cmdUp) return;
    this.renewing.add(key);
    const seq = this.invalidations.seq;
    void (async () => {
      const { gen, payload } = await this.scripts.peekValue(this.gen, key);
      this.seeGeneration(gen);
      if (payload === '') return;
      const stored = JSON.parse(payload) as Stored;
      if (this.keepL1(key, stored.v, payload.length, stored.r, seq, gen)) this.m.renewals.inc();
    })()
      // The copy runs out as it would have without renewal; the next read loads.
      .catch(() => this.swallowed.inc())
      .finally(() => this.renewing.delete(key));
  }

  /**
   * Keeps a value in L1 unless an invalidation of its key (or a flush) came in since it was
   * read: the message may overtake the reply, so the value could be the one invalidated.
   */
  private keepL1(key: string, value: unknown, size: number, refreshAt: number, seq: number, gen: string): boolean {
    if (!this.l1Usable || gen !== this.gen || !this.invalidations.mayKeep(key, seq)) return false;
    const now = Date.now();
    this.l1.set(
      key,
      value,
      size,
      Math.min(this.o.l1TtlMs, Math.max(0, refreshAt - now) + this.o.l1TtlMs / 10),
      refreshAt,
      now,
    );
    this.m.l1Bytes.set(this.l1.bytes);
    return true;
  }

  async invalidate(key: string): Promise<void> {
    this.dropKey(key);
    this.m.invalidations.inc({ source: 'sent' });
    let receivers: number | undefined;
    const id = nextToken();
    const started = performance.now();
    try {
      const position = await this.o.database.commitPosition();
      for (let tries = 0; receivers === undefined; tries++) {
        if (tries > GEN_RETRIES) throw new Error('the cache generation keeps changing');
        const r = await this.scripts.invalidate(this.gen, key, position, this.o.tombstoneMs, id);
        this.seeGeneration(r.gen);
        receivers = r.receivers;
      }
    } catch {
      // Not delivered (Redis unreachable): a new generation once Redis is back (recover),
      // counted then as ladder_cache_invalidations_total{source="generation"}.
      this.lost = true;
      this.swallowed.inc();
      return;
    }
    // Wait (bounded) until every web server has dropped its L1 copy, so that once the write
    // has answered no server serves the old value from memory: nobody can see the new
    // value and then the old one.
    const ackKey = this.keys.ack(id);
    for (let waited = 0; ; waited++) {
      let acks = 0;
      try {
        acks = Number(await this.cmd.client.get(ackKey));
      } catch {
        break; // counted below as an unacknowledged invalidation
      }
      if (acks >= receivers) {
        this.m.invalidationAck.observe((performance.now() - started) / 1000);
        return;
      }
      if (performance.now() - started > CACHE_DEFAULTS.ackWaitMs) break;
      await sleep(waited < 10 ? 1 : 5);
    }
    this.m.invalidationAckTimeouts.inc();
  }

  async addMember(filter: string, member: string): Promise<void> {
    const positions = filterPositions(member);
    try {
      for (let tries = 0; ; tries++) {
        if (tries > GEN_RETRIES) throw new Error('the cache generation keeps changing');
        const r = await this.scripts.addMember(this.gen, filter, positions);
        this.seeGeneration(r.gen);
        if (r.added) return;
      }
    } catch {
      // Not delivered: a new generation (with a filter built afresh) once Redis is back.
      this.lost = true;
      this.swallowed.inc();
    }
  }

  private onMessage(message: string): void {
    const msg = parseInvalidationMessage(message);
    if (msg?.kind === 'key') {
      this.dropKey(msg.key);
      // Unacknowledged, the writer waits out its bound and counts a timeout: nothing is wrong here.
      this.scripts.ack(msg.id).catch(() => this.swallowed.inc());
      this.m.invalidations.inc({ source: 'received' });
      if (Number.isFinite(msg.sentAt)) this.m.invalidationDelay.observe(Math.max(0, Date.now() - msg.sentAt) / 1000);
    } else if (msg?.kind === 'generation') {
      this.seeGeneration(msg.gen);
    }
  }

  private dropKey(key: string): void {
    this.invalidations.invalidated(key);
    if (this.l1.delete(key)) this.m.l1Bytes.set(this.l1.bytes);
  }

  private dropL1(): void {
    this.invalidations.flushed();
    this.l1.clear();
    this.m.l1Bytes.set(0);
  }

  private seeGeneration(gen: string): void {
    if (gen === this.gen) return;
    this.gen = gen;
    this.dropL1();
    // Build the new generation's filters now, not on its first lookups: their reads then
    // come at start (or just after a new generation), not in the middle of a stampede.
    for (const name of this.filters.names) this.filters.build(name, gen);
  }

  private async subscribe(): Promise<void> {
    try {
      await this.sub.client.subscribe(this.keys.channel);
      this.dropL1(); // messages sent while it was away are lost
      this.subUp = true;
    } catch {
      // The connection went away again (it logs that); its next 'ready' subscribes again.
      this.swallowed.inc();
    }
  }

  /** Back after an outage: if anything could not be delivered, drop the whole cache. */
  private async recover(): Promise<void> {
    if (!this.lost) return;
    try {
      await this.scripts.bumpGeneration();
      this.lost = false;
      this.m.invalidations.inc({ source: 'generation' });
    } catch {
      // Down again: the next 'ready' or heartbeat tries again.
      this.swallowed.inc();
    }
  }
}

/** An error's message and code only: ioredis errors can carry a command's arguments. */
function errorSummary(err: unknown): { message: string; code?: string } {
  const e = err as { message?: unknown; code?: unknown };
  return {
    message: typeof e?.message === 'string' ? e.message.slice(0, 200) : String(err).slice(0, 200),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
  };
}
