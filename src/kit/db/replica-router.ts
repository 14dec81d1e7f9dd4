// The read/write router of rung 4: the same Database interface as the single primary, so
// the app does not change. Writes and every statement of a transaction go to the primary;
// plain reads go to a replica in rotation, spread across them; the caller's consistency
// token (consistency-token.ts) decides which replicas may serve them.
//
// Why a caller never misses their own write and never sees time go backwards (the
// argument in full, with pictures: docs/consistency.md). Requests of one caller are taken
// one after another; the token travels between them (a cookie, the session).
//
//  1. A write commits on the primary; then, on the same connection, the primary's WAL
//     write position is read. It is at or past the commit, so a replica that has replayed
//     up to it has the write. It becomes the token's `lsn`, and the pin is dropped.
//  2. A read goes to a replica only if the replica's replay position, as last polled, is at
//     or past `lsn`. Replay only moves forward while the server runs, so at the time of
//     the read it is further still: the caller sees their write (read-your-writes).
//  3. What a read on a replica shows may be newer than `lsn`, by an amount nobody measured
//     (asking would cost a query per read). So the caller is pinned to that replica (and to
//     that run of it, `epoch`): later reads on the same replica see the same or newer
//     states. Pins are also what spreads readers across replicas.
//  4. When the pinned replica is out of rotation or has restarted (a restarted standby can
//     briefly show an older state: it recovers from its last restart point), the caller
//     moves through the primary: the read runs there and is followed by a position read on
//     the same connection, which bounds everything they have seen anywhere (the primary is
//     ahead of every replica). That becomes `lsn`, the pin is dropped, and any replica that
//     has reached it may take the next read: monotonic reads.
//  5. A write or a primary read bounds everything seen before it in the same way (step 1's
//     position is taken after the commit, so after every earlier read), so both drop the pin.
//
// When no replica has reached the token: wait up to two poll intervals for one to get there
// (polling at once rather than at the next tick), but only when a replica is close enough
// that it might (its staleness under the wait); otherwise read from the primary at once
// (counted in ladder_db_fallbacks_total).
// Everyone reading without a token gets bounded staleness: a replica in rotation is never
// more than maxLagMs behind (replica-monitor.ts).
//
// The primary is a PgDatabase (writes, transactions, ping: the same code as rung 1); the
// replicas are pools of pool.ts, read through onReplica() below.
import pg from 'pg';
import type { Metrics } from '../metrics/metrics.ts';
import { FRESHEST, type Database, type Db, type ReadDb, type Row, type TokenCarrier, type TxDb } from './database.ts';
import {
  EMPTY_TOKEN,
  decodeToken,
  encodeToken,
  mergeTokens,
  parseLsn,
  samePin,
  type ConsistencyToken,
} from './consistency-token.ts';
import { LadderError } from '../errors.ts';
import type { LeaderTracker } from './leader-tracker.ts';
import { PgDatabase, type PgConnection } from './pg-database.ts';
import { createPool, errorText } from './pool.ts';
import { prepared, statement } from './prepared.ts';
import { EPOCH_SQL, ReplicaMonitor, type MonitorLog, type ReplicaView } from './replica-monitor.ts';

export interface ReplicaRouterOptions {
  primaryUrl: string;
  /** In the launcher's order: the first is replica1. */
  replicaUrls: readonly string[];
  metrics: Metrics;
  shard?: string;
  /** How often replica positions are polled. */
  pollMs: number;
  /** Staleness past which a replica leaves rotation (the bound others' reads get). */
  maxLagMs: number;
  /** A replica read (or connection) taking longer is abandoned and retried on the primary. */
  readTimeoutMs: number;
  /** Connections per pool (the primary's and each replica's). Default POOL_DEFAULTS.max. */
  poolSize?: number;
  log: MonitorLog;
  /**
   * --ha: the nodes' leader, as Patroni says (its nodes are replicaUrls, in the same order).
   * Every node is then a replica candidate (the leader is out of rotation: it is not in
   * recovery), writes follow the leader, and a replica must be on the leader's timeline.
   */
  leader?: LeaderTracker;
}

