// Plugin `ladder-health`: GET /healthz (the process is alive) and GET /readyz (it can serve:
// not draining and its database answers), which the balancer's health checks and the
// launcher's readiness waits use.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export const healthPlugin = fp(
  async (fastify: FastifyInstance) => {
    const kit = fastify.kit;
    fastify.get('/healthz', async () => ({ status: 'ok' }));
    fastify.get('/readyz', async (_req, reply) => {
      if (kit.draining) return reply.status(503).send({ status: 'draining' });
      if (!(await kit.database.ping())) return reply.status(503).send({ status: 'unavailable', failing: ['database'] });
      return { status: 'ready' };
    });
  },
  { name: 'ladder-health', dependencies: ['ladder-kit', 'ladder-db'] },
);
