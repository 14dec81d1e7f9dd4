// Builds a web process: Fastify with the kit around an app. The app registers routes and
// uses req.db, req.session, req.queue, req.rateLimit; the kit owns errors, body parsing,
// security headers, metrics, health, and graceful shutdown.
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ServerConfig } from '../config.ts';
import type { Database, Db } from '../db/database.ts';
import { LadderError } from '../errors.ts';
import type { HotSeries, Metrics } from '../metrics/metrics.ts';
import type { InProcessQueue, Queue } from '../queue/queue.ts';
import type { RateLimitStore } from '../security/rate-limiter.ts';
import { HTML_HEADERS, SECURITY_HEADERS, isCrossSite } from '../security/security-headers.ts';
import { RequestSession, SESSION_CACHE_CONTROL, type SessionSettings } from '../session/request-session.ts';
import type { SessionStore } from '../session/session-store.ts';
import { NoCache, type CacheTier, type RequestCache } from '../cache/cache.ts';
import { ConsistencyCookie } from './consistency-cookie.ts';
import { fastifyTrustProxy } from './trust-proxy.ts';
import { isJsonContentType } from './content-type.ts';
import { mapError } from './error-mapping.ts';
import { acceptableHost, publicOrigin, requestOrigin } from './host-header.ts';
import { refuseConnect } from './refuse-connect.ts';
import { answerClientError } from './client-error.ts';

declare module 'fastify' {
  interface FastifyRequest {
    db: Db;
    /** Cache-aside with a loader (rung 5: L1 + Redis; below, the loader on req.db). */
    cache: RequestCache;
    session: RequestSession;
    queue: Queue;
    /** Counts one hit against a named limit for the caller's IP; throws RATE_LIMITED past it. */
    rateLimit(name: keyof ServerConfig['rateLimits']): Promise<void>;
    /** Scheme and host the caller used (for absolute URLs and self-link checks). */
    origin(): { protocol: string; host: string };
  }
  interface FastifyInstance {
    kit: Kit;
  }
}

export interface Kit {
  config: Readonly<ServerConfig>;
  database: Database;
  metrics: Metrics;
  queue: InProcessQueue;
  /** True once shutdown has begun: /readyz answers 503. */
  draining: boolean;
}

