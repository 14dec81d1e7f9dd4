// Plugin `ladder-request-id`: every response carries its request's id (the id itself is
// chosen by Fastify's genReqId, see request-id.ts), so a client can quote it and logs join up.
import fp from 'fastify-plugin';

export const requestIdPlugin = fp(
  async (fastify) => {
    fastify.addHook('onRequest', (req, reply, done) => {
      reply.header('x-request-id', req.id);
      done();
    });
  },
  { name: 'ladder-request-id' },
);
