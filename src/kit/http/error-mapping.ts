// Maps whatever reached the error handler onto the catalogue (src/kit/errors.ts), and says
// how loud the log line is. Only a bug is an error-level line with a stack: a client's
// mistake (Fastify's own 4xx errors, a request whose client went away mid-body) is a 4xx
// in the catalogue's shape, logged at most at info, so a hostile or flaky client cannot
// fill the error log.
import { LadderError, type ErrorCode } from '../errors.ts';

/** Fastify's own error codes with a catalogue meaning of their own. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_JSON',
  FST_ERR_VALIDATION: 'VALIDATION_FAILED',
};

/** Any other 4xx that Fastify raises (for example QUERY without a Content-Type), by status. */
const BY_STATUS: Record<number, ErrorCode> = {
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

export interface MappedError {
  error: LadderError;
  /** `error`: a bug (log with the stack); `info`: the client went away; `none`: a plain 4xx/503. */
  log: 'error' | 'info' | 'none';
}

export interface ErrorContext {
  /** The request matched no route: a framework refusal is then that route's 404. */
  unrouted: boolean;
  /** The process is shutting down (Fastify answers 503 to new requests). */
  draining: boolean;
  /** The client's socket is gone (it aborted or reset mid-request). */
  clientGone: boolean;
}

type ErrorLike = Error & { code?: unknown; statusCode?: unknown };

/**
 * A dependency that cannot be reached (the database refused or did not answer the
 * connection, or is starting or stopping): the catalogue's 503, not a bug. A connection
 * reset mid-statement is not among them: it stays an error with its stack.
 */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', '57P03']);
const UNREACHABLE_MESSAGE = /^(timeout exceeded when trying to connect|Connection terminated due to connection timeout)$/;

function dependencyDown(err: ErrorLike, code: string | undefined): boolean {
  return (code !== undefined && UNREACHABLE_CODES.has(code)) || UNREACHABLE_MESSAGE.test(err.message);
}

export function mapError(err: ErrorLike, ctx: ErrorContext): MappedError {
  if (err instanceof LadderError) return { error: err, log: 'none' };
  const code = typeof err.code === 'string' ? err.code : undefined;
  // A reset of our own (a database connection's) must stay an error: only a reset whose
  // client is gone is the client's doing.
  if (ctx.clientGone && (code === 'ECONNRESET' || code === 'ECONNABORTED' || code === 'ERR_STREAM_PREMATURE_CLOSE')) {
    // No one reads the answer; the status only shows in metrics.
    return { error: new LadderError('VALIDATION_FAILED', 'The client closed the request.', { cause: err }), log: 'info' };
  }
  if (dependencyDown(err, code)) {
    // Logged once per request at info: an outage would otherwise fill the error log; /readyz says it.
    return { error: new LadderError('SERVICE_UNAVAILABLE', undefined, { cause: err }), log: 'info' };
  }
  if (code && FASTIFY_CODES[code]) return { error: new LadderError(FASTIFY_CODES[code], undefined, { cause: err }), log: 'none' };
  const status = typeof err.statusCode === 'number' ? err.statusCode : undefined;
  if (status === 503 && ctx.draining) return { error: new LadderError('SERVICE_UNAVAILABLE', 'Server is shutting down.'), log: 'none' };
  if (code?.startsWith('FST_') && status !== undefined && status >= 400 && status < 500) {
    const mapped = ctx.unrouted ? 'NOT_FOUND' : (BY_STATUS[status] ?? 'VALIDATION_FAILED');
    return { error: new LadderError(mapped, mapped === 'NOT_FOUND' ? 'No such route.' : undefined, { cause: err }), log: 'none' };
  }
  return { error: new LadderError('INTERNAL', undefined, { cause: err }), log: 'error' };
}
