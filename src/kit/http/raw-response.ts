// A whole HTTP/1.1 response written straight to a socket, for the requests that never reach
// Fastify (a line Node's parser refused, CONNECT): the catalogue's JSON error with the
// security headers, uncacheable, closing the connection.
import { SECURITY_HEADERS } from '../security/security-headers.ts';
import type { LadderError } from '../errors.ts';

const REASONS: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found' };

export function rawErrorResponse(error: LadderError): string {
  const body = JSON.stringify(error.toBody());
  const headers = Object.entries({
    ...SECURITY_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    connection: 'close',
  }).map(([name, value]) => `${name}: ${value}\r\n`);
  return `HTTP/1.1 ${error.status} ${REASONS[error.status] ?? 'Error'}\r\n${headers.join('')}\r\n${body}`;
}
