// Keeps the primary's WAL position and each replica's replay position fresh by polling
// them every `pollMs` on a connection of its own, so that routing a read costs no query.
// From those it decides which replicas are in rotation: answering, still a standby, and
// stale by no more than `maxLagMs` (the bound everyone who reads from a replica gets).
// A replica that leaves rotation comes back by itself on the first poll that finds it
// healthy. Transitions are logged once each; "every replica out" is logged once too.
import pg from 'pg';
import type { Metrics } from '../metrics/metrics.ts';
import { parseLsn } from './consistency-token.ts';
import { errorText } from './pool.ts';
import { statement } from './prepared.ts';
import { WalHistory } from './wal-history.ts';

/** The server's start time in microseconds: a replica restarted is a different replica. */
export const EPOCH_SQL =
  'select (extract(epoch from pg_postmaster_start_time()) * 1000000)::bigint::text as epoch';
const PRIMARY_SQL = 'select pg_current_wal_lsn()::text as lsn';
const REPLICA_SQL =
  'select pg_last_wal_replay_lsn()::text as lsn, pg_is_in_recovery() as standby, ' +
  '(extract(epoch from pg_postmaster_start_time()) * 1000000)::bigint::text as epoch';

/** What the router reads about a replica; changed only by the monitor. */
export interface ReplicaView {
  readonly name: string;
  readonly index: number;
  readonly inRotation: boolean;
  /** Replayed at least this far (as of the last poll). */
  readonly replayLsn: bigint;
  /** Base 36 of the server's start time; undefined before the first answer. */
  readonly epoch: string | undefined;
  /** Upper bound on its staleness now, in ms (Infinity: unknown or beyond the history). */
  readonly stalenessMs: number;
}

export interface MonitorLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ReplicaMonitorOptions {
  /** The primary's URL; a function under --ha, where it moves (undefined while none leads). */
  primaryUrl: string | (() => string | undefined);
  /**
   * --ha: why replica i may not serve reads even though it answers, replays and is fresh
   * (it is not on the leader's timeline), or undefined when it may.
   */
  ineligible?: (index: number) => string | undefined;
  replicas: readonly { name: string; url: string }[];
  pollMs: number;
  maxLagMs: number;
  /** A node that has not answered for this long is out (a stopped server keeps its port open). */
  silentMs: number;
  shard: string;
  metrics: Metrics;
  log: MonitorLog;
}

class Replica implements ReplicaView {
  inRotation = false;
  replayLsn = 0n;
  epoch: string | undefined;
  stalenessMs = Infinity;
  standby = false;
  lastOkAt = -Infinity;
  failedAt = -Infinity;
  lastError = '';
  reason = 'not polled yet';
  wasInRotation = false;
  constructor(
    readonly name: string,
    readonly index: number,
    readonly poller: Poller,
  ) {}
}

/** One connection to one node for polls, remade after any failure or timeout. */
class Poller {
  private client: pg.Client | undefined;
  private clientUrl: string | undefined;
  inFlight = false;

  constructor(
    private readonly url: string | (() => string | undefined),
    private readonly timeoutMs: number,
    /** Counts errors handled here without reaching a caller (ladder_background_errors_total). */
    private readonly countError: () => void,
  ) {}

  async query<R extends pg.QueryResultRow>(sql: string): Promise<R> {
    try {
      const url = typeof this.url === 'string' ? this.url : this.url();
      if (url === undefined) throw new Error('no primary is known');
      if (this.client && this.clientUrl !== url) this.drop(); // the primary moved (--ha)
      if (!this.client) {
        this.clientUrl = url;
        const c = new pg.Client({
          connectionString: url,
          connectionTimeoutMillis: this.timeoutMs,
          query_timeout: this.timeoutMs,
          application_name: 'ladder-monitor',
        });
        // A dropped connection also fails the next query, which marks the node down (and that
        // is logged once per transition); the event is counted, and a listener is required.
        c.on('error', this.countError);
        this.client = c;
        await c.connect();
      }
      const res = await this.client.query<R>(statement({ name: sql === REPLICA_SQL ? 'l_mon_r' : 'l_mon_p', text: sql }));
      if (!res.rows[0]) throw new Error('no row');
      return res.rows[0];
    } catch (err) {
      this.drop();
      throw err;
    }
  }

