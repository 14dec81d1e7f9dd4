// What the app's own process says about stalls during a phase: its event-loop delay
// (prom-client's monitorEventLoopDelay histogram, which every scrape of /metrics resets, so
// a scrape before the phase starts a fresh one) and its garbage-collection pauses by kind
// (nodejs_gc_duration_seconds, cumulative: the difference over the phase). Read from the
// app's /metrics before and after the phase; references export none, so they get none.

export interface StallReport {
  /** Event-loop delay over the phase (warm-up included), beyond the 10 ms sampling interval, ms. */
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  /** GC pause time over the phase, by kind (minor, major, incremental, weakcb), ms. */
  gcMs: Record<string, number>;
  /** Major (mark-compact) collections over the phase. */
  majorGcs: number;
  /** Click-count statements' clicks written over the phase (ladder_clicks_flushed_total). */
  clicksFlushed: number;
}

type Samples = Map<string, number>;

/**
 * prom-client samples the event loop with a 10 ms timer (its default, which the kit keeps)
 * and Node's histogram records each whole interval between two ticks, so an idle loop reads
 * about 10 ms: the delay is what lies beyond it.
 */
const LOOP_SAMPLING_MS = 10;
const beyondSampling = (seconds: number | undefined) => (seconds === undefined ? NaN : Math.max(0, seconds * 1000 - LOOP_SAMPLING_MS));

async function scrape(url: string): Promise<Samples> {
  const res = await fetch(new URL('/metrics', url), { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${url}/metrics answered ${res.status}`);
  const out: Samples = new Map();
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-zA-Z0-9_:]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Starts watching the server at `url`; `finish()` after the phase says what it saw. */
export async function watchStalls(url: string): Promise<{ finish(): Promise<StallReport> }> {
  const before = await scrape(url);
  return {
    async finish() {
      const after = await scrape(url);
      const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
      const gcMs: Record<string, number> = {};
      let majorGcs = 0;
      for (const key of after.keys()) {
        const m = /^nodejs_gc_duration_seconds_(sum|count)\{kind="([a-z]+)"\}$/.exec(key);
        if (!m) continue;
        if (m[1] === 'sum') gcMs[m[2]!] = delta(key) * 1000;
        else if (m[2] === 'major') majorGcs = delta(key);
      }
      return {
        eventLoopP99Ms: beyondSampling(after.get('nodejs_eventloop_lag_p99_seconds')),
        eventLoopMaxMs: beyondSampling(after.get('nodejs_eventloop_lag_max_seconds')),
        gcMs,
        majorGcs,
        clicksFlushed: delta('ladder_clicks_flushed_total'),
      };
    },
  };
}

/** The report's figures for one server's stalls. */
export function stallFigures(name: string, s: StallReport, seconds: number): Record<string, number> {
  const gcTotal = Object.values(s.gcMs).reduce((a, b) => a + b, 0);
  return {
    [`${name}, fixed rate: event-loop delay p99, ms`]: s.eventLoopP99Ms,
    [`${name}, fixed rate: event-loop delay max, ms`]: s.eventLoopMaxMs,
    [`${name}, fixed rate: GC pauses, ms per second`]: gcTotal / seconds,
    [`${name}, fixed rate: major GCs`]: s.majorGcs,
    [`${name}, fixed rate: major GC pauses, ms`]: s.gcMs.major ?? 0,
  };
}
