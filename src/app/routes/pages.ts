// The HTML pages: /, /signup, /login, /dashboard (your links with click counts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LadderError } from '../../kit/errors.ts';
import { findUserById, listOwnLinks } from '../domain/links-repo.ts';
import { dashboardPage, homePage, loginPage, signupPage } from '../views/pages.ts';
import { shortUrl } from './links.ts';

async function currentUser(req: FastifyRequest): Promise<{ id: number; email: string } | undefined> {
  const s = await req.session.get();
  if (!s) return undefined;
  const u = await findUserById(req.db, s.userId);
  return u ? { id: Number(u.id), email: u.email } : undefined;
}

function html(reply: FastifyReply, body: string) {
  return reply.type('text/html; charset=utf-8').header('cache-control', 'private, no-store').send(body);
}

export async function pageRoutes(app: FastifyInstance): Promise<void> {
  app.get('/', async (req, reply) => html(reply, homePage(await currentUser(req))));
  app.get('/signup', async (req, reply) => html(reply, signupPage(await currentUser(req))));
  app.get('/login', async (req, reply) => html(reply, loginPage(await currentUser(req))));
  app.get('/dashboard', async (req, reply) => {
    const user = await currentUser(req);
    if (!user) return reply.redirect('/login', 303);
    const q = req.query as { cursor?: unknown };
    let after: { createdAt: string; id: string } | undefined;
    if (typeof q.cursor === 'string') {
      const m = /^(.+)\|(\d{1,19})$/.exec(Buffer.from(q.cursor.slice(0, 100), 'base64url').toString());
      if (!m || Number.isNaN(Date.parse(m[1]!))) throw new LadderError('VALIDATION_FAILED', 'cursor is not valid.');
      after = { createdAt: m[1]!, id: m[2]! };
    }
    const rows = await listOwnLinks(req.db, user.id, 51, after);
    const page = rows.slice(0, 50);
    const last = page[page.length - 1];
    const next = rows.length > 50 && last ? Buffer.from(`${last.created_at.toISOString()}|${last.id}`).toString('base64url') : null;
    const links = page.map((r) => ({
      code: r.code,
      url: r.url,
      shortUrl: shortUrl(req, r.code),
      createdAt: r.created_at.toISOString(),
      clicks: Number(r.clicks ?? 0),
    }));
    return html(reply, dashboardPage(user, links, next));
  });
}
