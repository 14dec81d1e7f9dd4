// Plugin `ladder-cache`: `req.cache`, cache-aside with a loader. At rung 5 it is the two-tier
// cache (in-process L1 + Redis); below it, the loader runs on req.db. The plugin starts the
// tier when the server gets ready and closes it after the last request.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { CacheTier, RequestCache } from './cache-tier.ts';
import { NoCache } from './no-cache.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Cache-aside with a loader (rung 5: L1 + Redis; below, the loader on req.db). */
    cache: RequestCache;
  }
}

export const cachePlugin = fp<{ cache?: CacheTier }>(
  async (fastify: FastifyInstance, opts) => {
    const cache = opts.cache ?? new NoCache();
    fastify.decorateRequest('cache', null as unknown as RequestCache);
    fastify.addHook('onRequest', (req, reply, done) => {
      req.cache = cache.forRequest(req, reply);
      done();
    });
    fastify.addHook('onReady', async () => cache.start());
    fastify.addHook('onClose', async () => cache.close());
  },
  { name: 'ladder-cache', dependencies: ['ladder-db'] },
);
