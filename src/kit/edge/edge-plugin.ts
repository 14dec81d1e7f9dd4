// Plugin `ladder-edge`: `req.edge`, what a handler uses to let the edge cache an anonymous
// page (`publicPage`) and to purge pages after a write (`purge`, by surrogate key). Without
// EDGE_PURGE_URL (no edge in front) purging does nothing; marking pages public still helps
// any shared cache in front (CloudFront).
import type { FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import { isAnonymous, markPublic } from './edge-cache.ts';
import { EdgePurger } from './edge-purger.ts';

export interface RequestEdge {
  /** Marks the reply public, tagged with `keys`, when the request is anonymous; else `private, no-store`. Returns whether it did. */
  publicPage(reply: FastifyReply, keys: readonly string[]): boolean;
  /** Purges what is tagged with `keys` at the edge; resolves once done (a failure is counted, not thrown). */
  purge(keys: readonly string[]): Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    edge: RequestEdge;
  }
}

export const edgePlugin = fp(
  async (fastify: FastifyInstance) => {
    const { config, metrics } = fastify.kit;
    const purges = new Counter({
      name: 'ladder_edge_purges_total',
      help: 'Purges of the edge by surrogate key after a write, by result (ok, failed).',
      labelNames: ['result'],
      registers: [metrics.registry],
    });
    const purger =
      config.edgePurgeUrl !== undefined && config.edgePurgeToken !== undefined
        ? new EdgePurger({
            url: config.edgePurgeUrl,
            token: config.edgePurgeToken,
            onResult: (result, err) => {
              purges.inc({ result });
              if (err) fastify.log.warn({ err: err.message }, 'edge purge failed; the page expires at its s-maxage');
            },
          })
        : undefined;
    const edge: RequestEdge = {
      publicPage: (reply, keys) => {
        if (!isAnonymous(reply.request)) {
          reply.header('cache-control', 'private, no-store');
          return false;
        }
        markPublic(reply, keys, config.edgePageTtlS);
        return true;
      },
      purge: (keys) => purger?.purge(keys) ?? Promise.resolve(),
    };
    fastify.decorateRequest('edge', { getter: () => edge });
  },
  { name: 'ladder-edge', dependencies: ['ladder-kit'] },
);
