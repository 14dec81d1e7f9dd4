// What the app tells a shared cache (the edge, rung 6; CloudFront) about a response: public
// with a short shared lifetime and surrogate keys to purge it by, or nothing (the default:
// the edge stores only what is marked public, src/launcher/varnish-vcl.ts).
import type { FastifyReply, FastifyRequest } from 'fastify';

/** How long shared caches keep a public page (s-maxage) unless EDGE_PAGE_TTL_S says otherwise. */
export const DEFAULT_PAGE_TTL_S = 30;

/**
 * A public page: browsers revalidate at once (max-age=0: a user who logs in never sees a
 * copy from before), shared caches keep it `ttlS` (30 s) and serve it stale 30 s more
 * while they refresh it, or a day while the origin is down. Writes purge it by key before.
 */
export function publicPageCacheControl(ttlS = DEFAULT_PAGE_TTL_S): string {
  return `public, max-age=0, s-maxage=${ttlS}, stale-while-revalidate=30, stale-if-error=86400`;
}

/**
 * Whether a response may be shared with other clients: only for a request that carries no
 * credentials at all (no Cookie, no Authorization). A request with an expired session
 * cookie gets the anonymous page, but privately: its answer may clear the cookie.
 */
export function isAnonymous(req: FastifyRequest): boolean {
  return req.headers.cookie === undefined && req.headers.authorization === undefined;
}

/** Marks a response public for shared caches, tagged with surrogate keys. */
export function markPublic(reply: FastifyReply, keys: readonly string[], ttlS = DEFAULT_PAGE_TTL_S): FastifyReply {
  return reply.header('cache-control', publicPageCacheControl(ttlS)).header('surrogate-key', keys.join(' '));
}
