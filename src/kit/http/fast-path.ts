// Plugin `ladder-fast-path`: answers the app's hot route from memory before Fastify sees the
// request (the cached redirect). Why it exists and what it costs: docs/performance.md,
// "The cache tier". The plugin needs the HTTP server built around it, so buildServer creates
// the server with `fastPathServer()` and registers the plugin with its handle.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { CacheTier } from '../cache/cache-tier.ts';
import type { HotSeries } from '../metrics/metrics.ts';
import type { Queue } from '../queue/queue.ts';
import { SECURITY_HEADERS } from '../security/security-headers.ts';
import { REQUEST_ID, nextRequestId } from './request-id.ts';
import { REQUEST_KEY_HEADER, requestKeyOf } from './request-key.ts';
import { acceptableHost } from './host-header.ts';
import type { ReadDb } from '../db/database.ts';
import { RawConsistencyCookie } from './consistency-cookie.ts';

/**
 * A route the app can answer before Fastify, on the raw request: `answer` synchronously
 * from memory (an L1 hit), or `load` after a database read when no cache tier stands in
 * front of the database (rungs 1-4 and 9; the read goes through the request's own handle,
 * so at rung 4 it routes and pins by the caller's consistency cookie as the route's would,
 * and the pin's Set-Cookie goes out with the answer). Either returns the status and the route's
 * own headers, or undefined to let the request take the ordinary path; the kit adds what
 * every response gets (security headers, x-request-id, `connection: close` while
 * draining) and records the request in http_request_duration_seconds under `route`, so the
 * response is the one the ordinary path would give. Only plain-HTTP GETs with an
 * acceptable Host while serving normally take it: not while draining (the ordinary path
 * adds `connection: close`), not with request logging on (it logs every request), not over
 * TLS or behind a TLS-terminating proxy (those responses need HSTS).
 */
export interface FastPath {
  route: string;
  /**
   * `cookie`: the request's Cookie header, if any; `requestKey`: the balancer's request key
   * (request-key.ts), if it sent a valid one. Answer `headers`: the route's own, as a flat
   * [name, value, ...] list.
   */
  answer(url: string, cookie: string | undefined, requestKey: string | undefined): FastAnswer | undefined;
  /**
   * When `answer` could not: the answer after reading through `db` (this request's handle),
   * or undefined (synchronously) when the request is not one it takes. A promise that
   * resolves undefined (nothing found) or rejects (the database failed) hands the request
   * to the ordinary path, which answers it as it answers every such request (the 404 page,
   * the catalogue's 503).
   */
  load?(url: string, db: ReadDb, requestKey: string | undefined): Promise<FastAnswer | undefined> | undefined;
}

export interface FastAnswer {
  status: number;
  headers: readonly string[];
}

export type FastPathFactory = (kit: { cache: CacheTier; queue: Queue }) => FastPath;

/** The server's side of the fast path: requests go to `serve` first, Fastify gets the rest. */
export interface FastPathServer {
  serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => http.Server;
  /**
   * Set by the plugin once the kit exists; until then every request takes the ordinary
   * path. False: the caller hands the request on now; true: answered, or `ordinary` will
   * be called later (a load that found nothing).
   */
  serve: (req: IncomingMessage, res: ServerResponse, ordinary: (req: IncomingMessage, res: ServerResponse) => void) => boolean;
}

export function fastPathServer(): FastPathServer {
  const server: FastPathServer = {
    serve: () => false,
    serverFactory: (handler) =>
      // Host is checked by the kit (ladder-csrf), answering in the catalogue's shape.
      http.createServer({ requireHostHeader: false }, (req, res) => {
        if (!server.serve(req, res, handler)) handler(req, res);
      }),
  };
  return server;
}

const SECURITY_FLAT: string[] = Object.entries(SECURITY_HEADERS).flat();

