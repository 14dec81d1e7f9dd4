// Plugin `ladder-session`: `req.session`, loaded lazily (routes that do not need it, the
// redirect among them, never touch the store), and routes that declare `config.auth` answer
// 401 before their body is validated. When sessions live in Redis (rung 7) the plugin owns
// that connection: it connects when the server gets ready and closes after the last request.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { RedisConnection } from '../redis/redis-connection.ts';
import { REDIS_DEFAULTS } from '../redis/redis-connection.ts';
import { addPreValidation } from '../http/route-hooks.ts';
import { RequestSession, type SessionSettings } from './request-session.ts';

declare module 'fastify' {
  interface FastifyRequest {
    session: RequestSession;
  }
  interface FastifyContextConfig {
    /** The route needs a logged-in user: 401 UNAUTHENTICATED before anything else is checked. */
    auth?: boolean;
  }
}

export interface SessionOptions {
  settings: SessionSettings;
  /** The Redis connection the session store (and rate limits) use, if any: its lifecycle is ours. */
  redis?: RedisConnection;
}

export const sessionPlugin = fp<SessionOptions>(
  async (fastify: FastifyInstance, { settings, redis }) => {
    fastify.decorateRequest('session', null as unknown as RequestSession);
    fastify.addHook('onRequest', (req, reply, done) => {
      req.session = new RequestSession(req, reply, settings);
      done();
    });
    fastify.addHook('onRoute', (route) => {
      if (!route.config?.auth) return;
      addPreValidation(route, 'first', async (req) => {
        await req.session.requireUser();
      });
    });
    if (redis) {
      fastify.addHook('onReady', async () => {
        redis.connect();
        if (!(await redis.waitReady(REDIS_DEFAULTS.startupWaitMs))) {
          fastify.log.warn({ redis: redis.target }, 'starting without Redis; sessions answer 503 until it is reachable');
        }
      });
      // onClose runs once in-flight requests are done (fastify.close(), from shutdown()).
      fastify.addHook('onClose', async () => redis.close());
    }
  },
  { name: 'ladder-session', dependencies: ['ladder-kit', 'ladder-errors'] },
);
