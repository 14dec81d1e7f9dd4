// Recent positions of the primary's WAL, sampled by the replica monitor, and what they say
// about a replica: a replica that has replayed up to R has every commit the primary had
// made by the last time the primary was seen at a position <= R. So its staleness is at
// most (now - that time). This is a bound, not an estimate from the replica's clock or
// from pg_last_xact_replay_timestamp(), which grows without limit on an idle primary.

export class WalHistory {
  private readonly at: number[] = [];
  private readonly lsn: bigint[] = [];

  /** keepMs: how far back samples are kept; a replica further behind is "beyond" (Infinity). */
  constructor(private readonly keepMs: number) {}

  /** Records the primary at `lsn` at time `at` (ms, monotonic clock). */
  add(at: number, lsn: bigint): void {
    const last = this.lsn.length - 1;
    // Positions only grow; an equal one only moves that position's time forward, which is
    // all staleness() needs (the latest time the primary was still at or below a position).
    if (last >= 0 && lsn <= this.lsn[last]!) {
      this.at[last] = at;
    } else {
      this.at.push(at);
      this.lsn.push(lsn);
    }
    let drop = 0;
    while (drop < this.at.length - 1 && this.at[drop]! < at - this.keepMs) drop++;
    if (drop > 0) {
      this.at.splice(0, drop);
      this.lsn.splice(0, drop);
    }
  }

  /** Time of the newest sample, or undefined before the first. */
  get latestAt(): number | undefined {
    return this.at[this.at.length - 1];
  }

  get latestLsn(): bigint | undefined {
    return this.lsn[this.lsn.length - 1];
  }

  /**
   * Upper bound on the staleness at `now` (ms) of a server that has replayed up to `replay`:
   * now minus the time of the latest sample at or below it. Infinity when every kept
   * sample is above it (it is further behind than the history reaches) or there is none.
   */
  staleness(replay: bigint, now: number): number {
    let lo = 0;
    let hi = this.lsn.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.lsn[mid]! <= replay) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? Infinity : Math.max(0, now - this.at[found]!);
  }
}