export const fastPathPlugin = fp<{ server: FastPathServer; fastPath: FastPath; readThrough: boolean }>(
  async (fastify: FastifyInstance, { server, fastPath: fast, readThrough }) => {
    const { kit } = fastify;
    const { config, metrics, database } = kit;
    // With a cache tier a read must fill it: the fast path then answers from L1 only.
    const load = readThrough ? fast.load?.bind(fast) : undefined;
    // With a serverFactory, Fastify leaves the server's timeouts to it.
    fastify.server.keepAliveTimeout = 65_000;
    fastify.server.requestTimeout = 30_000;
    const series = new Map<number, HotSeries>();
    const respond = (res: ServerResponse, given: string | undefined, started: number, answer: FastAnswer, setCookie?: string) => {
      const id = given !== undefined && REQUEST_ID.test(given) ? given : nextRequestId();
      // A flat [name, value, ...] list, built in one array: fewer allocations than an object.
      const own = answer.headers;
      // A load can finish after draining began: the ordinary path would then close the connection.
      const closing = kit.draining;
      const head = new Array<string>(SECURITY_FLAT.length + own.length + (closing ? 6 : 4) + (setCookie === undefined ? 0 : 2));
      let n = 0;
      for (let i = 0; i < SECURITY_FLAT.length; i++) head[n++] = SECURITY_FLAT[i]!;
      head[n++] = 'x-request-id';
      head[n++] = id;
      for (let i = 0; i < own.length; i++) head[n++] = own[i]!;
      head[n++] = 'content-length';
      head[n++] = '0';
      if (closing) {
        head[n++] = 'connection';
        head[n++] = 'close';
      }
      if (setCookie !== undefined) {
        head[n++] = 'set-cookie';
        head[n++] = setCookie;
      }
      res.writeHead(answer.status, head);
      res.end();
      let hot = series.get(answer.status);
      if (!hot) series.set(answer.status, (hot = metrics.hotDuration({ method: 'GET', route: fast.route, status_code: String(answer.status) })));
      hot.observe((performance.now() - started) / 1000);
    };
    server.serve = (req, res, ordinary) => {
      if (req.method !== 'GET' || kit.draining || config.logRequests || req.url === undefined) return false;
      if ((req.socket as { encrypted?: boolean }).encrypted) return false;
      // The headers the fast path reads, from the raw list: building req.headers (an
      // object of every header) would cost more than answering. Repeats are joined as
      // node joins them (Cookie with "; ", the others with ", ").
      const raw = req.rawHeaders;
      let cookie: string | undefined;
      let given: string | undefined;
      let requestKey: string | undefined;
      let host: string | undefined;
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!;
        if (name.length === 6 && name.toLowerCase() === 'cookie') cookie = cookie === undefined ? raw[i + 1] : `${cookie}; ${raw[i + 1]}`;
        // Node keeps the first of repeated Host headers; so does this.
        else if (name.length === 4 && name.toLowerCase() === 'host') host ??= raw[i + 1];
        else if (name.length === 12 && name.toLowerCase() === 'x-request-id') given = given === undefined ? raw[i + 1] : `${given}, ${raw[i + 1]}`;
        // Two of them is no key (requestKeyOf refuses the joined value), as on the ordinary path.
        else if (name.length === REQUEST_KEY_HEADER.length && name.toLowerCase() === REQUEST_KEY_HEADER) requestKey = requestKey === undefined ? raw[i + 1] : `${requestKey}, ${raw[i + 1]}`;
        // A balancer in front says which scheme the client used; anything but plain http
        // (a TLS-terminating proxy) needs HSTS, which the ordinary path adds.
        else if (name.length === 17 && name.toLowerCase() === 'x-forwarded-proto' && raw[i + 1] !== 'http') return false;
      }
      // A missing or malformed Host gets the ordinary path's 400 (ladder-csrf).
      if (!acceptableHost(host, req.httpVersion)) return false;
      const started = performance.now();
      const key = requestKeyOf(requestKey);
      let answer: FastAnswer | undefined;
      let pending: Promise<FastAnswer | undefined> | undefined;
      let carrier: RawConsistencyCookie | undefined;
      try {
        answer = fast.answer(req.url, cookie, key);
        if (!answer && load) {
          // The request's own handle, as the route's would be (db-plugin.ts): at rung 4 it
          // routes by the caller's token and pins; below it, the process-wide handle.
          carrier = new RawConsistencyCookie(cookie, config.secret);
          pending = load(req.url, database.forRequest(carrier), key);
        }
      } catch (err) {
        fastify.log.error({ err }, 'fast path failed; the ordinary path answers');
        return false;
      }
      if (answer) {
        respond(res, given, started, answer);
        return true;
      }
      if (!pending) return false;
      pending.then(
        (loaded) => (loaded ? respond(res, given, started, loaded, carrier?.setCookie) : ordinary(req, res)),
        // The ordinary path reads again and answers the failure as every route does.
        () => ordinary(req, res),
      );
      return true;
    };
  },
  { name: 'ladder-fast-path', dependencies: ['ladder-kit', 'ladder-cache', 'ladder-queue', 'ladder-metrics'] },
);
