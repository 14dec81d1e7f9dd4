// The cache tier's metrics, on the web process's registry. ladder_cache_requests_total is
// the contract's (ARCHITECTURE.md, in metrics.ts); these say what else the tier does.
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Metrics } from '../metrics/metrics.ts';

export interface CacheMetrics {
  requests: Metrics['cacheRequests'];
  /** Loads from the database on a miss (or a refresh), by outcome of the fill. */
  loads: Counter<'result'>;
  invalidations: Counter<'source'>;
  /** Time from a write's invalidation in Redis to this process dropping its L1 copy. */
  invalidationDelay: Histogram;
  /** From a write's invalidation to every web server having dropped its L1 copy (acknowledged). */
  invalidationAck: Histogram;
  /** Invalidations not acknowledged by every web server within the wait (a server stopped or slow). */
  invalidationAckTimeouts: Counter;
  evictions: Counter;
  /** L1 copies renewed from Redis in the background before they ran out. */
  renewals: Counter;
  l1Bytes: Gauge;
  /** Lookups answered "absent" by the membership filter, without the database. */
  filterRejections: Counter;
  /** Reads that skipped the cache because Redis was unreachable. */
  bypasses: Counter<'reason'>;
}

export function createCacheMetrics(m: Metrics): CacheMetrics {
  const registers = [m.registry];
  return {
    requests: m.cacheRequests,
    loads: new Counter({
      name: 'ladder_cache_loads_total',
      help: 'Database loads of the cache, by what became of the fill (ok, stale, lease, gen, unfilled).',
      labelNames: ['result'],
      registers,
    }),
    invalidations: new Counter({
      name: 'ladder_cache_invalidations_total',
      help: 'Cache invalidations: sent after a write (sent), received from Redis pub/sub (received), lost and replaced by a new generation (generation).',
      labelNames: ['source'],
      registers,
    }),
    invalidationDelay: new Histogram({
      name: 'ladder_cache_invalidation_delay_seconds',
      help: 'From a write invalidating a key in Redis to this process dropping its L1 copy.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    invalidationAck: new Histogram({
      name: 'ladder_cache_invalidation_ack_seconds',
      help: "From a write's invalidation to every web server having acknowledged dropping its L1 copy (the write waits for it).",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    }),
    invalidationAckTimeouts: new Counter({
      name: 'ladder_cache_invalidation_ack_timeouts_total',
      help: 'Invalidations that not every web server acknowledged within 100 ms (one stopped or overloaded).',
      registers,
    }),
    evictions: new Counter({ name: 'ladder_cache_evictions_total', help: 'L1 entries evicted to stay within its byte bound.', registers }),
    renewals: new Counter({
      name: 'ladder_cache_l1_renewals_total',
      help: 'L1 copies read in the last tenth of their life and renewed from Redis in the background.',
      registers,
    }),
    l1Bytes: new Gauge({ name: 'ladder_cache_l1_bytes', help: 'Bytes held by the in-process cache (L1).', registers }),
    filterRejections: new Counter({
      name: 'ladder_cache_filter_rejections_total',
      help: 'Lookups of keys the membership filter knows do not exist, answered without the database.',
      registers,
    }),
    bypasses: new Counter({
      name: 'ladder_cache_bypasses_total',
      help: 'Reads that went straight to the database because the cache could not serve them (redis_down, error).',
      labelNames: ['reason'],
      registers,
    }),
  };
}
