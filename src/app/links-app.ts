// Links, the application: routes, the click consumer, and the migrations folder.
// It knows no topology: everything outside the process comes through the kit.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { fileURLToPath } from 'node:url';
import type { MemberSource } from '../kit/cache/cache-tier.ts';
import { dbFor, type Database } from '../kit/db/database.ts';
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
      if (!database.sharded) {
        await database.tx((tx) => addClicks(tx, clicks));
        return;
      }
      // Rung 10: each link's clicks go to its cluster (named by its id), one transaction per
      // cluster. A group that fails is grouped again (a move may have split it) and retried;
      // if it still fails, the groups already added are zeroed in the batch before it goes back
      // to the buffer, so no click is added twice.
      let pending = batch.map((e, i) => ({ entry: e, click: clicks[i]! }));
      for (let attempt = 0; pending.length > 0; attempt++) {
        const byShard = new Map<string, typeof pending>();
        for (const p of pending) {
          const shard = dbFor(database, { linkId: p.click.linkId }).shardName ?? '';
          const group = byShard.get(shard);
          if (group) group.push(p);
          else byShard.set(shard, [p]);
        }
        const failed: typeof pending = [];
        let error: unknown;
        await Promise.all(
          [...byShard.values()].map(async (group) => {
            try {
              await dbFor(database, { linkIds: group.map((p) => p.click.linkId) }).tx((tx) => addClicks(tx, group.map((p) => p.click)));
              for (const p of group) p.entry.count = 0;
            } catch (err) {
              error = err;
              failed.push(...group);
            }
          }),
        );
        pending = failed;
        if (pending.length > 0 && attempt >= 2) throw error;
        if (pending.length > 0) await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
