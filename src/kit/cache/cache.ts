// `req.cache`: cache-aside with a loader, in two tiers (rung 5). Handlers say what to cache
// and what invalidates it; where it lives is the kit's business:
//
//   const link = await req.cache.getOrLoad(`link:${code}`, (db) => findTarget(db, code),
//                                          { filter: { name: 'codes', member: code } });
//   ... after a committed write:  await req.cache.invalidate(`link:${code}`);
//
// Below rung 5 (no CACHE_REDIS_URL) getOrLoad just runs the loader on req.db.
//
// How it stays correct (docs/consistency.md, "Caches", has the argument in full):
//  - A write invalidates after its commit, before its response: the Redis copy and any
//    lease go, a tombstone records the primary's WAL position, and a pub/sub message tells
//    every web server to drop its L1 copy (the delay is measured:
//    ladder_cache_invalidation_delay_seconds).
//  - Only the holder of a key's lease fills it, and only if the lease is still its own (an
//    invalidation since took it away: the load may predate the write) and the load reflects
//    at least the tombstone's position (a lagging replica's old row is never put back).
//    Loads after an invalidation ask the database for that position, so they never read
//    the old row either: an edited link does not flip back once the new URL was served.
//  - The writer's own next requests skip L1 for a few seconds (the `ladder_fresh` cookie),
//    because another server's L1 may not have had the pub/sub message yet; Redis has
//    already been invalidated, synchronously, before the write answered.
//  - L1 is used only while this process is connected to Redis, both for commands and for
//    invalidation messages; it is emptied whenever either connection is lost or comes back.
//    A process that could not deliver an invalidation (or a filter member) while Redis was
//    unreachable starts a new generation when it is back, which drops the whole cache.
//
// Stampedes: concurrent misses for a key load once per process (single flight) and once
// across servers (the Redis lease; the others poll for the value for up to the lease's
// life). Hot keys are refreshed in the background before they expire. TTLs have jitter.
// Unknown keys are cached as negative entries, and a membership filter answers lookups
// of members that were never added without the database (a flood of random codes).
// Redis slow or down: a short deadline, then the database, no error.
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FRESHEST, type Database, type ReadDb, type Row } from '../db/database.ts';
import { parseCookies, serializeCookie } from '../http/cookies.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { createRedisConnection, type RedisConnection, type RedisLog } from '../redis/redis-connection.ts';
import { createCacheMetrics, type CacheMetrics } from './cache-metrics.ts';
import {
  ACK,
  ADD_MEMBER,
  BUMP_GENERATION,
  FILL,
  FILTER_READY,
  INVALIDATE,
  LOOKUP,
  PEEK_VALUE,
  REFRESH_LEASE,
  RELEASE_LEASE,
  parsePosition,
  positionText,
} from './cache-scripts.ts';
import { L1Cache } from './l1-cache.ts';
import { filterPositions } from './membership-filter.ts';

export interface CacheOptions {
  /** Life of a cached value in Redis (jittered by ±10%). */
  ttlMs?: number;
  /** Life of a cached "does not exist". */
  negativeTtlMs?: number;
  /** A set whose membership filter may answer "absent" for this key without the database. */
  filter?: { name: string; member: string };
}

/** Loads the value from the database; null means "does not exist" (cached too). */
export type Loader<V> = (db: ReadDb) => Promise<V | null>;

/** What handlers see as `req.cache`. */
export interface RequestCache {
  getOrLoad<V>(key: string, loader: Loader<V>, options?: CacheOptions): Promise<V | null>;
  /** After a committed write that changes what `key` loads. Never throws. */
  invalidate(key: string): Promise<void>;
  /** Before inserting a member of a filtered set, so lookups never miss it. Never throws. */
  addMember(filter: string, member: string): Promise<void>;
}

/** The process-wide cache: hands out per-request handles. */
export interface CacheTier {
  forRequest(req: FastifyRequest, reply: FastifyReply): RequestCache;
  /**
   * The value from L1 only, synchronously, for a request that carries `cookieHeader`; undefined
   * when L1 cannot answer (not there, due for a refresh, L1 off, or the caller wrote recently),
   * so the caller takes the ordinary path. For the kit's fast path (http/server.ts).
   */
  peek(key: string, cookieHeader: string | undefined): { value: unknown } | undefined;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Below rung 5: no cache, the loader runs on the request's database handle. */
export class NoCache implements CacheTier {
  forRequest(req: FastifyRequest): RequestCache {
    return {
      getOrLoad: (_key, loader) => loader(req.db),
      invalidate: async () => undefined,
      addMember: async () => undefined,
    };
  }

