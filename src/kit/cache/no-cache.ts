// The cache tier below rung 5 (no CACHE_REDIS_URL): nothing is cached, the loader runs on
// the request's database handle, and invalidations have nothing to do.
import type { FastifyRequest } from 'fastify';
import type { CacheTier, RequestCache } from './cache-tier.ts';

export class NoCache implements CacheTier {
  forRequest(req: FastifyRequest): RequestCache {
    return {
      getOrLoad: (_key, loader) => loader(req.db),
      invalidate: async () => undefined,
      addMember: async () => undefined,
    };
  }

  peek(): undefined {
    return undefined;
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {}
}
