// Request ids: a client's own X-Request-Id when it is short and plain (for correlation
// across a balancer), else a random prefix per process and a counter, unique across a
// fleet for logs and cheaper than a UUID per request on the hot path.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** What a client-given id may look like: bounded, no spaces or control characters. */
export const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

const ID_PREFIX = randomBytes(6).toString('base64url');
let idCounter = 0;

export const nextRequestId = (): string => `${ID_PREFIX}-${(++idCounter).toString(36)}`;

/** Fastify's genReqId: the client's id if acceptable, else a fresh one. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : nextRequestId();
}
