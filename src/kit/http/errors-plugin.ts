// Plugin `ladder-errors`: every error leaves as {"error":{"code","message"}} with the status
// of its catalogue code (kit/errors.ts). Fastify's own errors (bad JSON, too large, schema
// validation) are mapped onto the catalogue here, in one place; unknown paths get the JSON
// 404, or the app's HTML 404 page for browsers.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { LadderError, type ErrorCode } from '../errors.ts';
import { HTML_HEADERS } from '../security/security-headers.ts';

/** Fastify's own error codes, mapped onto the catalogue. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_JSON',
  FST_ERR_VALIDATION: 'VALIDATION_FAILED',
};

export interface ErrorsOptions {
  /** Renders the HTML 404 page for unknown non-API GET paths. */
  notFoundPage?: (req: FastifyRequest) => string;
}

export const errorsPlugin = fp<ErrorsOptions>(
  async (fastify: FastifyInstance, opts) => {
    fastify.setErrorHandler(async (err: Error & { code?: string; statusCode?: number }, req, reply) => {
      let e: LadderError;
      if (err instanceof LadderError) e = err;
      else if (err.code && FASTIFY_CODES[err.code]) e = new LadderError(FASTIFY_CODES[err.code]!, undefined, { cause: err });
      else if (err.statusCode === 503 && fastify.kit.draining) e = new LadderError('SERVICE_UNAVAILABLE', 'Server is shutting down.');
      else {
        req.log.error({ err }, 'unhandled error');
        e = new LadderError('INTERNAL', undefined, { cause: err });
      }
      // A dependency outage answers every affected request with 503; the dependency's own
      // client logs the outage once, so these are debug lines, not a flood of warnings.
      if (e.status >= 500 && e.code !== 'INTERNAL') req.log.debug({ code: e.code }, e.message);
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
