// The metrics every web process exports (names are a contract, see ARCHITECTURE.md).
// One registry per server instance, so several servers can live in one test process.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  /**
   * One series of http_request_duration_seconds for a hot path: observed into plain numbers
   * (no label hashing per request) and added to the histogram when it is scraped.
   */
  hotDuration(labels: Record<'method' | 'route' | 'status_code', string>): HotSeries;
  dbQueries: Counter<'shard' | 'role'>;
  /** Plain reads (not writes, not statements of a transaction), by the role that served them. */
  dbReads: Counter<'shard' | 'role'>;
  /** Plain reads each replica served (how evenly rotation spreads them). */
  replicaReads: Counter<'shard' | 'replica'>;
  cacheRequests: Counter<'tier' | 'result'>;
  /** Runs fn before ladder_cache_requests_total is scraped (to add counts kept in plain numbers). */
  beforeCacheCollect(fn: () => void): void;
  replicaLag: Gauge<'shard' | 'replica'>;
  /** 1 while a replica is in rotation (answering, caught up within the lag bound), else 0. */
  replicaUp: Gauge<'shard' | 'replica'>;
  /** Reads that a replica could have served but the primary did, by reason. */
  dbFallbacks: Counter<'shard' | 'reason'>;
  /** Reads that waited for a replica to reach the caller's token, by outcome. */
  replicaWaits: Counter<'shard' | 'result'>;
  clicksBuffered: Gauge;
  /** Where ladder_clicks_buffered is read from when scraped. */
  countBufferedWith(source: () => number): void;
  clicksFlushed: Counter;
  clickFlushFailures: Counter;
  /** 1 while the Redis connection for a role (`state`: sessions and rate limits) is ready. */
  redisUp: Gauge<'role'>;
  rateLimitFallbacks: Counter;
  /**
   * Errors handled without failing a request, by component (cache, db, replica-monitor):
   * best-effort steps and background work whose failure is retried or replaced by a
   * fallback. Counted so that none is dropped unseen.
   */
  backgroundErrors: Counter<'component'>;
}

