// Builds a web process: Fastify with the kit's plugins around an app. Each concern is a
// named plugin that declares what it depends on and owns its lifecycle (onReady/onClose);
// this file only creates the instance with its options, registers the plugins in order,
// then the app. The app registers routes and uses req.db, req.session, req.cache,
// req.queue, req.rateLimit. Graceful shutdown (below) drains, then fastify.close() runs
// every plugin's onClose in reverse order: queue flush, cache, Redis, database.
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ServerConfig } from '../config.ts';
import type { Database } from '../db/database.ts';
import { dbPlugin } from '../db/db-plugin.ts';
import { LadderError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { metricsPlugin } from '../metrics/metrics-plugin.ts';
import { NO_OUTBOX, type Outbox } from '../queue/outbox.ts';
import type { ManagedQueue } from '../queue/queue.ts';
import { queuePlugin } from '../queue/queue-plugin.ts';
import type { RedisConnection } from '../redis/redis-connection.ts';
import { csrfPlugin } from '../security/csrf-plugin.ts';
import { rateLimitPlugin } from '../security/rate-limit-plugin.ts';
import type { RateLimitStore } from '../security/rate-limiter.ts';
import { securityHeadersPlugin } from '../security/security-headers-plugin.ts';
import { SECURITY_HEADERS } from '../security/security-headers.ts';
import { sessionPlugin } from '../session/session-plugin.ts';
import type { SessionStore } from '../session/session-store.ts';
import type { CacheTier } from '../cache/cache-tier.ts';
import { NoCache } from '../cache/no-cache.ts';
import { cachePlugin } from '../cache/cache-plugin.ts';
import { edgePlugin } from '../edge/edge-plugin.ts';
import { errorsPlugin } from './errors-plugin.ts';
import { fastPathPlugin, fastPathServer, type FastPath, type FastPathFactory } from './fast-path.ts';
import { healthPlugin } from '../metrics/health-plugin.ts';
import { jsonBodyPlugin } from './json-body-plugin.ts';
import { kitPlugin, type Kit } from './kit-plugin.ts';
import { requestIdOf } from './request-id.ts';
import { requestIdPlugin } from './request-id-plugin.ts';
import { schemaError } from './schema-errors.ts';
import { answerClientError } from './client-error.ts';
import { publicOrigin, requestOrigin } from './host-header.ts';
import { fastifyTrustProxy } from './trust-proxy.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Scheme and host the caller used (for absolute URLs and self-link checks). */
    origin(): { protocol: string; host: string };
  }
}

export interface ServerDeps {
  config: Readonly<ServerConfig>;
  database: Database;
  metrics: Metrics;
  queue: ManagedQueue;
  /** The transactional outbox (rung 9); default: off. */
  outbox?: Outbox;
  sessionStore: SessionStore;
  rateLimitStore: RateLimitStore;
  /** The Redis connection the session and rate-limit stores use (rung 7); the session plugin owns it. */
  stateRedis?: RedisConnection;
  /** The cache tier (rung 5); default: none, loaders run on req.db. */
  cache?: CacheTier;
  /** The app's answers from memory, served before the framework (see FastPath). */
  fastPath?: FastPathFactory;
  /** Renders the HTML 404 page for unknown non-API paths. */
  notFoundPage?: (req: FastifyRequest) => string;
  /** Registers the application's routes. */
  app: (fastify: FastifyInstance) => Promise<void>;
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const fast = deps.fastPath ? fastPathServer() : undefined;
  const fastify = Fastify({
    ...(fast ? { serverFactory: fast.serverFactory } : {}),
    logger: {
      level: config.logLevel,
      // Headers can carry session cookies; never log them.
      redact: ['req.headers.cookie', 'req.headers.authorization', 'res.headers["set-cookie"]'],
    },
    logController: new LogController({ disableRequestLogging: !config.logRequests }),
    bodyLimit: config.bodyLimitBytes,
    // A missing Host is refused by ladder-csrf's hook, in the catalogue's shape (host-header.ts).
    http: { requireHostHeader: false },
    // Exactly the proxies TRUST_PROXY names (docs/security.md, "Behind a balancer").
    trustProxy: fastifyTrustProxy(config.trustProxy),
    // Longer than any balancer's idle timeout (HAProxy's is set lower), so an idle
    // keep-alive connection is always closed by the balancer first, never mid-request.
    keepAliveTimeout: 65_000,
    requestTimeout: 30_000,
    return503OnClosing: true,
    genReqId: requestIdOf,
    routerOptions: { maxParamLength: 200, ignoreTrailingSlash: false },
    // A request Node's parser refuses (unknown method, malformed line or header) gets the
    // catalogue's 400, ended rather than destroyed, so it arrives instead of a reset.
    clientErrorHandler(this: FastifyInstance, err, socket) {
      answerClientError(err, socket, this.log);
    },
    // Route schemas check shapes only; a body is never rewritten to fit one (no coercion,
    // no removal of unknown fields: those are refused, see docs/api.md).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    schemaErrorFormatter: schemaError,
    // Errors the router raises before any hook (an over-long or malformed path): a path
    // that cannot name anything is a 404 in the catalogue's shape, never Fastify's own.
    frameworkErrors: (err, _req, reply: FastifyReply) => {
      const known = err.code === 'FST_ERR_MAX_PARAM_LENGTH' || err.code === 'FST_ERR_BAD_URL';
      const e = known ? new LadderError('NOT_FOUND', 'No such path.') : new LadderError('VALIDATION_FAILED', 'Malformed request.');
      void reply.status(e.status).headers(SECURITY_HEADERS).send(e.toBody());
    },
  });

