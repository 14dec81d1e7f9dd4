// Plugin `ladder-csrf`: an unsafe request that names another site in Origin (or Referer) is
// refused with 403 FORBIDDEN_ORIGIN before any handler runs; with SameSite=Lax session
// cookies this is the CSRF defence (docs/security.md, docs/decisions.md for why not a token).
import fp from 'fastify-plugin';
import { LadderError } from '../errors.ts';
import { isCrossSite } from './security-headers.ts';

export const csrfPlugin = fp(
  async (fastify) => {
    fastify.addHook('onRequest', (req, _reply, done) => {
      if (isCrossSite(req.method, req.headers)) return done(new LadderError('FORBIDDEN_ORIGIN'));
      done();
    });
  },
  { name: 'ladder-csrf', dependencies: ['ladder-security-headers', 'ladder-errors'] },
);
