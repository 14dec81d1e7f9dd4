// Plugin `ladder-rate-limit`: `req.rateLimit(name)` counts one hit against a named limit for
// the caller's address and throws 429 RATE_LIMITED past it; a route that declares
// `config.rateLimit` is counted before its body is validated (after `config.auth`), so a
// stream of malformed attempts is limited too. The address is Fastify's `req.ip`, which
// honours X-Forwarded-For only from the proxies TRUST_PROXY names (docs/security.md).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { ServerConfig } from '../config.ts';
import { LadderError } from '../errors.ts';
import { addPreValidation } from '../http/route-hooks.ts';
import type { RateLimitStore } from './rate-limiter.ts';

type LimitName = keyof ServerConfig['rateLimits'];

declare module 'fastify' {
  interface FastifyRequest {
    /** Counts one hit against a named limit for the caller's IP; throws RATE_LIMITED past it. */
    rateLimit(name: LimitName): Promise<void>;
  }
  interface FastifyContextConfig {
    /** Count a hit against this limit before the route's body is validated. */
    rateLimit?: LimitName;
  }
}

export const rateLimitPlugin = fp<{ store: RateLimitStore }>(
  async (fastify: FastifyInstance, { store }) => {
    const limits = fastify.kit.config.rateLimits;
    fastify.decorateRequest('rateLimit', async function (this: FastifyRequest, name: LimitName) {
      const rule = limits[name];
      const { count, resetMs } = await store.hit(`${name}:${this.ip}`, rule.windowMs);
      if (count > rule.limit) {
        const retry = Math.max(1, Math.ceil(resetMs / 1000));
        throw new LadderError('RATE_LIMITED', `Too many ${name} attempts; retry in ${retry} s.`, { headers: { 'retry-after': String(retry) } });
      }
    });
    fastify.addHook('onRoute', (route) => {
      const name = route.config?.rateLimit;
      if (!name) return;
      addPreValidation(route, 'last', async (req) => {
        await req.rateLimit(name);
      });
    });
  },
  // After the session plugin: its auth check runs first, and it owns the Redis connection
  // a Redis store uses.
  { name: 'ladder-rate-limit', dependencies: ['ladder-kit', 'ladder-session'] },
);