const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Observations of one histogram series kept in plain numbers: per-bucket counts, sum, count. */
export class HotSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    /** Upper bounds of the buckets, as the histogram it is added to has them. */
    readonly buckets: readonly number[],
  ) {
    this.counts = new Float64Array(buckets.length + 1); // the last is +Inf
  }

  observe(value: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/**
 * One value of a histogram as prom-client's getForPromString lists it: `labels` holds only
 * `le` (buckets), `sharedLabels` the series' labels. The unit test in test/unit/kit.test.ts
 * pins this shape.
 */
type PromStringValue = { value: number; metricName?: string; labels: Record<string, string | number>; sharedLabels?: Record<string, string>; exemplar?: unknown };

/** Adds hot series into a histogram's scraped values: onto its series with the same labels, or as new ones. */
function addHotSeries(name: string, values: PromStringValue[], hot: readonly HotSeries[]): void {
  for (const h of hot) {
    if (h.count === 0) continue;
    const buckets = h.buckets;
    const keys = Object.keys(h.labels);
    const mine = values.filter((v) => v.sharedLabels !== undefined && keys.length === Object.keys(v.sharedLabels).length && keys.every((k) => v.sharedLabels![k] === h.labels[k]));
    const add = (metricName: string, labels: Record<string, string | number>, value: number) => {
      const found = mine.find((v) => v.metricName === metricName && v.labels.le === labels.le);
      if (found) found.value += value;
      else values.push({ value, metricName, labels, sharedLabels: { ...h.labels }, exemplar: null });
    };
    let cumulative = 0;
    for (let i = 0; i <= buckets.length; i++) {
      cumulative += h.counts[i]!;
      add(`${name}_bucket`, { le: i < buckets.length ? buckets[i]! : '+Inf' }, cumulative);
    }
    add(`${name}_sum`, {}, h.sum);
    add(`${name}_count`, {}, h.count);
  }
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const buffered: { source?: () => number } = {};
  const cacheCollectors: (() => void)[] = [];
  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds, by route pattern.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: HTTP_BUCKETS,
    registers,
  });
  const hot: HotSeries[] = [];
  // Both the text exposition and get() read through getForPromString.
  const h = httpDuration as unknown as { getForPromString(): Promise<{ values: PromStringValue[] }> };
  const collected = h.getForPromString.bind(h);
  h.getForPromString = async () => {
    const r = await collected();
    addHotSeries('http_request_duration_seconds', r.values, hot);
    return r;
  };
  return {
    hotDuration: (labels) => {
      const series = new HotSeries(labels, HTTP_BUCKETS);
      hot.push(series);
      return series;
    },
    beforeCacheCollect: (fn) => {
      cacheCollectors.push(fn);
    },
    countBufferedWith: (source) => {
      buffered.source = source;
    },
    registry,
    httpDuration,
    dbQueries: new Counter({
      name: 'ladder_db_queries_total',
      help: 'Database queries sent, by shard and role (primary or replica).',
      labelNames: ['shard', 'role'],
      registers,
    }),
    dbReads: new Counter({
      name: 'ladder_db_reads_total',
      help: 'Plain reads served, by shard and role (primary or replica); writes and transactions are not counted.',
      labelNames: ['shard', 'role'],
      registers,
    }),
    replicaReads: new Counter({
      name: 'ladder_db_replica_reads_total',
      help: 'Plain reads served by each replica, by shard and replica (statements: a batch of lookups is one).',
      labelNames: ['shard', 'replica'],
      registers,
    }),
    cacheRequests: new Counter({
      name: 'ladder_cache_requests_total',
      help: 'Cache lookups by tier (l1, redis) and result (hit, miss).',
      labelNames: ['tier', 'result'],
      registers,
      // Hot-path counts kept in plain numbers are added here, when scraped.
      collect() {
        for (const f of cacheCollectors) f();
      },
    }),
    replicaLag: new Gauge({
      name: 'ladder_replica_lag_seconds',
      help: 'Staleness bound of each replica as last observed: it has every commit older than this, in seconds.',
      labelNames: ['shard', 'replica'],
      registers,
    }),
    replicaUp: new Gauge({
      name: 'ladder_replica_up',
      help: 'Whether a replica is in rotation for reads (1) or not (0): down, restarted, or lagging past the bound.',
      labelNames: ['shard', 'replica'],
      registers,
    }),
    dbFallbacks: new Counter({
      name: 'ladder_db_fallbacks_total',
      help: 'Reads served by the primary instead of a replica, by reason (token, switch, no_replica, error).',
      labelNames: ['shard', 'reason'],
      registers,
    }),
    replicaWaits: new Counter({
      name: 'ladder_db_replica_waits_total',
      help: "Reads that waited for a replica to reach the caller's consistency token, by result (caught_up, timed_out).",
      labelNames: ['shard', 'result'],
      registers,
    }),
    clicksBuffered: new Gauge({
      name: 'ladder_clicks_buffered',
      help: 'Clicks held in this process, not yet written to the database.',
      registers,
      // Read when scraped, not set on every click (the redirect's hot path).
      collect() {
        if (buffered.source) this.set(buffered.source());
      },
    }),
    clicksFlushed: new Counter({
      name: 'ladder_clicks_flushed_total',
      help: 'Clicks written to the database by this process.',
      registers,
    }),
    clickFlushFailures: new Counter({
      name: 'ladder_click_flush_failures_total',
      help: 'Click batches that failed to write and were kept for the next flush.',
      registers,
    }),
    redisUp: new Gauge({
      name: 'ladder_redis_up',
      help: 'Whether the Redis connection of a role is ready (1) or not (0); absent without Redis.',
      labelNames: ['role'],
      registers,
    }),
    rateLimitFallbacks: new Counter({
      name: 'ladder_rate_limit_fallbacks_total',
      help: 'Rate-limit hits counted in this process only, because the shared store was unavailable.',
      registers,
    }),
    backgroundErrors: new Counter({
      name: 'ladder_background_errors_total',
      help: 'Errors handled without failing a request (background work, best-effort steps; retried or replaced by a fallback), by component.',
      labelNames: ['component'],
      registers,
    }),
  };
}
