// Links, the application: routes, the click consumer, and the migrations folder.
// It knows no topology: everything outside the process comes through the kit.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { fileURLToPath } from 'node:url';
import type { MemberSource } from '../kit/cache/cache-tier.ts';
import { dbFor, type Database, type Db } from '../kit/db/database.ts';
import type { Consumer } from '../kit/queue/queue.ts';
import { assets } from './assets.ts';
import { CODES_FILTER, addClicks, codesAfter } from './domain/links-repo.ts';
import { authRoutes } from './routes/auth.ts';
import { linkRoutes } from './routes/links.ts';
import { pageRoutes } from './routes/pages.ts';
import { redirectRoutes } from './routes/redirect.ts';
import { notFoundPage as renderNotFound } from './views/pages.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
/** Rung 10: what a shard cluster's database adds to MIGRATIONS_DIR (links sharded, users elsewhere). */
export const SHARD_MIGRATIONS_DIR = fileURLToPath(new URL('./migrations-shard/', import.meta.url));

export async function linksApp(app: FastifyInstance): Promise<void> {
  const { cdnBaseUrl, assetArchiveDir } = app.kit.config;
  assets.configure({ baseUrl: cdnBaseUrl, archiveDir: assetArchiveDir });
  assets.register(app);
  await app.register(authRoutes);
  await app.register(linkRoutes);
  await app.register(pageRoutes);
  await app.register(redirectRoutes);
}

/** Sets the cache keeps a membership filter of (rung 5), and how to list their members. */
export const cacheFilters: Record<string, MemberSource> = { [CODES_FILTER]: codesAfter };

export const notFoundPage = (req: FastifyRequest) => renderNotFound(req);

/** Click counting: clicks on the same link and day are merged, then added in one statement. */
export function clickConsumer(database: Database): Consumer {
  return {
    // Merged by (day, link): both strings the message already holds (the link id is the
    // cached link's own), so counting a click builds no string.
    key: (m) => String(m.linkId),
    group: (m) => String(m.day),
    handle: async (batch) => {
      const clicks = batch.map((e) => ({ linkId: String(e.message.linkId), day: String(e.message.day), count: e.count }));
      // Rung 10: each link's clicks go to its shard (named by its id); below, one group.
      const byShard = new Map<Db, typeof clicks>();
      for (const c of clicks) {
        const shard = dbFor(database, { linkId: c.linkId });
        const group = byShard.get(shard);
        if (group) group.push(c);
        else byShard.set(shard, [c]);
      }
      await Promise.all([...byShard].map(([shard, group]) => shard.tx((tx) => addClicks(tx, group))));
    },
  };
}