  const kit: Kit = { config, database: deps.database, metrics: deps.metrics, queue: deps.queue, outbox: deps.outbox ?? NO_OUTBOX, draining: false };
  await fastify.register(kitPlugin, { kit });
  await fastify.register(errorsPlugin, deps.notFoundPage ? { notFoundPage: deps.notFoundPage } : {});
  await fastify.register(jsonBodyPlugin);
  // Hooks run in registration order: headers first, so even a refused request carries them.
  await fastify.register(requestIdPlugin);
  await fastify.register(securityHeadersPlugin);
  await fastify.register(csrfPlugin);
  const settings = { store: deps.sessionStore, secret: config.secret, idleSeconds: config.sessionIdleSeconds, absoluteSeconds: config.sessionAbsoluteSeconds };
  await fastify.register(sessionPlugin, deps.stateRedis ? { settings, redis: deps.stateRedis } : { settings });
  await fastify.register(rateLimitPlugin, { store: deps.rateLimitStore });
  await fastify.register(dbPlugin);
  await fastify.register(cachePlugin, deps.cache ? { cache: deps.cache } : {});
  await fastify.register(queuePlugin);
  await fastify.register(edgePlugin);
  await fastify.register(metricsPlugin);
  await fastify.register(healthPlugin);
  if (fast && deps.fastPath) {
    const fastPath: FastPath = deps.fastPath({ cache: deps.cache ?? new NoCache(), queue: deps.queue });
    // A read before the framework must fill the cache tier when there is one: then L1 only.
    await fastify.register(fastPathPlugin, { server: fast, fastPath, readThrough: !deps.cache });
  }

  // PUBLIC_URL when set; else the (checked) Host header; never X-Forwarded-Host.
  const fixedOrigin = publicOrigin(config.publicUrl);
  fastify.decorateRequest('origin', function (this: FastifyRequest) {
    return requestOrigin(fixedOrigin, this.protocol, this.headers.host, { address: this.socket.localAddress, port: this.socket.localPort });
  });

  await fastify.register(async (scope) => deps.app(scope));
  return fastify;
}

/**
 * Graceful shutdown: report not-ready, wait for a balancer to notice, stop accepting and
 * finish in-flight requests within the bound; fastify.close() then runs the plugins'
 * onClose hooks (flush buffered work, close connections and pools).
 */
export async function shutdown(fastify: FastifyInstance): Promise<void> {
  const { kit } = fastify;
  if (kit.draining) return;
  kit.draining = true;
  if (kit.config.drainDelayMs > 0) await new Promise((r) => setTimeout(r, kit.config.drainDelayMs));
  const closed = fastify.close();
  // close() drops the connections idle at that instant; ones that finish a request later
  // become idle afterwards and would wait out the keep-alive timeout, so sweep them too.
  const sweeper = setInterval(() => fastify.server.closeIdleConnections(), 50);
  const timer = setTimeout(() => {
    fastify.log.warn(`in-flight requests still running after ${kit.config.shutdownTimeoutMs} ms; closing anyway`);
    fastify.server.closeAllConnections();
  }, kit.config.shutdownTimeoutMs);
  try {
    await closed;
  } finally {
    clearTimeout(timer);
    clearInterval(sweeper);
  }
}

export type { FastifyReply, FastPath, Kit };
