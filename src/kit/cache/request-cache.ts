// `req.cache` from rung 5: the process's two-tier cache, seen by one request. After the
// request's write invalidates a key, its caller's next requests skip L1 for a few seconds
// (the `ladder_fresh` cookie): they may land on a server whose L1 has not had the pub/sub
// message yet. Redis itself was invalidated before the write answered.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseCookies, serializeCookie } from '../http/cookies.ts';
import { CACHE_DEFAULTS } from './cache-defaults.ts';
import type { CacheOptions, Loader, RequestCache } from './cache-tier.ts';

const FRESH_COOKIE = 'ladder_fresh';

/** What a request handle needs of the process-wide cache. */
export interface SharedCache {
  getOrLoad<V>(key: string, loader: Loader<V>, options: CacheOptions, skipL1: boolean): Promise<V | null>;
  invalidate(key: string): Promise<void>;
  addMember(filter: string, member: string): Promise<void>;
}

export class TwoTierRequestCache implements RequestCache {
  constructor(
    private readonly shared: SharedCache,
    private readonly req: FastifyRequest,
    private readonly reply: FastifyReply,
  ) {}

  getOrLoad<V>(key: string, loader: Loader<V>, options: CacheOptions = {}): Promise<V | null> {
    const header = this.req.headers.cookie;
    return this.shared.getOrLoad(key, loader, options, header !== undefined && recentWriter(header));
  }

  async invalidate(key: string): Promise<void> {
    await this.shared.invalidate(key);
    const until = Date.now() + CACHE_DEFAULTS.freshMs;
    this.reply.header(
      'set-cookie',
      serializeCookie(FRESH_COOKIE, String(until), {
        maxAgeSeconds: Math.ceil(CACHE_DEFAULTS.freshMs / 1000),
        sameSite: 'Lax',
        secure: this.req.protocol === 'https',
      }),
    );
  }

  addMember(filter: string, member: string): Promise<void> {
    return this.shared.addMember(filter, member);
  }
}

/** Whether the Cookie header has a `ladder_fresh` still valid: the caller wrote within 2 s. */
export function recentWriter(cookieHeader: string): boolean {
  if (!cookieHeader.includes(FRESH_COOKIE)) return false;
  const until = Number(parseCookies(cookieHeader).get(FRESH_COOKIE));
  // A forged far-future value only makes that client skip L1, never a wrong answer.
  return Number.isFinite(until) && until > Date.now();
}
