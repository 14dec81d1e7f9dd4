// The HTML pages: /, /signup, /login, /dashboard (your links with click counts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { findUserById } from '../domain/links-repo.ts';
import { dashboardPage, homePage, loginPage, signupPage } from '../views/pages.ts';
import { listPage } from './links.ts';
import { decodeCursor } from '../domain/cursor.ts';
import { HTML_HEADERS } from '../../kit/security/security-headers.ts';

const DASHBOARD_PAGE = 50;

async function currentUser(req: FastifyRequest): Promise<{ id: number; email: string } | undefined> {
  const s = await req.session.get();
  if (!s) return undefined;
  const u = await findUserById(req.db, s.userId);
  return u ? { id: Number(u.id), email: u.email } : undefined;
}

function html(reply: FastifyReply, body: string) {
  return reply.headers(HTML_HEADERS).header('cache-control', 'private, no-store').send(body);
}

export async function pageRoutes(app: FastifyInstance): Promise<void> {
  app.get('/', async (req, reply) => html(reply, homePage(await currentUser(req))));
  // Someone already logged in has nothing to do on these pages.
  app.get('/signup', async (req, reply) =>
    (await currentUser(req)) ? reply.redirect('/dashboard', 303) : html(reply, signupPage(undefined)),
  );
  app.get('/login', async (req, reply) =>
    (await currentUser(req)) ? reply.redirect('/dashboard', 303) : html(reply, loginPage(undefined)),
  );
  app.get<{ Querystring: { cursor?: unknown } }>('/dashboard', async (req, reply) => {
    const user = await currentUser(req);
    if (!user) return reply.redirect('/login', 303);
    // Only a hand-edited URL carries a bad cursor (the page's own links carry good ones): 400.
    const after = decodeCursor(req.query.cursor);
    const { items, nextCursor } = await listPage(req, user.id, DASHBOARD_PAGE, after);
    return html(reply, dashboardPage(user, items, nextCursor));
  });
}
