// Plugin `ladder-queue`: `req.queue`, where handlers hand off work that must not delay the
// response (click counts), and `req.outbox`, where business writes append their events
// (rung 9). Started when the server gets ready; on close it flushes what is buffered
// (before the database closes: it is registered after `ladder-db`, and Fastify closes
// plugins in reverse order) and logs what it could not write.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Outbox } from './outbox.ts';
import type { Queue } from './queue.ts';

declare module 'fastify' {
  interface FastifyRequest {
    queue: Queue;
    /** The transactional outbox: business writes append their events in their transaction. */
    outbox: Outbox;
  }
}

export const queuePlugin = fp(
  async (fastify: FastifyInstance) => {
    const { queue } = fastify.kit;
    // One process-wide queue: a getter costs nothing per request.
    fastify.decorateRequest('queue', { getter: () => queue });
    const { outbox } = fastify.kit;
    fastify.decorateRequest('outbox', { getter: () => outbox });
    fastify.addHook('onReady', async () => queue.start());
    fastify.addHook('onClose', async () => {
      await queue.close();
      if (queue.size > 0) fastify.log.error({ lost: queue.size }, 'could not flush buffered clicks before exit');
    });
  },
  { name: 'ladder-queue', dependencies: ['ladder-kit', 'ladder-db'] },
);
