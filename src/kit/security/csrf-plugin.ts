// Plugin `ladder-csrf`: a request whose Host is missing or not a host[:port] is refused with
// 400 (the CSRF check and absolute URLs rely on it), and an unsafe request that names another
// site in Origin (or Referer) with 403 FORBIDDEN_ORIGIN, before any handler runs; with
// SameSite=Lax session cookies this is the CSRF defence (docs/security.md; docs/decisions.md
// for why not a token).
import fp from 'fastify-plugin';
import { LadderError } from '../errors.ts';
import { acceptableHost } from '../http/host-header.ts';
import { isCrossSite } from './security-headers.ts';

export const csrfPlugin = fp(
  async (fastify) => {
    fastify.addHook('onRequest', (req, _reply, done) => {
      if (!acceptableHost(req.headers.host, req.raw.httpVersion)) {
        return done(new LadderError('VALIDATION_FAILED', 'The Host header is missing or not a valid host[:port].'));
      }
      if (isCrossSite(req.method, req.headers)) return done(new LadderError('FORBIDDEN_ORIGIN'));
      done();
    });
  },
  { name: 'ladder-csrf', dependencies: ['ladder-security-headers', 'ladder-errors'] },
);