  drop(): void {
    const c = this.client;
    this.client = undefined;
    // end() destroys the socket when a query is still outstanding (a stopped server).
    // Its failure changes nothing: the socket is gone either way.
    void c?.end().catch(this.countError);
  }
}

export class ReplicaMonitor {
  readonly replicas: readonly ReplicaView[];
  private readonly nodes: Replica[];
  private readonly primary: Poller;
  private readonly history: WalHistory;
  private primaryInFlight = false;
  private primaryLastOkAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private waiters: (() => void)[] = [];
  private degraded = false;
  private readonly started = performance.now();
  private readonly swallowed;

  constructor(private readonly opts: ReplicaMonitorOptions) {
    const timeout = Math.max(opts.silentMs, 250);
    this.swallowed = opts.metrics.backgroundErrors.labels({ component: 'replica-monitor' });
    const countError = () => this.swallowed.inc();
    this.primary = new Poller(opts.primaryUrl, timeout, countError);
    this.nodes = opts.replicas.map((r, i) => new Replica(r.name, i, new Poller(r.url, timeout, countError)));
    this.replicas = this.nodes;
    // Kept twice the lag bound, so a replica past the bound still gets a finite figure.
    this.history = new WalHistory(Math.max(2 * opts.maxLagMs, 10 * opts.pollMs));
    for (const r of this.nodes) this.gauges(r);
  }

