// GET /:code, the hot path: one indexed lookup (from rung 5 through the cache), a 302, and a click handed to req.queue so
// the response never waits on a database write.
import type { FastifyInstance } from 'fastify';
import type { CacheTier } from '../../kit/cache/cache-tier.ts';
import type { FastPath } from '../../kit/http/fast-path.ts';
import type { Queue } from '../../kit/queue/queue.ts';
import { isCodeShaped } from '../domain/codes.ts';
import { CODES_FILTER, findTarget, linkKey } from '../domain/links-repo.ts';
import { notFoundPage } from '../views/pages.ts';
import { htmlHeaders } from '../../kit/security/security-headers.ts';
import { assets } from '../assets.ts';
import { REQUEST_KEY_HEADER, requestKeyOf } from '../../kit/http/request-key.ts';

export async function redirectRoutes(app: FastifyInstance): Promise<void> {
  app.get<{ Params: { code: string } }>('/:code', async (req, reply) => {
    const { code } = req.params;
    const target = isCodeShaped(code)
      ? await req.cache.getOrLoad(linkKey(code), async (db) => (await findTarget(db, code)) ?? null, { filter: { name: CODES_FILTER, member: code } })
      : undefined;
    if (!target) return reply.status(404).headers(htmlHeaders(assets.origin)).send(notFoundPage(req));
    if (req.method === 'GET') countClick(req.queue, target.id, requestKeyOf(req.headers[REQUEST_KEY_HEADER]));
    return reply.status(302).header('location', target.url).header('cache-control', 'private, no-store').send();
  });
}

const DAY_MS = 86_400_000;
let day = '';
let dayEnds = 0;

/** Today (UTC), as the click counts store it; computed once a day, not per click. */
function today(): string {
  const now = Date.now();
  if (now >= dayEnds) {
    day = new Date(now).toISOString().slice(0, 10);
    dayEnds = (Math.floor(now / DAY_MS) + 1) * DAY_MS;
  }
  return day;
}

/** `key`: the balancer's request key, the same on a retry (rung 9 counts each key once). */
function countClick(queue: Queue, linkId: string, key: string | undefined): void {
  queue.publish('click', key === undefined ? { linkId, day: today() } : { linkId, day: today(), key });
}

/**
 * The same redirect before the framework (the kit's fast path), for a GET of a code-shaped
 * path with no query string: from the in-process cache alone when L1 holds the target
 * (rung 5); or, when no cache tier stands in front of the database, after the same batched
 * lookup the route makes, on the handle the kit gives for the request. Everything else (an
 * L1 miss at rung 5, a query string, HEAD, a recent writer) takes the route, and so does a
 * code the lookup did not find (for the 404 page).
 */
export function redirectFastPath({ cache, queue }: { cache: CacheTier; queue: Queue }): FastPath {
  // The click, then the route's 302 and its headers.
  const redirectTo = (target: { id: string; url: string }, requestKey: string | undefined) => {
    countClick(queue, target.id, requestKey);
    return { status: 302, headers: ['location', target.url, 'cache-control', 'private, no-store'] };
  };
  const codeOf = (url: string) => {
    const code = url.slice(1);
    return url.length <= 33 && isCodeShaped(code) ? code : undefined;
  };
  return {
    route: '/:code',
    answer(url, cookie, requestKey) {
      const code = codeOf(url);
      if (code === undefined) return undefined;
      const hit = cache.peek(linkKey(code), cookie);
      const target = hit?.value as { id: string; url: string } | null | undefined;
      return target ? redirectTo(target, requestKey) : undefined;
    },
    load(url, db, requestKey) {
      const code = codeOf(url);
      if (code === undefined) return undefined;
      return findTarget(db, code).then((target) => (target ? redirectTo(target, requestKey) : undefined));
    },
  };
}