  peek(): undefined {
    return undefined;
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {}
}

/** Pages of a filtered set's members, in order, after `after` (undefined: from the start). */
export type MemberSource = (db: ReadDb, after: string | undefined, limit: number) => Promise<string[]>;

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
  /** Key prefix and pub/sub channel (tests run several caches on one Redis). */
  prefix?: string;
}

export const CACHE_DEFAULTS = {
  // Writes invalidate explicitly and reliably (after commit, tombstones, a new generation
  // after an outage), so TTLs are a safety net, not the freshness mechanism: long, because
  // every expiry is a reload (100,000 links on a 5 min TTL would cost 330 loads/s forever).
  ttlMs: 3_600_000,
  negativeTtlMs: 60_000,
  l1TtlMs: 300_000,
  leaseMs: 2_000,
  tombstoneMs: 120_000,
  commandTimeoutMs: 150,
  heartbeatMs: 250,
  /** How long the writer's requests skip L1 after its write (>> pub/sub delivery). */
  freshMs: 2_000,
  /** How long a write waits for every web server to acknowledge its invalidation. */
  ackWaitMs: 100,
  /** Refresh in the background once a value has lived this share of its TTL. */
  refreshShare: 0.8,
  prefix: 'lc:',
} as const;

const FRESH_COOKIE = 'ladder_fresh';
/** Lease tokens: a random prefix per process and a counter (unique, and cheap on a miss). */
const TOKEN_PREFIX = randomBytes(9).toString('base64url');
let tokens = 0;
const nextToken = () => `${TOKEN_PREFIX}.${(++tokens).toString(36)}`;
/** SHA1 of each script's source, for EVALSHA. */
const SHAS = new Map<string, string>();
const FILTER_PAGE = 10_000;
/** Members per pipeline while building a filter (7 SETBITs each: a few ms of Redis). */
const FILTER_BATCH = 500;
/** Recently invalidated keys remembered for L1 fills in flight. */
const RECENT_MAX = 10_000;

type Lookup = [
  gen: string,
  status: 'hit' | 'absent' | 'lease' | 'wait',
  payload: string,
  filter: '' | 'ready' | 'building',
];

/** A value as stored in Redis: the value (null: does not exist) and when to refresh it. */
interface Stored {
  v: unknown;
  r: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The loader's database: reads at least `atLeast` fresh, remembering the least fresh one. */
class FreshReader implements ReadDb {
  position = FRESHEST;
  constructor(
    private readonly database: Database,
    private readonly atLeast: bigint,
  ) {}

