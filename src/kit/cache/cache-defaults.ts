// The two-tier cache's settings, in one commented table (overridable per TwoTierCache).

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
  /**
   * Every key and the invalidation channel start with this. The braces are a Redis Cluster
   * hash tag: every key of the cache hashes to one slot, so that a script may touch several
   * (cache-keys.ts).
   */
  prefix: '{lc}:',
} as const;
