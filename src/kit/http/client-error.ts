// Requests Node's HTTP parser refuses before Fastify sees them (a method it does not know,
// a malformed request line or header, headers over the size limit, a body that never
// arrives): answered in the catalogue's shape, 400 VALIDATION_FAILED, like every other
// refusal, instead of Fastify's own JSON. The answer is ended, not destroyed with the
// socket, so it reaches the client instead of a reset.
import type { Duplex } from 'node:stream';
import { LadderError } from '../errors.ts';
import { rawErrorResponse } from './raw-response.ts';

const MESSAGES: Record<string, string> = {
  HPE_HEADER_OVERFLOW: 'The request headers are too large.',
  ERR_HTTP_REQUEST_TIMEOUT: 'The request took too long to arrive.',
  HPE_INVALID_METHOD: 'Unknown method.',
};

/** How long a refused client may take to read the answer before its socket is closed. */
const LINGER_MS = 2_000;

export function answerClientError(
  err: Error & { code?: string },
  socket: Duplex,
  log: { debug(obj: object, msg: string): void },
): void {
  log.debug({ code: err.code, reason: err.message }, 'malformed request refused');
  // A reset connection has no one to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(rawErrorResponse(new LadderError('VALIDATION_FAILED', MESSAGES[err.code ?? ''] ?? 'Malformed request.')));
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