export type FallbackReason = 'token' | 'switch' | 'no_replica' | 'error';

export type Route =
  | { kind: 'replica'; replica: ReplicaView; pin: boolean }
  | { kind: 'wait' }
  | { kind: 'primary'; reason: FallbackReason };

/**
 * Where a read with this token may run now (steps 2 to 4 above). `pick(n)` chooses among n
 * eligible replicas; `waitMs` is how stale a replica may be and still be waited for.
 */
export function routeRead(
  token: ConsistencyToken,
  replicas: readonly ReplicaView[],
  waitMs: number,
  pick: (n: number, eligible: readonly ReplicaView[]) => number,
): Route {
  if (!replicas.some((r) => r.inRotation)) return { kind: 'primary', reason: 'no_replica' };
  if (token.pin) {
    const r = replicas[token.pin.replica];
    if (!r || !r.inRotation || r.epoch !== token.pin.epoch) return { kind: 'primary', reason: 'switch' };
    if (r.replayLsn >= token.lsn) return { kind: 'replica', replica: r, pin: false };
    return r.stalenessMs <= waitMs ? { kind: 'wait' } : { kind: 'primary', reason: 'token' };
  }
  const eligible = replicas.filter((r) => r.inRotation && r.replayLsn >= token.lsn);
  if (eligible.length > 0) return { kind: 'replica', replica: eligible[pick(eligible.length, eligible)]!, pin: true };
  return replicas.some((r) => r.inRotation && r.stalenessMs <= waitMs)
    ? { kind: 'wait' }
    : { kind: 'primary', reason: 'token' };
}

/**
 * A replica that cannot serve a read now, as opposed to a read that is wrong: no SQLSTATE
 * (connection refused or reset, a timeout), or a server-side reason to try elsewhere
 * (08 connection, 53 resources, 57 shutdown or crash, 40001 cancelled by a recovery conflict).
 */
export function replicaUnavailable(err: unknown): boolean {
  if (!(err instanceof pg.DatabaseError)) return true;
  const code = err.code ?? '';
  return code === '40001' || code.startsWith('08') || code.startsWith('53') || code.startsWith('57');
}

class ReplicaTimeout extends Error {
  constructor(ms: number) {
    super(`no answer from the replica within ${ms} ms`);
    this.name = 'ReplicaTimeout';
  }
}

class ReplicaRestarted extends Error {
  constructor() {
    super('the replica was restarted since it was last polled');
    this.name = 'ReplicaRestarted';
  }
}

const PROBE = { name: 'l_probe', text: 'select pg_current_wal_lsn()::text as lsn' };

export class ReplicaRouter implements Database {
  readonly monitor: ReplicaMonitor;
  readonly shard: string;
  private readonly primary: PgDatabase;
  private readonly pools: pg.Pool[];
  /** Which run of its server each replica connection belongs to (step 4). */
  private readonly epochs = new WeakMap<pg.PoolClient, string>();
  private readonly waitMs: number;
  private next = 0;
  private readonly pick = (n: number) => this.next++ % n;
  /**
   * For batched lookups: one pick per event-loop turn, so that the lookups arriving in a
   * turn (which go out together after it) join one replica's batch instead of splitting
   * into one small batch per replica; successive turns rotate over the replicas. (Sending a
   * turn's lookups to an idle replica instead made batches smaller and reads dearer:
   * 0.38 statements per redirect against 0.29, docs/performance.md.)
   */
  private turnPick: number | undefined;
  private readonly pickPerTurn = (n: number) => {
    if (this.turnPick === undefined) {
      this.turnPick = this.next++;
      setImmediate(() => (this.turnPick = undefined));
    }
    return this.turnPick % n;
  };
  private readonly count;
  /** Per replica: the handle lookups of every caller it may serve batch on (joinBatch). */
  private readonly shared: ReadDb[];
  private readonly names: string[];
  /** --ha: the timeline of the last leader seen, kept while none is known (mid-failover). */
  private leaderTimeline: number | undefined;

