// A whole HTTP/1.1 response as text, for the answers that never pass through Fastify: a
// request Node's parser refused, CONNECT (written straight to the socket), and HAProxy's own
// errorfiles. The catalogue's JSON error with the security headers, uncacheable, closing the
// connection.
import { STATUS_CODES } from 'node:http';
import { SECURITY_HEADERS } from '../security/security-headers.ts';
import type { LadderError } from '../errors.ts';

/** `status`: the error's own, unless the sender answers another (a balancer's 502/504 is SERVICE_UNAVAILABLE). */
export function rawErrorResponse(error: LadderError, status: number = error.status): string {
  const body = JSON.stringify(error.toBody());
  const headers = Object.entries({
    ...SECURITY_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    connection: 'close',
  }).map(([name, value]) => `${name}: ${value}\r\n`);
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${headers.join('')}\r\n${body}`;
}
