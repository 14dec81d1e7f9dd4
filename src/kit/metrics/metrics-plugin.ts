// Plugin `ladder-metrics`: every request's duration in http_request_duration_seconds
// {method,route,status_code} (the route's pattern, never the raw path: bounded series), and
// GET /metrics in the Prometheus text format.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export const metricsPlugin = fp(
  async (fastify: FastifyInstance) => {
    const { metrics } = fastify.kit;
    fastify.addHook('onResponse', (req, reply, done) => {
      const route = req.routeOptions.url ?? '(unmatched)';
      metrics.httpDuration.observe({ method: req.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
      done();
    });
    fastify.get('/metrics', async (_req, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    });
  },
  { name: 'ladder-metrics', dependencies: ['ladder-kit'] },
);
