// Per-key fixed-window rate limits behind a store interface: in the process at rung 1,
// in Redis from rung 7 so that every web server shares the same counts.

export interface RateLimitStore {
  /** Counts one hit for key in the current window; returns the count and ms until reset. */
  hit(key: string, windowMs: number): Promise<{ count: number; resetMs: number }>;
}

export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  constructor(private readonly maxKeys = 100_000) {}

  async hit(key: string, windowMs: number): Promise<{ count: number; resetMs: number }> {
    const now = Date.now();
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) {
      if (this.windows.size >= this.maxKeys) this.sweep(now);
      w = { count: 0, resetAt: now + windowMs };
      this.windows.set(key, w);
    }
    w.count += 1;
    return { count: w.count, resetMs: w.resetAt - now };
  }

  private sweep(now: number): void {
    for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
    // Still full (an address flood): forget the oldest windows rather than grow without bound.
    for (const k of this.windows.keys()) {
      if (this.windows.size < this.maxKeys) break;
      this.windows.delete(k);
    }
  }
}

export interface RateLimit {
  limit: number;
  windowMs: number;
}

/** Parses `name=limit/seconds,...` (LADDER_RATE_LIMITS) over the defaults. */
export function parseRateLimits(spec: string | undefined, defaults: Record<string, RateLimit>): Record<string, RateLimit> {
  const out = { ...defaults };
  if (!spec) return out;
  for (const part of spec.split(',')) {
    const m = /^\s*([A-Za-z]+)=(\d+)\/(\d+)s?\s*$/.exec(part);
    if (!m || !(m[1]! in defaults)) {
      throw new Error(
        `LADDER_RATE_LIMITS: cannot read "${part}". Fix: use name=limit/seconds with name in ${Object.keys(defaults).join(', ')}, e.g. login=30/60`,
      );
    }
    out[m[1]!] = { limit: Number(m[2]), windowMs: Number(m[3]) * 1000 };
  }
  return out;
}
