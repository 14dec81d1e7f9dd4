// Plugin `ladder-security-headers`: the standard headers on every response, HSTS when the
// caller came over HTTPS, and `connection: close` while draining so keep-alive clients
// move on (to another server, behind a balancer) instead of holding this one open.
// Hooks run on every request, the redirect included, so this one is a plain callback.
import fp from 'fastify-plugin';
import { SECURITY_HEADERS } from './security-headers.ts';

export const securityHeadersPlugin = fp(
  async (fastify) => {
    const kit = fastify.kit;
    fastify.addHook('onRequest', (req, reply, done) => {
      reply.headers(SECURITY_HEADERS);
      if (req.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
      if (kit.draining) reply.header('connection', 'close');
      done();
    });
  },
  { name: 'ladder-security-headers', dependencies: ['ladder-kit'] },
);