export interface ServerDeps {
  config: Readonly<ServerConfig>;
  database: Database;
  metrics: Metrics;
  queue: InProcessQueue;
  sessionStore: SessionStore;
  rateLimitStore: RateLimitStore;
  /** The cache tier (rung 5); default: none, loaders run on req.db. */
  cache?: CacheTier;
  /** The app's answers from memory, served before the framework (see FastPath). */
  fastPath?: (kit: { cache: CacheTier; queue: Queue }) => FastPath;
  /** Renders the HTML 404 page for unknown non-API paths. */
  notFoundPage?: (req: FastifyRequest) => string;
  /** Registers the application's routes. */
  app: (fastify: FastifyInstance) => Promise<void>;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

// Request ids: a random prefix per process and a counter, unique across a fleet for log
// correlation, and cheaper than a UUID per request on the hot path.
const ID_PREFIX = randomBytes(6).toString('base64url');
let idCounter = 0;
const nextRequestId = () => `${ID_PREFIX}-${(++idCounter).toString(36)}`;

/**
 * A route the app can sometimes answer from memory alone (the cached redirect): `answer`
 * runs synchronously on the raw request, before Fastify, and returns the status and the
 * route's own headers, or undefined to let the request take the ordinary path. The kit
 * adds what every response gets (security headers, x-request-id) and records the request
 * in http_request_duration_seconds under `route`, so the response is the one the ordinary
 * path would give. Only plain-HTTP GETs while serving normally take it: not while draining
 * (the ordinary path adds `connection: close`), not with request logging on (it logs every
 * request), not over TLS or behind a TLS-terminating proxy (those responses need HSTS).
 * Why it exists: docs/performance.md, "The cache tier".
 */
export interface FastPath {
  route: string;
  /** `cookie`: the request's Cookie header, if any. Answer `headers`: the route's own, as a flat [name, value, ...] list. */
  answer(url: string, cookie: string | undefined): { status: number; headers: readonly string[] } | undefined;
}

const SECURITY_FLAT: string[] = Object.entries(SECURITY_HEADERS).flat();

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const { config, database, metrics, queue } = deps;
  const cache = deps.cache ?? new NoCache();
  const fast = deps.fastPath?.({ cache, queue });
  // Set once the kit exists (below); the server only calls it for requests, after that.
  let serveFast: (req: IncomingMessage, res: ServerResponse) => boolean = () => false;
  const fastify = Fastify({
    ...(fast
      ? {
          serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) =>
            http.createServer({ requireHostHeader: false }, (req, res) => {
              if (!serveFast(req, res)) handler(req, res);
            }),
        }
      : {}),
    logger: {
      level: config.logLevel,
      // Headers can carry session cookies; never log them.
      redact: ['req.headers.cookie', 'req.headers.authorization', 'res.headers["set-cookie"]'],
    },
    logController: new LogController({ disableRequestLogging: !config.logRequests }),
    bodyLimit: config.bodyLimitBytes,
    // A missing Host is refused by the onRequest hook, in the catalogue's shape (host-header.ts).
    http: { requireHostHeader: false },
    trustProxy: fastifyTrustProxy(config.trustProxy),
    // Longer than any balancer's idle timeout (HAProxy's is set lower), so an idle
    // keep-alive connection is always closed by the balancer first, never mid-request.
    keepAliveTimeout: 65_000,
    requestTimeout: 30_000,
    return503OnClosing: true,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : nextRequestId();
    },
    routerOptions: { maxParamLength: 200, ignoreTrailingSlash: false },
    // Fastify binds it to the instance (its own default logs with this.log).
    clientErrorHandler(this: FastifyInstance, err, socket) {
      answerClientError(err, socket, this.log);
    },
    // Errors the router raises before any hook (an over-long or malformed path): a path
    // that cannot name anything is a 404 in the catalogue's shape, never Fastify's own.
    frameworkErrors: (err, _req, reply: FastifyReply) => {
      const known = err.code === 'FST_ERR_MAX_PARAM_LENGTH' || err.code === 'FST_ERR_BAD_URL';
      const e = known ? new LadderError('NOT_FOUND', 'No such path.') : new LadderError('VALIDATION_FAILED', 'Malformed request.');
      void reply.status(e.status).headers(SECURITY_HEADERS).send(e.toBody());
    },
  });

  fastify.server.on('connect', (_req: IncomingMessage, socket: Duplex) => refuseConnect(socket, fastify.log));
  const kit: Kit = { config, database, metrics, queue, draining: false };
  fastify.decorate('kit', kit);
  if (fast) {
    // With a serverFactory, Fastify leaves the server's timeouts to it.
    fastify.server.keepAliveTimeout = 65_000;
    fastify.server.requestTimeout = 30_000;
    const series = new Map<number, HotSeries>();
    serveFast = (req, res) => {
      if (req.method !== 'GET' || kit.draining || config.logRequests || req.url === undefined) return false;
      if ((req.socket as { encrypted?: boolean }).encrypted) return false;
      // The three headers the fast path reads, from the raw list: building req.headers (an
      // object of every header) would cost more than answering. Repeats are joined as
      // node joins them (Cookie with "; ", the others with ", ").
      const raw = req.rawHeaders;
      let cookie: string | undefined;
      let given: string | undefined;
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!;
        if (name.length === 6 && name.toLowerCase() === 'cookie') cookie = cookie === undefined ? raw[i + 1] : `${cookie}; ${raw[i + 1]}`;
        else if (name.length === 12 && name.toLowerCase() === 'x-request-id') given = given === undefined ? raw[i + 1] : `${given}, ${raw[i + 1]}`;
        else if (name.length === 17 && name.toLowerCase() === 'x-forwarded-proto') return false;
      }
      const started = performance.now();
      let answer: ReturnType<FastPath['answer']>;
      try {
        answer = fast.answer(req.url, cookie);
      } catch (err) {
        fastify.log.error({ err }, 'fast path failed; the ordinary path answers');
        return false;
      }
      if (!answer) return false;
      const id = given !== undefined && REQUEST_ID.test(given) ? given : nextRequestId();
      // A flat [name, value, ...] list, built in one array: fewer allocations than an object.
      const own = answer.headers;
      const head = new Array<string>(SECURITY_FLAT.length + own.length + 4);
      let n = 0;
      for (let i = 0; i < SECURITY_FLAT.length; i++) head[n++] = SECURITY_FLAT[i]!;
      head[n++] = 'x-request-id';
      head[n++] = id;
      for (let i = 0; i < own.length; i++) head[n++] = own[i]!;
      head[n++] = 'content-length';
      head[n++] = '0';
      res.writeHead(answer.status, head);
      res.end();
      let hot = series.get(answer.status);
      if (!hot) series.set(answer.status, (hot = metrics.hotDuration({ method: 'GET', route: fast.route, status_code: String(answer.status) })));
      hot.observe((performance.now() - started) / 1000);
      return true;
    };
  }

  const sessionSettings: SessionSettings = {
    store: deps.sessionStore,
    secret: config.secret,
    idleSeconds: config.sessionIdleSeconds,
    absoluteSeconds: config.sessionAbsoluteSeconds,
  };

  // JSON bodies only, parsed by us so that bad JSON is a 400 BAD_JSON from the catalogue.
  // One parser for every type, so that content-type.ts alone decides what is JSON (415
  // otherwise); an unrouted request's body is ignored, and it gets its 404.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'string' }, (req, body, done) => {
    if (req.is404) return done(null, undefined);
    if (!isJsonContentType(req.headers['content-type'])) return done(new LadderError('UNSUPPORTED_MEDIA_TYPE'), undefined);
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text) as unknown);
    } catch (cause) {
      done(new LadderError('BAD_JSON', undefined, { cause }), undefined);
    }
  });

  fastify.decorateRequest('db', null as unknown as Db);
  fastify.decorateRequest('session', null as unknown as RequestSession);
  fastify.decorateRequest('queue', null as unknown as Queue);
  fastify.decorateRequest('cache', null as unknown as RequestCache);
  fastify.decorateRequest('rateLimit', async function (this: FastifyRequest, name: keyof ServerConfig['rateLimits']) {
    const rule = config.rateLimits[name];
    const { count, resetMs } = await deps.rateLimitStore.hit(`${name}:${this.ip}`, rule.windowMs);
    if (count > rule.limit) {
      throw new LadderError('RATE_LIMITED', `Too many ${name} attempts; retry in ${Math.ceil(resetMs / 1000)} s.`, {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(resetMs / 1000))) },
      });
    }
  });
  const fixedOrigin = publicOrigin(config.publicUrl);
  fastify.decorateRequest('origin', function (this: FastifyRequest) {
    return requestOrigin(fixedOrigin, this.protocol, this.headers.host, { address: this.socket.localAddress, port: this.socket.localPort });
  });

  // Hooks run on every request, the redirect included, so they are plain callbacks (no
  // promise per hook) and do only what every request needs (measured: docs/performance.md).
  fastify.addHook('onRequest', (req, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    reply.header('x-request-id', req.id);
    if (req.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
    // While draining, responses close their connection, so keep-alive clients move on (to
    // another server, behind a balancer) instead of holding this one open.
    if (kit.draining) reply.header('connection', 'close');
    if (!acceptableHost(req.headers.host, req.raw.httpVersion)) return done(new LadderError('VALIDATION_FAILED', 'The Host header is missing or not a valid host[:port].'));
    if (isCrossSite(req.method, req.headers)) return done(new LadderError('FORBIDDEN_ORIGIN'));
    req.session = new RequestSession(req, reply, sessionSettings);
    // The caller's consistency token rides in a cookie (and the session); only a database
    // with replicas reads it, lazily, so at rungs 1-3 this is one small object.
    req.db = database.forRequest(new ConsistencyCookie(req, reply, req.session, config.secret));
    req.queue = queue;
    req.cache = cache.forRequest(req, reply);
    done();
  });

  fastify.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? '(unmatched)';
    metrics.httpDuration.observe({ method: req.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });

  fastify.setErrorHandler(async (err: Error & { code?: string; statusCode?: number }, req, reply) => {
    const clientGone = req.raw.aborted || req.socket.destroyed;
    const { error: e, log } = mapError(err, { unrouted: req.is404, draining: kit.draining, clientGone });
    if (log === 'error') req.log.error({ err }, 'unhandled error');
    else if (log === 'info') req.log.info({ reason: err.message, code: err.code }, 'client closed the request before it was read');
    // A dependency outage answers every affected request with 503; the dependency's own
    // client logs the outage once, so these are debug lines, not a flood of warnings.
    if (e.status >= 500 && e.code !== 'INTERNAL') req.log.debug({ code: e.code }, e.message);
    // An error answers one caller at one moment (a refusal may depend on their session
    // before the route read it: a taken email, a rate limit), so no cache may keep it.
    reply.header('cache-control', SESSION_CACHE_CONTROL);
    return reply.status(e.status).headers(e.headers).send(e.toBody());
  });

  fastify.setNotFoundHandler(async (req, reply) => {
    const url = req.url;
    if (url.startsWith('/api/') || url === '/api' || !deps.notFoundPage || req.method !== 'GET') {
      return reply.status(404).send(new LadderError('NOT_FOUND', `No route ${req.method} ${url.slice(0, 200)}.`).toBody());
    }
    return reply.status(404).headers(HTML_HEADERS).send(deps.notFoundPage(req));
  });

  // Health: alive, ready (dependencies reachable and not draining), and metrics.
  fastify.get('/healthz', async () => ({ status: 'ok' }));
  fastify.get('/readyz', async (_req, reply) => {
    if (kit.draining) return reply.status(503).send({ status: 'draining' });
    if (!(await database.ping())) return reply.status(503).send({ status: 'unavailable', failing: ['database'] });
    return { status: 'ready' };
  });
  fastify.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  await fastify.register(async (scope) => deps.app(scope));
  return fastify;
}

