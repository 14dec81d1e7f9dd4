// Plugin `ladder-errors`: every error leaves as {"error":{"code","message"}} with the status
// of its catalogue code (kit/errors.ts). Fastify's own errors (bad JSON, too large, schema
// validation) are mapped onto the catalogue here, in one place; unknown paths get the JSON
// 404, or the app's HTML 404 page for browsers.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import fp from 'fastify-plugin';
import type { Duplex } from 'node:stream';
import { LadderError } from '../errors.ts';
import { HTML_HEADERS } from '../security/security-headers.ts';
import { SESSION_CACHE_CONTROL } from '../session/request-session.ts';
import { mapError } from './error-mapping.ts';
import { refuseConnect } from './refuse-connect.ts';

/**
 * How much of a refused oversized body is read and discarded before the 413 is sent. A
 * server that answers and closes while the client is still sending makes the kernel reset
 * the connection, and a client (or a balancer in front, which forwards the reset) loses
 * the answer: 1 in 6 tries through HAProxy, 49 in 50 when HAProxy answered itself. Past
 * these bounds the client is abusive and the connection is closed anyway.
 */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
const DRAIN_MAX_MS = 10_000;

/** Reads the rest of a request body into nothing; resolves when it ends or a bound is hit. */
function drain(raw: IncomingMessage): Promise<void> {
  if (raw.complete || raw.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let seen = 0;
    const finish = () => {
      clearTimeout(timer);
      raw.removeListener('data', onData);
      raw.removeListener('end', finish);
      raw.removeListener('error', finish);
      raw.removeListener('close', finish);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DRAIN_MAX_BYTES) finish();
    };
    const timer = setTimeout(finish, DRAIN_MAX_MS);
    raw.on('data', onData);
    raw.once('end', finish);
    raw.once('error', finish);
    raw.once('close', finish);
    raw.resume();
  });
}

export interface ErrorsOptions {
  /** Renders the HTML 404 page for unknown non-API GET paths. */
  notFoundPage?: (req: FastifyRequest) => string;
}

export const errorsPlugin = fp<ErrorsOptions>(
  async (fastify: FastifyInstance, opts) => {
    // CONNECT never reaches a route: without a listener Node closes the connection unanswered.
    fastify.server.on('connect', (_req: IncomingMessage, socket: Duplex) => refuseConnect(socket, fastify.log));

    fastify.setErrorHandler(async (err: Error & { code?: string; statusCode?: number }, req, reply) => {
      const clientGone = req.raw.aborted || req.socket.destroyed;
      const { error: e, log } = mapError(err, { unrouted: req.is404, draining: fastify.kit.draining, clientGone });
      if (log === 'error') req.log.error({ err }, 'unhandled error');
      else if (log === 'info') req.log.info({ reason: err.message, code: err.code }, 'client closed the request before it was read');
      // A dependency outage answers every affected request with 503; the dependency's own
      // client logs the outage once, so these are debug lines, not a flood of warnings.
      if (e.status >= 500 && e.code !== 'INTERNAL') req.log.debug({ code: e.code }, e.message);
      if (e.code === 'PAYLOAD_TOO_LARGE' && !req.raw.complete) {
        await drain(req.raw);
        reply.header('connection', 'close');
      }
      // An error answers one caller at one moment (a refusal may depend on their session
      // before the route read it: a taken email, a rate limit), so no cache may keep it.
      reply.header('cache-control', SESSION_CACHE_CONTROL);
      return reply.status(e.status).headers(e.headers).send(e.toBody());
    });

    fastify.setNotFoundHandler(async (req, reply) => {
      const url = req.url;
      if (url.startsWith('/api/') || url === '/api' || !opts.notFoundPage || req.method !== 'GET') {
        return reply.status(404).send(new LadderError('NOT_FOUND', `No route ${req.method} ${url.slice(0, 200)}.`).toBody());
      }
      return reply.status(404).headers(HTML_HEADERS).send(opts.notFoundPage(req));
    });
  },
  { name: 'ladder-errors', dependencies: ['ladder-kit'] },
);
