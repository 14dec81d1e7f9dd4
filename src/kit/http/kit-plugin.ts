// Plugin `ladder-kit`: the process-wide pieces every other kit plugin reads, decorated on
// the instance as `fastify.kit` (configuration, database, metrics, queue, draining flag).
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { ServerConfig } from '../config.ts';
import type { Database } from '../db/database.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Outbox } from '../queue/outbox.ts';
import type { ManagedQueue } from '../queue/queue.ts';

export interface Kit {
  config: Readonly<ServerConfig>;
  database: Database;
  metrics: Metrics;
  queue: ManagedQueue;
  /** Where business writes append their events (rung 9; off below it). */
  outbox: Outbox;
  /** True once shutdown has begun: /readyz answers 503, responses close their connection. */
  draining: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    kit: Kit;
  }
}

export const kitPlugin = fp<{ kit: Kit }>(
  async (fastify: FastifyInstance, { kit }) => {
    fastify.decorate('kit', kit);
  },
  { name: 'ladder-kit' },
);