/**
 * Graceful shutdown: report not-ready, wait for a balancer to notice, stop accepting and
 * finish in-flight requests within the bound, flush buffered work, close pools.
 */
export async function shutdown(fastify: FastifyInstance): Promise<void> {
  const { kit } = fastify;
  if (kit.draining) return;
  kit.draining = true;
  if (kit.config.drainDelayMs > 0) await new Promise((r) => setTimeout(r, kit.config.drainDelayMs));
  let timer: NodeJS.Timeout | undefined;
  const closed = fastify.close();
  // close() drops the connections idle at that instant; ones that finish a request later
  // become idle afterwards and would wait out the keep-alive timeout, so sweep them too.
  const sweeper = setInterval(() => fastify.server.closeIdleConnections(), 50);
  const bounded = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      fastify.log.warn(`in-flight requests still running after ${kit.config.shutdownTimeoutMs} ms; closing anyway`);
      fastify.server.closeAllConnections();
      resolve();
    }, kit.config.shutdownTimeoutMs);
  });
  await Promise.race([closed, bounded]);
  clearTimeout(timer);
  clearInterval(sweeper);
  await kit.queue.close();
  if (kit.queue.size > 0) fastify.log.error({ lost: kit.queue.size }, 'could not flush buffered clicks before exit');
  await kit.database.close();
}

export type { FastifyReply };