  constructor(private readonly opts: ReplicaRouterOptions) {
    this.shard = opts.shard ?? '0';
    const max = opts.poolSize;
    const leader = opts.leader;
    this.primary = new PgDatabase({
      url: opts.primaryUrl,
      max,
      shard: this.shard,
      metrics: opts.metrics,
      log: opts.log,
      ...(leader ? { primary: leader } : {}),
    });
    const names = opts.replicaUrls.map((_, i) => leader?.nodes[i]?.name ?? `replica${i + 1}`);
    this.names = names;
    const swallowed = opts.metrics.backgroundErrors.labels({ component: 'db' });
    this.pools = opts.replicaUrls.map((url, i) =>
      createPool({
        url,
        max,
        // A stopped server accepts TCP but never answers: give up soon and use the primary.
        connectionTimeoutMs: opts.readTimeoutMs,
        onIdleError: (err) => {
          // The monitor notices a replica that is down by itself; this is one dropped connection.
          swallowed.inc();
          opts.log.warn(
            { shard: this.shard, replica: names[i], error: errorText(err) },
            'an idle replica connection failed; the pool opens a new one when needed',
          );
        },
      }),
    );
    this.monitor = new ReplicaMonitor({
      primaryUrl: leader ? () => leader.current() : opts.primaryUrl,
      ...(leader ? { ineligible: (i: number) => this.offTimeline(i) } : {}),
      replicas: opts.replicaUrls.map((url, i) => ({ name: names[i]!, url })),
      pollMs: opts.pollMs,
      maxLagMs: opts.maxLagMs,
      silentMs: Math.max(1000, 5 * opts.pollMs),
      shard: this.shard,
      metrics: opts.metrics,
      log: opts.log,
    });
    this.waitMs = 2 * opts.pollMs;
    this.shared = opts.replicaUrls.map((_, i) => ({
      // One statement per replica at a time: with two replicas a process has as many in
      // flight as the rung 3 primary's handle, so batches grow as large (and a read costs a
      // replica as little) when the replicas are the bottleneck.
      batchesInFlight: 1,
      read: async <R extends Row = Row>(sql: string, params: readonly unknown[] = []) => {
        const rows = await this.onReplica<R>(i, sql, params);
        this.count.reads.replica.inc();
        this.count.perReplica[i]!.inc();
        return rows;
      },
    }));
    const m = opts.metrics;
    const shard = this.shard;
    this.count = {
      // Queries on the primary are counted by the primary PgDatabase (the same series).
      replica: m.dbQueries.labels({ shard, role: 'replica' }),
      // Plain reads by who served them (a replica read that failed and was retried on the
      // primary counts once, as the primary's): ladder_db_reads_total.
      reads: {
        primary: m.dbReads.labels({ shard, role: 'primary' }),
        replica: m.dbReads.labels({ shard, role: 'replica' }),
      },
      fallback: {
        token: m.dbFallbacks.labels({ shard, reason: 'token' }),
        switch: m.dbFallbacks.labels({ shard, reason: 'switch' }),
        no_replica: m.dbFallbacks.labels({ shard, reason: 'no_replica' }),
        error: m.dbFallbacks.labels({ shard, reason: 'error' }),
      },
      perReplica: opts.replicaUrls.map((_, i) => m.replicaReads.labels({ shard, replica: names[i]! })),
      caughtUp: m.replicaWaits.labels({ shard, result: 'caught_up' }),
      lastResort: m.dbFallbacks.labels({ shard, reason: 'no_primary' }),
      timedOut: m.replicaWaits.labels({ shard, result: 'timed_out' }),
    };
  }

  /** Starts polling and waits (bounded) for the first positions, so the first reads need not fall back. */
  async start(): Promise<void> {
    await this.opts.leader?.start();
    await this.monitor.start();
  }

