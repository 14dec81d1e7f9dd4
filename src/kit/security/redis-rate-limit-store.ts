// Rate limits in Redis (rung 7): one fixed-window counter per key shared by every web
// server, so a limit of N means N across the whole tier, not N per server. One round trip
// per hit: the script rate-limit-hit.lua counts, starts the window and reads its PTTL
// atomically (run through the kit's script loader, redis/script-loader.ts).
//
// When Redis is unavailable (down, stopped, timing out), a hit is counted in this process
// instead (a MemoryRateLimitStore), and the fallback is counted in a metric; the Redis
// connection logs the outage once. Why neither of the two obvious choices:
// - Failing closed (429 or 503 for every limited route) would refuse signups and logins
//   for as long as Redis is down, on top of what the outage already breaks.
// - Failing open (no limit) would be worse than it looks. Session routes answer 503 while
//   Redis is down, but login checks the password *before* it stores the session: a wrong
//   password is a 401 and a right one a 503, so an unlimited login would be an unlimited
//   password oracle for the length of the outage; and signup writes the account before its
//   session, so it would be an unlimited account-creation endpoint.
// Per-process limits keep both bounded (at worst N per web server instead of N overall)
// while letting every request that can succeed succeed.
import type { Redis } from 'ioredis';
import { RedisStoreError } from '../redis/redis-store-error.ts';
import { bindScript, loadLuaScript, type RunScript } from '../redis/script-loader.ts';
import { MemoryRateLimitStore, type RateLimitStore } from './rate-limiter.ts';

export const RATE_LIMIT_KEY_PREFIX = 'ladder:rl:';

const HIT = loadLuaScript(new URL('./rate-limit-hit-1.lua', import.meta.url));

export interface RedisRateLimitStoreOptions {
  prefix?: string;
  /** Counts hits while Redis is unavailable; default: a bounded MemoryRateLimitStore. */
  fallback?: RateLimitStore;
  /** Called for each hit counted by the fallback (for a metric; do not log per call). */
  onFallback?: (err: RedisStoreError) => void;
}

export class RedisRateLimitStore implements RateLimitStore {
  private readonly prefix: string;
  private readonly fallback: RateLimitStore;
  private readonly onFallback: ((err: RedisStoreError) => void) | undefined;
  private readonly run: RunScript;

  constructor(redis: Redis, opts: RedisRateLimitStoreOptions = {}) {
    this.run = bindScript(redis, HIT);
    this.prefix = opts.prefix ?? RATE_LIMIT_KEY_PREFIX;
    this.fallback = opts.fallback ?? new MemoryRateLimitStore(10_000);
    this.onFallback = opts.onFallback;
  }

  async hit(key: string, windowMs: number): Promise<{ count: number; resetMs: number }> {
    const window = Math.max(1, Math.round(windowMs));
    try {
      return parseReply(await this.run([this.prefix + key], [window]), window);
    } catch (err) {
      this.onFallback?.(err instanceof RedisStoreError ? err : new RedisStoreError('rate-limit hit', err));
      return this.fallback.hit(key, windowMs);
    }
  }
}

function parseReply(reply: unknown, windowMs: number): { count: number; resetMs: number } {
  if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'number') {
    throw new RedisStoreError('rate-limit hit', new Error('unexpected reply from rate-limit-hit-1.lua'));
  }
  return { count: reply[0], resetMs: Math.min(Math.max(0, reply[1]), windowMs) };
}