  async read<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    const { rows, position } = await this.database.readFresh<R>(this.atLeast, sql, params);
    if (position < this.position) this.position = position;
    return rows;
  }
}

export class TwoTierCache implements CacheTier {
  readonly m: CacheMetrics;
  /** The request counters, bound to their labels once (the hot path). */
  private readonly c;
  /** L1 hits of the fast path, not yet added to the counter (a plain increment is cheaper). */
  private fastHits = 0;
  private readonly l1: L1Cache;
  private readonly cmd: RedisConnection;
  private readonly sub: RedisConnection;
  private readonly o: Required<Omit<TwoTierCacheOptions, 'filters'>> & {
    filters: Record<string, MemberSource>;
  };
  private readonly channel: string;
  private readonly flights = new Map<string, Promise<unknown>>();
  private readonly refreshing = new Set<string>();
  private readonly renewing = new Set<string>();
  /** An L1 copy read within this long of running out is renewed from Redis (the last tenth of its life). */
  private readonly renewWithinMs: number;
  /** Counts invalidations this process learns of: an L1 fill that straddles one of its key is dropped. */
  private invalidationSeq = 0;
  /** Seq of the last L1 flush (outage, new generation): fills read before it are dropped. */
  private flushSeq = 0;
  /** Recently invalidated keys and the seq of their invalidation (pruned by age and count). */
  private readonly recent = new Map<string, { seq: number; at: number }>();
  /** The generation this process's L1 belongs to. */
  private gen = '';
  private cmdUp = false;
  private subUp = false;
  /** Invalidations or filter members that could not reach Redis: a new generation is due. */
  private lost = false;
  private readonly building = new Set<string>();
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
      filters: opts.filters ?? {},
    };
    this.channel = `${this.o.prefix}invalidate`;
    this.renewWithinMs = this.o.l1TtlMs / 10;
    this.m = createCacheMetrics(opts.metrics);
    const req = this.m.requests;
    this.c = {
      l1Hit: req.labels({ tier: 'l1', result: 'hit' }),
      l1Miss: req.labels({ tier: 'l1', result: 'miss' }),
      redisHit: req.labels({ tier: 'redis', result: 'hit' }),
      redisMiss: req.labels({ tier: 'redis', result: 'miss' }),
    };
    opts.metrics.beforeCacheCollect(() => {
      if (this.fastHits > 0) this.c.l1Hit.inc(this.fastHits);
      this.fastHits = 0;
    });
    this.l1 = new L1Cache(this.o.l1Bytes, (n) => this.m.evictions.inc(n));
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
  }

  async start(): Promise<void> {
    this.cmd.connect();
    this.sub.connect();
    await Promise.all([this.cmd.waitReady(3000), this.sub.waitReady(3000)]);
    try {
      this.seeGeneration((await this.cmd.client.get(`${this.o.prefix}gen`)) ?? '0');
    } catch {
      // not reachable yet: the first lookup tells
    }
    // A stopped Redis keeps its sockets open and sends nothing, so a silent subscriber looks
    // healthy; a regular PING on the command connection notices (its deadline closes it).
    this.heartbeat = setInterval(() => {
      if (!this.cmdUp) return;
      this.cmd.client.ping().catch(() => undefined);
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

  /**
   * Runs one of the scripts by its SHA1 (EVALSHA: the source is not sent every time), loading
   * it on first use or after Redis has forgotten it (a restart: NOSCRIPT).
   */
  private async script(source: string, ...args: (string | number)[]): Promise<unknown> {
    let sha = SHAS.get(source);
    if (!sha) SHAS.set(source, (sha = createHash('sha1').update(source).digest('hex')));
    try {
      return await this.cmd.client.evalsha(sha, 0, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.cmd.client.eval(source, 0, ...args);
    }
  }

  /** L1 may serve only while both connections are up (else invalidations could be missed). */
  get l1Usable(): boolean {
    return this.cmdUp && this.subUp && !this.closed;
  }

  async getOrLoad<V>(
    key: string,
    loader: Loader<V>,
    options: CacheOptions,
    skipL1: boolean,
  ): Promise<V | null> {
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
      return this.singleFlight(`db:${key}`, () => this.loadOnly(loader, 0n));
    }
    return this.singleFlight(key, () => this.fetch(key, loader, options));
  }

  private singleFlight<V>(key: string, fn: () => Promise<V | null>): Promise<V | null> {
    const running = this.flights.get(key) as Promise<V | null> | undefined;
    if (running) return running;
    const p = fn().finally(() => this.flights.delete(key));
    this.flights.set(key, p);
    return p;
  }

  /** Redis, then (holding the lease) the database; or wait for the lease holder's fill. */
  private async fetch<V>(key: string, loader: Loader<V>, options: CacheOptions): Promise<V | null> {
    const token = nextToken();
    const filter = options.filter;
    const positions = filter ? filterPositions(filter.member) : [];
    const started = Date.now();
    let polls = 0;
    let tomb = 0n;
    for (;;) {
      const seq = this.invalidationSeq;
      let r: Lookup;
      try {
        r = (await this.script(
          LOOKUP,
          this.o.prefix,
          key,
          filter?.name ?? '',
          token,
          String(this.o.leaseMs),
          String(positions.length),
          ...positions.map(String),
        )) as Lookup;
      } catch {
        this.m.bypasses.inc({ reason: 'error' });
        return this.loadOnly(loader, tomb);
      }
      const [gen, status, payload, filterState] = r;
      this.seeGeneration(gen);
      if (filter && filterState === 'building') this.buildFilter(filter.name, gen);
      if (status === 'hit') {
        this.c.redisHit.inc();
        const stored = JSON.parse(payload) as Stored;
        this.keepL1(key, stored.v, payload.length, stored.r, seq, gen);
        if (stored.r <= Date.now()) this.refresh(key, loader, options);
        return stored.v as V | null;
      }
      tomb = parsePosition(payload);
      if (status === 'absent') {
        this.c.redisHit.inc();
        this.m.filterRejections.inc();
        const ttl = options.negativeTtlMs ?? this.o.negativeTtlMs;
        this.keepL1(key, null, 4, Date.now() + ttl, seq, gen);
        return null;
      }
      // A miss is a lookup that ends in a load; one that waits for another's fill and gets
      // it counts as a hit, so misses count database loads.
      if (status === 'lease') {
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
      result = (await this.script(
        FILL,
        this.o.prefix,
        lease.gen,
        key,
        lease.token,
        positionText(reader.position),
        payload,
        String(Math.round(ttl)),
      )) as string;
    } catch {
      // Redis went away meanwhile: the value is still right for this request.
    }
    this.m.loads.inc({ result });
    if (result === 'stale')
      this.releaseLease(key, lease);
    if (result === 'ok' && !this.keepL1(key, value, payload.length, refreshAt, lease.seq, lease.gen))
      this.l1.delete(key);
    return value;
  }

  /** Gives up a lease early, so the next lookup loads at once instead of waiting it out. */
  private releaseLease(key: string, lease: { gen: string; token: string }): void {
    this.script(RELEASE_LEASE, this.o.prefix, lease.gen, key, lease.token).catch(() => undefined);
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
    const seq = this.invalidationSeq;
    const token = nextToken();
    void (async () => {
      const got = (await this.script(
        REFRESH_LEASE,
        this.o.prefix,
        key,
        token,
        String(this.o.leaseMs),
      )) as string[];
      if (got.length === 0) return; // someone else refreshes it
      await this.loadAndFill(key, loader, options, {
        gen: got[0]!,
        token,
        tomb: parsePosition(got[1]!),
        seq,
      });
    })()
      .catch(() => undefined)
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
    const seq = this.invalidationSeq;
    void (async () => {
      const [gen, payload] = (await this.script(PEEK_VALUE, this.o.prefix, key)) as [string, string];
      this.seeGeneration(gen);
      if (payload === '') return;
      const stored = JSON.parse(payload) as Stored;
      if (this.keepL1(key, stored.v, payload.length, stored.r, seq, gen)) this.m.renewals.inc();
    })()
      .catch(() => undefined)
      .finally(() => this.renewing.delete(key));
  }

  /**
   * Keeps a value in L1 unless an invalidation of its key (or a flush) came in since it was
   * read: the message may overtake the reply, so the value could be the one invalidated.
   */
  private keepL1(
    key: string,
    value: unknown,
    size: number,
    refreshAt: number,
    seq: number,
    gen: string,
  ): boolean {
    if (!this.l1Usable || gen !== this.gen || this.flushSeq > seq) return false;
    const inv = this.recent.get(key);
    if (inv && inv.seq > seq) return false;
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
    let receivers: number;
    const id = nextToken();
    const started = performance.now();
    try {
      const position = await this.o.database.commitPosition();
      receivers = Number(
        await this.script(INVALIDATE, this.o.prefix, key, positionText(position), String(this.o.tombstoneMs), this.channel, String(Date.now()), id),
      );
    } catch {
      this.lost = true; // a new generation once Redis is back (recover)
      return;
    }
    // Wait (bounded) until every web server has dropped its L1 copy, so that once the write
    // has answered no server serves the old value from memory: nobody can see the new
    // value and then the old one.
    const ackKey = `${this.o.prefix}ack:${id}`;
    for (let waited = 0; ; waited++) {
      let acks = 0;
      try {
        acks = Number(await this.cmd.client.get(ackKey));
      } catch {
        break;
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
      await this.script(
        ADD_MEMBER,
        this.o.prefix,
        filter,
        String(positions.length),
        ...positions.map(String),
      );
    } catch {
      this.lost = true;
    }
  }

  private onMessage(message: string): void {
    if (message.startsWith('k ')) {
      // k <gen> <epoch ms> <id> <key>
      const a = message.indexOf(' ', 2);
      const b = message.indexOf(' ', a + 1);
      const c = message.indexOf(' ', b + 1);
      const sent = Number(message.slice(a + 1, b));
      this.dropKey(message.slice(c + 1));
      this.script(ACK, this.o.prefix, message.slice(b + 1, c)).catch(() => undefined);
      this.m.invalidations.inc({ source: 'received' });
      if (Number.isFinite(sent)) this.m.invalidationDelay.observe(Math.max(0, Date.now() - sent) / 1000);
    } else if (message.startsWith('g ')) {
      this.seeGeneration(message.slice(2));
    }
  }

  private dropKey(key: string): void {
    const seq = ++this.invalidationSeq;
    const now = Date.now();
    this.recent.delete(key);
    this.recent.set(key, { seq, at: now });
    // A fill in flight lasts at most a lease; older entries can go.
    for (const [k, v] of this.recent) {
      if (this.recent.size <= RECENT_MAX && now - v.at < this.o.leaseMs + 1000) break;
      this.recent.delete(k);
      if (this.flushSeq < v.seq) this.flushSeq = v.seq; // forgotten: treat as a flush
    }
    if (this.l1.delete(key)) this.m.l1Bytes.set(this.l1.bytes);
  }

  private dropL1(): void {
    this.flushSeq = ++this.invalidationSeq;
    this.recent.clear();
    this.l1.clear();
    this.m.l1Bytes.set(0);
  }

  private seeGeneration(gen: string): void {
    if (gen === this.gen) return;
    this.gen = gen;
    this.dropL1();
    // Build the new generation's filters now, not on its first lookups: their reads then
    // come at start (or just after a new generation), not in the middle of a stampede.
    for (const name of Object.keys(this.o.filters)) this.buildFilter(name, gen);
  }

  private async subscribe(): Promise<void> {
    try {
      await this.sub.client.subscribe(this.channel);
      this.dropL1(); // messages sent while it was away are lost
      this.subUp = true;
    } catch {
      // the connection went away again; its next 'ready' subscribes again
    }
  }

  /** Back after an outage: if anything could not be delivered, drop the whole cache. */
  private async recover(): Promise<void> {
    if (!this.lost) return;
    try {
      await this.script(BUMP_GENERATION, this.o.prefix, this.channel);
      this.lost = false;
      this.m.invalidations.inc({ source: 'generation' });
    } catch {
      // down again: the next 'ready' tries again
    }
  }

  /** Fills a set's membership filter for this generation (one process does it, under a lock). */
  private buildFilter(name: string, gen: string): void {
    const source = this.o.filters[name];
    const id = `${gen}:${name}`;
    if (!source || this.building.has(id)) return;
    this.building.add(id);
    const lock = `${this.o.prefix}${gen}:f:${name}:lock`;
    const bitmap = `${this.o.prefix}${gen}:f:${name}`;
    void (async () => {
      if ((await this.cmd.client.exists(bitmap, `${bitmap}:ready`)) === 2) return; // built already
      const got = await this.cmd.client.set(lock, '1', 'PX', 120_000, 'NX');
      if (got !== 'OK') {
        // Another process builds it; look again later.
        setTimeout(() => this.building.delete(id), 5_000).unref();
        return;
      }
      // Every member committed before now: at least the primary's current position.
      const reader = new FreshReader(this.o.database, await this.o.database.commitPosition());
      let after: string | undefined;
      for (;;) {
        const page = await source(reader, after, FILTER_PAGE);
        if (page.length === 0) break;
        // Small batches: the requests' commands share this connection and its deadline.
        for (let i = 0; i < page.length; i += FILTER_BATCH) {
          const pipe = this.cmd.client.pipeline();
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
      await this.cmd.client.setbit(bitmap, 0, 1);
      await this.script(FILTER_READY, this.o.prefix, gen, name);
      await this.cmd.client.del(lock);
    })().catch(() => {
      setTimeout(() => this.building.delete(id), 5_000).unref();
    });
  }
}

class TwoTierRequestCache implements RequestCache {
  constructor(
    private readonly tier: TwoTierCache,
    private readonly req: FastifyRequest,
    private readonly reply: FastifyReply,
  ) {}

  getOrLoad<V>(key: string, loader: Loader<V>, options: CacheOptions = {}): Promise<V | null> {
    return this.tier.getOrLoad(key, loader, options, this.recentWriter());
  }

  async invalidate(key: string): Promise<void> {
    await this.tier.invalidate(key);
    // This caller's next requests may land on a server whose L1 has not heard yet.
    const until = Date.now() + CACHE_DEFAULTS.freshMs;
    this.reply.header(
      'set-cookie',
      serializeCookie(FRESH_COOKIE, String(until), {
        maxAgeSeconds: Math.ceil(CACHE_DEFAULTS.freshMs / 1000),
        sameSite: 'Lax',
        secure: this.req.protocol === 'https',
      }),
    );
  }

  addMember(filter: string, member: string): Promise<void> {
    return this.tier.addMember(filter, member);
  }

  private recentWriter(): boolean {
    const header = this.req.headers.cookie;
    return header !== undefined && recentWriter(header);
  }
}

/** Whether the Cookie header has a `ladder_fresh` still valid: the caller wrote within 2 s. */
function recentWriter(cookieHeader: string): boolean {
  if (!cookieHeader.includes(FRESH_COOKIE)) return false;
  const until = Number(parseCookies(cookieHeader).get(FRESH_COOKIE));
  // A forged far-future value only makes that client skip L1, never a wrong answer.
  return Number.isFinite(until) && until > Date.now();
}

/** ±10%, so that keys filled together do not all expire together. */
function jitter(ms: number): number {
  return ms * (0.9 + Math.random() * 0.2);
}