  /**
   * --ha: why node i may not serve reads now although it replays: it is not on the leader's
   * timeline. A replica still on the old timeline after a failover may hold commits past
   * the fork that the new leader never had (asynchronous mode): a caller reading them would
   * see them vanish later. Once it follows the new leader (Patroni rewinds it first if it
   * had gone past the fork) its replay position is on the new timeline, where a token's
   * position means what it says (docs/consistency.md, "Failover"). While no leader is known
   * the last one's timeline is kept: reads go on on the replicas that followed it.
   */
  private offTimeline(i: number): string | undefined {
    const leader = this.opts.leader!;
    this.leaderTimeline = leader.leaderTimeline ?? this.leaderTimeline;
    const mine = leader.timelineOf(i);
    if (this.leaderTimeline === undefined || mine === undefined) return 'timeline not known yet';
    return mine === this.leaderTimeline ? undefined : `on timeline ${mine}, the leader's is ${this.leaderTimeline}`;
  }

  forRequest(carrier?: TokenCarrier): Db {
    return carrier ? new RequestDb(this, carrier) : this;
  }

  // The process-wide handle (background work such as click counting) has no caller to be
  // consistent for: reads go to any replica in rotation, writes to the primary, no token.

  async read<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    return (await this.routedRead<R>(EMPTY_TOKEN, sql, params, false)).rows;
  }

  async write<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    return this.primary.write<R>(sql, params);
  }

  async tx<T>(fn: (tx: TxDb) => Promise<T>): Promise<T> {
    return this.primary.tx(fn);
  }

  async ping(): Promise<boolean> {
    // Ready means the primary answers: replicas come and go without taking a web server out.
    // Under --ha a failover must not take every web server out of the balancer either: reads
    // go on on the replicas, so a replica in rotation is enough.
    if (await this.primary.ping()) return true;
    return this.opts.leader !== undefined && this.monitor.replicas.some((r) => r.inRotation);
  }

  async close(): Promise<void> {
    this.monitor.stop();
    this.opts.leader?.stop();
    await Promise.all([this.primary.close(), ...this.pools.map((p) => p.end())]);
  }

  /** A read for a caller holding `token`; returns the rows and the caller's token after it. */
  async routedRead<R extends Row>(
    token: ConsistencyToken,
    sql: string,
    params: readonly unknown[],
    probe: boolean,
    /** Wait (bounded) for a replica to reach the token; false: go to the primary at once. */
    wait = true,
  ): Promise<{ rows: R[]; token: ConsistencyToken; position: bigint }> {
    const pick = this.pick;
    let route = routeRead(token, this.monitor.replicas, this.waitMs, pick);
    if (route.kind === 'wait' && !wait) route = { kind: 'primary', reason: 'token' };
    if (route.kind === 'wait') {
      const deadline = performance.now() + this.waitMs;
      while (route.kind === 'wait' && performance.now() < deadline) {
        const polled = this.monitor.nextPoll(deadline - performance.now());
        this.monitor.pollNow();
        await polled;
        route = routeRead(token, this.monitor.replicas, this.waitMs, pick);
      }
      (route.kind === 'replica' ? this.count.caughtUp : this.count.timedOut).inc();
    }
    let reason: FallbackReason = route.kind === 'primary' ? route.reason : 'token';
    if (route.kind === 'replica') {
      const r = route.replica;
      // Replay only moves forward: where it was before the read is a lower bound of what the read saw.
      const position = r.replayLsn;
      try {
        const rows = await this.onReplica<R>(r.index, sql, params);
        this.count.reads.replica.inc();
        this.count.perReplica[r.index]!.inc();
        const pinned =
          route.pin && r.epoch !== undefined
            ? { lsn: token.lsn, pin: { replica: r.index, epoch: r.epoch } }
            : token;
        return { rows, token: pinned, position };
      } catch (err) {
        if (!replicaUnavailable(err)) throw err;
        this.monitor.markFailed(r.index, err);
        reason = 'error';
      }
    }
    this.count.fallback[reason].inc();
    this.count.reads.primary.inc();
    if (!this.opts.leader) {
      if (!probe) return { rows: await this.primary.query<R>(sql, params), token, position: FRESHEST };
      const { rows, lsn } = await this.onPrimaryWithProbe<R>(sql, params);
      return { rows, token: { lsn: lsn > token.lsn ? lsn : token.lsn, pin: undefined }, position: FRESHEST };
    }
    // --ha: a read never waits for a leader. With none (a failover), or one that fails, it
    // goes to any node that answers.
    try {
      if (!probe) return { rows: await this.primary.query<R>(sql, params, 0), token, position: FRESHEST };
      const { rows, lsn } = await this.onPrimaryWithProbe<R>(sql, params, 0);
      return { rows, token: { lsn: lsn > token.lsn ? lsn : token.lsn, pin: undefined }, position: FRESHEST };
    } catch (err) {
      if (!(err instanceof LadderError) && !replicaUnavailable(err)) throw err;
      return { rows: await this.onAnyNode<R>(sql, params, err), token, position: 0n };
    }
  }

  /**
   * --ha, mid-failover: a read on the first node that answers, whatever its position. The
   * caller's token is kept as it was (not advanced): their next read is routed by it again.
   * Availability over read-your-writes for the seconds without a leader (docs/consistency.md).
   */
  private async onAnyNode<R extends Row>(sql: string, params: readonly unknown[], first: unknown): Promise<R[]> {
    this.count.lastResort.inc();
    let last = first;
    for (let k = 0; k < this.pools.length; k++) {
      const i = (this.next++ + k) % this.pools.length;
      try {
        const rows = (await timed(this.pools[i]!.query<R>(prepared(sql, params)), this.opts.readTimeoutMs, () => undefined)).rows;
        this.count.replica.inc();
        return rows;
      } catch (err) {
        if (!replicaUnavailable(err)) throw err;
        last = err;
      }
    }
    throw last;
  }

  /**
   * Where a batched lookup of a caller holding `token` may join other callers' (steps 2 and
   * 3 without the wait): the shared handle of a replica that satisfies the token now, and
   * the caller's token after reading there. Undefined when the read must wait or go to the
   * primary: the caller then reads on its own, through routedRead.
   */
  batchRoute(token: ConsistencyToken): { index: number; shared: ReadDb; token: ConsistencyToken } | undefined {
    const route = routeRead(token, this.monitor.replicas, this.waitMs, this.pickPerTurn);
    if (route.kind !== 'replica') return undefined;
    const r = route.replica;
    if (!route.pin) return { index: r.index, shared: this.shared[r.index]!, token };
    if (r.epoch === undefined) return undefined;
    return { index: r.index, shared: this.shared[r.index]!, token: { lsn: token.lsn, pin: { replica: r.index, epoch: r.epoch } } };
  }

  /** A shared replica read failed for want of the replica: out of rotation until it answers again. */
  replicaFailed(index: number, err: unknown): void {
    this.monitor.markFailed(index, err);
  }

  async readFresh<R extends Row = Row>(atLeast: bigint, sql: string, params: readonly unknown[] = []): Promise<{ rows: R[]; position: bigint }> {
    // A cache fill must not wait: it serves every reader of the key, and the primary has it.
    const { rows, position } = await this.routedRead<R>({ lsn: atLeast, pin: undefined }, sql, params, false, false);
    return { rows, position };
  }

  async commitPosition(): Promise<bigint> {
    return this.primary.connection(probeLsn);
  }

  /** A write on the primary, followed by its WAL position (step 1). */
  async probedWrite<R extends Row>(
    sql: string,
    params: readonly unknown[],
  ): Promise<{ rows: R[]; lsn: bigint }> {
    return this.onPrimaryWithProbe<R>(sql, params);
  }

  /** A transaction on the primary; with `probe`, the WAL position after its commit. */
  async primaryTx<T>(fn: (tx: TxDb) => Promise<T>, probe: boolean): Promise<{ result: T; lsn: bigint }> {
    const { result, after } = await this.primary.transaction(fn, probe ? probeLsn : async () => 0n);
    return { result, lsn: after };
  }

  private async onPrimaryWithProbe<R extends Row>(
    sql: string,
    params: readonly unknown[],
    waitMs?: number,
  ): Promise<{ rows: R[]; lsn: bigint }> {
    return this.primary.connection(async (c) => {
      const rows = await c.query<R>(sql, params);
      return { rows, lsn: await probeLsn(c) };
    }, waitMs);
  }

  /**
   * Runs a read on a replica, on a connection to the same run of the server the monitor
   * last polled (a restart in between is caught here, step 4), within the read timeout.
   */
  private async onReplica<R extends Row>(
    index: number,
    sql: string,
    params: readonly unknown[],
  ): Promise<R[]> {
    const view = this.monitor.replicas[index]!;
    const client = await this.pools[index]!.connect();
    let released = false;
    const release = (err?: Error) => {
      if (released) return;
      released = true;
      client.release(err); // with an error the pool closes the connection instead of reusing it
    };
    const ms = this.opts.readTimeoutMs;
    try {
      let epoch = this.epochs.get(client);
      if (epoch === undefined) {
        const row = (
          await timed(client.query<{ epoch: string }>(statement({ name: 'l_epoch', text: EPOCH_SQL })), ms, release)
        ).rows[0];
        epoch = BigInt(row?.epoch ?? '0').toString(36);
        this.epochs.set(client, epoch);
      }
      if (epoch !== view.epoch) throw new ReplicaRestarted();
      this.count.replica.inc();
      const rows = (await timed(client.query<R>(prepared(sql, params)), ms, release)).rows;
      release();
      return rows;
    } catch (err) {
      // A statement that failed on a healthy connection leaves it usable.
      release(err instanceof pg.DatabaseError || err instanceof ReplicaRestarted ? undefined : toError(err));
      throw err;
    }
  }
}