  /** Starts polling; resolves after the first round has answered (or `waitMs`). */
  async start(waitMs = 2000): Promise<void> {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.opts.pollMs);
    this.timer.unref();
    const deadline = performance.now() + waitMs;
    this.tick();
    while (
      performance.now() < deadline &&
      this.nodes.some((r) => r.lastOkAt === -Infinity && r.failedAt === -Infinity)
    ) {
      await this.nextPoll(deadline - performance.now());
    }
    // One more primary sample taken after the replicas answered lets them in at once.
    this.tick();
    await this.nextPoll(Math.max(0, Math.min(deadline - performance.now(), 4 * this.opts.pollMs)));
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.primary.drop();
    for (const r of this.nodes) r.poller.drop();
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when the next replica poll answers (or after timeoutMs). */
  nextPoll(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      const waiters = this.waiters;
      function done() {
        clearTimeout(timer);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        resolve();
      }
      waiters.push(done);
    });
  }

  /**
   * Polls the replicas now instead of at the next tick: a read waiting for its token asks,
   * so that on a LAN (replay within a millisecond) it waits about a round trip, not half an
   * interval. At most one poll in flight per replica, so a burst of waiters adds nothing.
   */
  pollNow(): void {
    for (const r of this.nodes) this.startReplicaPoll(r);
  }

  /** The router saw a replica fail (connection error, timeout, restarted): out until a poll finds it well. */
  markFailed(index: number, err: unknown): void {
    const r = this.nodes[index];
    if (!r) return;
    r.failedAt = performance.now();
    r.lastError = errorText(err);
    this.evaluate(r, r.failedAt);
  }

  private tick(): void {
    if (!this.primaryInFlight) {
      this.primaryInFlight = true;
      void this.pollPrimary().finally(() => (this.primaryInFlight = false));
    }
    for (const r of this.nodes) this.startReplicaPoll(r);
    // A node whose poll hangs never answers: re-judging on every tick is what notices it.
    const now = performance.now();
    for (const r of this.nodes) this.evaluate(r, now);
  }

  private startReplicaPoll(r: Replica): void {
    if (r.poller.inFlight || !this.timer) return;
    r.poller.inFlight = true;
    void this.pollReplica(r).finally(() => (r.poller.inFlight = false));
  }

  private async pollPrimary(): Promise<void> {
    try {
      const row = await this.primary.query<{ lsn: string }>(PRIMARY_SQL);
      const lsn = parseLsn(row.lsn);
      if (lsn === undefined) throw new Error(`unexpected WAL position ${String(row.lsn)}`);
      const now = performance.now();
      this.history.add(now, lsn);
      this.primaryLastOkAt = now;
    } catch {
      // The primary down is the web servers' problem (writes fail, /readyz says so, and it
      // would be logged here once per poll); replicas keep their last staleness figure
      // meanwhile (see evaluate()). Counted.
      this.swallowed.inc();
    }
  }

  private async pollReplica(r: Replica): Promise<void> {
    try {
      const row = await r.poller.query<{ lsn: string | null; standby: boolean; epoch: string }>(REPLICA_SQL);
      const now = performance.now();
      const epoch = BigInt(row.epoch).toString(36);
      if (r.epoch !== undefined && r.epoch !== epoch) {
        this.opts.log.info({ replica: r.name }, `${r.name} was restarted; readers pinned to it move on`);
      }
      r.epoch = epoch;
      r.standby = row.standby === true;
      r.replayLsn = parseLsn(row.lsn) ?? 0n;
      r.lastOkAt = now;
      this.evaluate(r, now);
    } catch (err) {
      r.failedAt = performance.now();
      r.lastError = errorText(err);
      this.evaluate(r, r.failedAt);
    }
    for (const w of this.waiters.slice()) w();
  }

  private evaluate(r: Replica, now: number): void {
    // Staleness is measured against the primary's history; while the primary itself is not
    // answering, it is measured at the last time the primary was seen, not growing forever.
    const primaryFresh = now - this.primaryLastOkAt <= this.opts.silentMs;
    const at = primaryFresh ? now : this.primaryLastOkAt;
    r.stalenessMs =
      r.lastOkAt === -Infinity || this.history.latestAt === undefined
        ? Infinity
        : this.history.staleness(r.replayLsn, at);
    let reason: string | undefined;
    const notEligible = this.opts.ineligible?.(r.index);
    if (r.failedAt >= r.lastOkAt) reason = `not answering (${r.lastError})`;
    else if (now - r.lastOkAt > this.opts.silentMs) reason = `silent for ${Math.round(now - r.lastOkAt)} ms`;
    else if (!r.standby) reason = 'not in recovery: no longer a replica';
    else if (r.replayLsn === 0n) reason = 'not replaying yet';
    else if (notEligible !== undefined) reason = notEligible;
    else if (r.stalenessMs > this.opts.maxLagMs) {
      reason = `${Number.isFinite(r.stalenessMs) ? `${(r.stalenessMs / 1000).toFixed(1)} s` : 'too far'} behind the primary (bound ${this.opts.maxLagMs / 1000} s)`;
    }
    const inRotation = reason === undefined;
    r.reason = reason ?? 'in rotation';
    if (inRotation !== r.inRotation) {
      r.inRotation = inRotation;
      if (inRotation) {
        this.opts.log.info({ replica: r.name }, `${r.name} in rotation`);
        r.wasInRotation = true;
      } else if (r.wasInRotation) {
        this.opts.log.warn({ replica: r.name, reason }, `${r.name} out of rotation: ${reason}`);
      }
    }
    this.gauges(r);
    this.checkDegraded(now);
  }

  private checkDegraded(now: number): void {
    const none = this.nodes.every((r) => !r.inRotation);
    // At start, replicas are out until their first poll: not an outage unless it lasts.
    const judged = this.nodes.some((r) => r.wasInRotation) || now - this.started > this.opts.silentMs;
    if (none && judged && !this.degraded) {
      this.degraded = true;
      this.opts.log.warn(
        { replicas: this.nodes.map((r) => ({ name: r.name, reason: r.reason })) },
        'every replica is out of rotation: reads go to the primary (degraded)',
      );
    } else if (!none && this.degraded) {
      this.degraded = false;
      this.opts.log.info({}, 'a replica is back in rotation: reads leave the primary again');
    }
  }

  private gauges(r: Replica): void {
    const labels = { shard: this.opts.shard, replica: r.name };
    this.opts.metrics.replicaLag.set(labels, r.stalenessMs / 1000);
    this.opts.metrics.replicaUp.set(labels, r.inRotation ? 1 : 0);
  }
}

