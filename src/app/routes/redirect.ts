// GET /:code, the hot path: one indexed lookup (from rung 5 through the cache), a 302, and a click handed to req.queue so
// the response never waits on a database write.
import type { FastifyInstance } from 'fastify';
import { isCodeShaped } from '../domain/codes.ts';
import { CODES_FILTER, findTarget, linkKey } from '../domain/links-repo.ts';
import { notFoundPage } from '../views/pages.ts';

export async function redirectRoutes(app: FastifyInstance): Promise<void> {
  app.get('/:code', async (req, reply) => {
    const { code } = req.params as { code: string };
    const target = isCodeShaped(code)
      ? await req.cache.getOrLoad(linkKey(code), async (db) => (await findTarget(db, code)) ?? null, { filter: { name: CODES_FILTER, member: code } })
      : undefined;
    if (!target) return reply.status(404).type('text/html; charset=utf-8').send(notFoundPage(req));
    if (req.method === 'GET') req.queue.publish('click', { linkId: target.id, day: new Date().toISOString().slice(0, 10) });
    return reply.status(302).header('location', target.url).header('cache-control', 'private, no-store').send();
  });
}