/** `req.db` at rung 4: the router, bound to one caller's token. */
class RequestDb implements Db {
  /** The caller's token as this request has advanced it. */
  private own: ConsistencyToken | undefined;

  constructor(
    private readonly router: ReplicaRouter,
    private readonly carrier: TokenCarrier,
  ) {}

  async read<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    const before = this.current();
    const { rows, token } = await this.router.routedRead<R>(before, sql, params, true);
    await this.remember(before, token, false);
    return rows;
  }

  async joinBatch<T>(lookup: (shared: ReadDb) => Promise<T>): Promise<T> {
    const before = this.current();
    const route = this.router.batchRoute(before);
    if (route) {
      try {
        const out = await lookup(route.shared);
        // Pinned only once the read is done, where it was done (a failure below pins nothing).
        await this.remember(before, route.token, false);
        return out;
      } catch (err) {
        if (!replicaUnavailable(err)) throw err;
        this.router.replicaFailed(route.index, err);
      }
    }
    return lookup(this); // waits for a replica, or the primary, read by read (routedRead)
  }

  async write<R extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    const before = this.current();
    const { rows, lsn } = await this.router.probedWrite<R>(sql, params);
    await this.remember(before, { lsn: lsn > before.lsn ? lsn : before.lsn, pin: undefined }, true);
    return rows;
  }

  async tx<T>(fn: (tx: TxDb) => Promise<T>): Promise<T> {
    const { result, lsn } = await this.router.primaryTx(fn, true);
    const before = this.current();
    await this.remember(before, { lsn: lsn > before.lsn ? lsn : before.lsn, pin: undefined }, true);
    return result;
  }

  /** What the caller brought (cookie, session when loaded), merged with this request's own. */
  private current(): ConsistencyToken {
    const brought = this.carrier.tokens(this.router.shard).map(decodeToken);
    return mergeTokens([this.own, ...brought]);
  }

  private async remember(before: ConsistencyToken, after: ConsistencyToken, durable: boolean): Promise<void> {
    if (after.lsn === before.lsn && samePin(after.pin, before.pin) && !durable) return;
    this.own = after;
    await this.carrier.save(this.router.shard, encodeToken(after), durable);
  }
}

async function probeLsn(c: PgConnection): Promise<bigint> {
  const row = (await c.internal<{ lsn: string }>(PROBE))[0];
  const lsn = parseLsn(row?.lsn);
  if (lsn === undefined) throw new Error(`unexpected WAL position ${String(row?.lsn)}`);
  return lsn;
}

function timed<T>(p: Promise<T>, ms: number, onTimeout: (err: Error) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const err = new ReplicaTimeout(ms);
      onTimeout(err);
      reject(err);
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(toError(e));
      },
    );
  });
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
