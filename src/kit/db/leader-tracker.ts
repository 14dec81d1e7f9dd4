// Which database node leads now, under Patroni (--ha): each node's REST API is polled
// (GET /primary: 200 only on the node holding the leader key, and not on a leader that was
// frozen past its key's expiry and has not demoted itself yet). The leader is the one node
// whose latest answer, recent enough, was 200; none while the answers disagree or are stale,
// so that a write waits for the new leader instead of going to a dead or deposed one.
// node-postgres has no multi-host connection strings (target_session_attrs), hence this.
//
// It also knows each node's timeline, which is what lets the replica router keep
// read-your-writes across a failover (docs/consistency.md, "Failover").

export interface LeaderTrackerNode {
  name: string;
  /** Patroni's REST API, http://host:port. */
  apiUrl: string;
  /** The node's Postgres, postgres://... (holds a password: never logged). */
  dbUrl: string;
}

export interface LeaderLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface LeaderTrackerOptions {
  nodes: readonly LeaderTrackerNode[];
  /** How often each node's API is asked. */
  pollMs: number;
  /** An answer older than this does not count (a frozen node answers nothing). */
  freshMs: number;
  log: LeaderLog;
}

/** The leader's URL as PgDatabase follows it. */
export interface PrimarySource {
  /** The leader's Postgres URL now; undefined while no node is known to lead. */
  current(): string | undefined;
  /** Resolves with the leader's URL once one is known (at once if one is), or undefined after ms. */
  wait(ms: number): Promise<string | undefined>;
  /** A statement found the leader unusable (refused, read-only): ask every node now. */
  suspect(): void;
}

interface NodeView {
  leader: boolean;
  timeline: number | undefined;
  answeredAt: number;
  inFlight: boolean;
}

export class LeaderTracker implements PrimarySource {
  private readonly views: NodeView[];
  private leaderIndex: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private waiters: (() => void)[] = [];
  private readonly changeListeners: ((leader: number | undefined) => void)[] = [];

  constructor(private readonly opts: LeaderTrackerOptions) {
    this.views = opts.nodes.map(() => ({ leader: false, timeline: undefined, answeredAt: -Infinity, inFlight: false }));
  }

  get nodes(): readonly LeaderTrackerNode[] {
    return this.opts.nodes;
  }

  /** Index of the node that leads, if one is known. */
  get leader(): number | undefined {
    return this.leaderIndex;
  }

  /** The leader's timeline, if a leader is known and has said it. */
  get leaderTimeline(): number | undefined {
    return this.leaderIndex === undefined ? undefined : this.views[this.leaderIndex]!.timeline;
  }

  /** The timeline node i last reported (a replica's is the one it replays). */
  timelineOf(i: number): number | undefined {
    return this.views[i]?.timeline;
  }

  /** Starts polling; resolves once a leader is known or after waitMs. */
  async start(waitMs = 3000): Promise<void> {
    if (this.timer) return;
    this.timer = setInterval(() => this.pollAll(), this.opts.pollMs);
    this.timer.unref();
    this.pollAll();
    await this.wait(waitMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const w of this.waiters.splice(0)) w();
  }

  onChange(listener: (leader: number | undefined) => void): void {
    this.changeListeners.push(listener);
  }

  current(): string | undefined {
    this.judge(performance.now()); // a leader gone silent stops counting now, not at the next answer
    return this.leaderIndex === undefined ? undefined : this.opts.nodes[this.leaderIndex]!.dbUrl;
  }

  wait(ms: number): Promise<string | undefined> {
    const now = this.current();
    if (now !== undefined || ms <= 0) return Promise.resolve(now);
    return new Promise((resolve) => {
      const done = () => {
        const url = this.current();
        if (url === undefined && performance.now() < deadline) return; // not yet: stay a waiter
        clearTimeout(timer);
        const i = this.waiters.indexOf(done);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(url);
      };
      const deadline = performance.now() + ms;
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(done);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(this.current());
      }, ms);
      this.waiters.push(done);
    });
  }

  suspect(): void {
    this.pollAll();
  }

  private pollAll(): void {
    if (!this.timer) return;
    for (let i = 0; i < this.views.length; i++) void this.poll(i);
  }

  private async poll(i: number): Promise<void> {
    const v = this.views[i]!;
    if (v.inFlight) return;
    v.inFlight = true;
    try {
      const res = await fetch(`${this.opts.nodes[i]!.apiUrl}/primary`, { signal: AbortSignal.timeout(this.opts.freshMs) });
      const body = (await res.json()) as { timeline?: unknown };
      v.leader = res.status === 200;
      v.timeline = typeof body.timeline === 'number' ? body.timeline : v.timeline;
      v.answeredAt = performance.now();
    } catch {
      // Not answering (down, frozen, restarting): it cannot lead. Judged below by its silence.
      v.leader = false;
    } finally {
      v.inFlight = false;
    }
    this.judge(performance.now());
    for (const w of this.waiters.slice()) w();
  }

  private judge(now: number): void {
    const leaders: number[] = [];
    for (const [i, v] of this.views.entries()) if (v.leader && now - v.answeredAt <= this.opts.freshMs) leaders.push(i);
    const next = leaders.length === 1 ? leaders[0] : undefined;
    if (next === this.leaderIndex) return;
    const before = this.leaderIndex;
    this.leaderIndex = next;
    if (next === undefined) {
      this.opts.log.warn(
        { was: before === undefined ? null : this.opts.nodes[before]!.name, claimants: leaders.map((i) => this.opts.nodes[i]!.name) },
        'no database node is known to lead: writes wait for the next leader',
      );
    } else {
      this.opts.log.info({ leader: this.opts.nodes[next]!.name, timeline: this.views[next]!.timeline ?? null }, `${this.opts.nodes[next]!.name} leads`);
    }
    for (const l of this.changeListeners) l(next);
  }
}
