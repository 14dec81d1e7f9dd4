// The HTML pages: /, /signup, /login, /dashboard (your links with click counts), and
// /preview/:code (where a short link goes, without following it). The anonymous views of
// /, /signup, /login and /preview/:code are public: an edge may cache them (req.edge), and
// a write purges a link's preview by its surrogate key (routes/links.ts). Everything a
// logged-in user sees is `private, no-store`.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { findUserById } from '../domain/links-repo.ts';
import { dashboardPage, homePage, loginPage, signupPage } from '../views/pages.ts';
import { listPage } from './links.ts';
import { decodeCursor } from '../domain/cursor.ts';
import { htmlHeaders } from '../../kit/security/security-headers.ts';
import { assets } from '../assets.ts';
import { isCodeShaped } from '../domain/codes.ts';
import { CODES_FILTER, findTarget, linkKey } from '../domain/links-repo.ts';
import { notFoundPage, previewPage } from '../views/pages.ts';
import { shortUrl } from './links.ts';
import { PAGE_KEY, linkPageKey } from './surrogate-keys.ts';

const DASHBOARD_PAGE = 50;

async function currentUser(req: FastifyRequest): Promise<{ id: number; email: string } | undefined> {
  const s = await req.session.get();
  if (!s) return undefined;
  const u = await findUserById(req.db, s.userId);
  return u ? { id: Number(u.id), email: u.email } : undefined;
}

/** A page: public (tagged with `keys`) for an anonymous request when keys are given, else `private, no-store`. */
function html(req: FastifyRequest, reply: FastifyReply, body: string, keys?: readonly string[]) {
  reply.headers(htmlHeaders(assets.origin));
  if (!(keys && req.edge.publicPage(reply, keys))) reply.header('cache-control', 'private, no-store');
  return reply.send(body);
}

export async function pageRoutes(app: FastifyInstance): Promise<void> {
  app.get('/', async (req, reply) => {
    const user = await currentUser(req);
    return html(req, reply, homePage(user), user ? undefined : [PAGE_KEY]);
  });
  // Someone already logged in has nothing to do on these pages.
  app.get('/signup', async (req, reply) =>
    (await currentUser(req)) ? reply.redirect('/dashboard', 303) : html(req, reply, signupPage(undefined), [PAGE_KEY]),
  );
  app.get('/login', async (req, reply) =>
    (await currentUser(req)) ? reply.redirect('/dashboard', 303) : html(req, reply, loginPage(undefined), [PAGE_KEY]),
  );
  // A link's target, shown rather than followed; a code nobody has is a public 404 too (with
  // the link's key, so that creating it purges the edge's copy).
  app.get<{ Params: { code: string } }>('/preview/:code', async (req, reply) => {
    const { code } = req.params;
    if (!isCodeShaped(code)) return html(req, reply.status(404), notFoundPage(req), [PAGE_KEY]);
    const target = await req.cache.getOrLoad(linkKey(code), async (db) => (await findTarget(db, code)) ?? null, { filter: { name: CODES_FILTER, member: code } });
    const user = await currentUser(req);
    const keys = user ? undefined : [PAGE_KEY, linkPageKey(code)];
    if (!target) return html(req, reply.status(404), notFoundPage(req), keys);
    return html(req, reply, previewPage(user, { code, url: target.url, shortUrl: shortUrl(req, code) }), keys);
  });
  app.get<{ Querystring: { cursor?: unknown } }>('/dashboard', async (req, reply) => {
    const user = await currentUser(req);
    if (!user) return reply.redirect('/login', 303);
    // Only a hand-edited URL carries a bad cursor (the page's own links carry good ones): 400.
    const after = decodeCursor(req.query.cursor);
    const { items, nextCursor } = await listPage(req, user.id, DASHBOARD_PAGE, after);
    return html(req, reply, dashboardPage(user, items, nextCursor));
  });
}
