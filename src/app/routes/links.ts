// The link API: create, list (cursor pagination, newest first), get, edit, delete, stats.
// Only the owner sees a link; anyone else gets the same 404 as for a missing one.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LadderError } from '../../kit/errors.ts';
import { checkChosenCode, generateCode, isCodeShaped } from '../domain/codes.ts';
import { objectBody } from '../domain/input.ts';
import {
  CODES_FILTER,
  linkKey,
  dailyClicks,
  deleteLink,
  findOwnLink,
  insertLink,
  listOwnLinks,
  updateLinkUrl,
  type LinkRow,
} from '../domain/links-repo.ts';
import { checkTargetUrl } from '../domain/urls.ts';
import { createLinkSchema, editLinkSchema, linkSchema, listLinksSchema } from './schemas.ts';
import { decodeCursor, encodeCursor, type Cursor } from '../domain/cursor.ts';
import { linkPageKey } from './surrogate-keys.ts';

export function shortUrl(req: FastifyRequest, code: string): string {
  const { protocol, host } = req.origin();
  return `${protocol}://${host}/${code}`;
}

/**
 * Hosts under which this service is reached: a link may not point at them (loopback and
 * localhost names are refused whatever these are: domain/urls.ts).
 */
export function selfHosts(req: FastifyRequest): string[] {
  const { publicUrl } = req.server.kit.config;
  const hosts = [req.origin().host];
  if (req.headers.host) hosts.push(req.headers.host);
  if (req.socket.localAddress) hosts.push(req.socket.localAddress.includes(':') ? `[${req.socket.localAddress}]` : req.socket.localAddress);
  if (publicUrl) hosts.push(new URL(publicUrl).host);
  return hosts;
}

function linkJson(req: FastifyRequest, row: LinkRow, withClicks: boolean) {
  return {
    code: row.code,
    url: row.url,
    shortUrl: shortUrl(req, row.code),
    createdAt: row.created_at.toISOString(),
    ...(withClicks ? { clicks: Number(row.clicks ?? 0) } : {}),
  };
}

type CodeRoute = { Params: { code: string } };

function codeParam(req: FastifyRequest<CodeRoute>): string {
  const { code } = req.params;
  if (!isCodeShaped(code)) throw new LadderError('NOT_FOUND', 'No such link.');
  return code;
}

function parseLimit(raw: unknown): number {
  if (raw === undefined || raw === '') return 20;
  const n = typeof raw === 'string' && /^\d{1,3}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 100) {
    throw new LadderError('VALIDATION_FAILED', 'limit must be an integer from 1 to 100.', { details: { field: 'limit' } });
  }
  return n;
}

/** One page of the caller's links, newest first, shared by the API and the dashboard. */
export async function listPage(
  req: FastifyRequest,
  userId: number,
  limit: number,
  after: Cursor | undefined,
) {
  const rows = await listOwnLinks(req.db, userId, limit + 1, after);
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => ({ ...linkJson(req, r, false), clicks: Number(r.clicks ?? 0) })),
    nextCursor: rows.length > limit && last ? encodeCursor(last.created_at, last.id) : null,
  };
}

const CODE_ATTEMPTS = 5;

/**
 * Inserts a link and tells the cache: the code joins the codes filter before the insert
 * (so no lookup is ever told it does not exist once it does) and again after it (in case
 * the cache started a new generation meanwhile), and a cached "no such code" is dropped.
 */
async function insertAnnounced(req: FastifyRequest, code: string, url: string, userId: number): Promise<LinkRow | undefined> {
  await req.cache.addMember(CODES_FILTER, code);
  const row = await insertLink(req.db, code, url, userId, req.outbox);
  if (row) {
    await req.cache.addMember(CODES_FILTER, code);
    await req.cache.invalidate(linkKey(code));
    await req.edge.purge([linkPageKey(code)]); // its preview was a public 404 until now
  }
  return row;
}

export async function linkRoutes(app: FastifyInstance): Promise<void> {
  app.post('/api/links', { schema: createLinkSchema, config: { auth: true, rateLimit: 'createLink' } }, async (req, reply) => {
    const userId = await req.session.requireUser();
    const body = objectBody(req.body, ['url', 'code']);
    if (body.url === undefined) throw new LadderError('VALIDATION_FAILED', 'url is required.', { details: { field: 'url' } });
    const url = checkTargetUrl(body.url, selfHosts(req));
    const chosen = body.code === undefined || body.code === null ? undefined : checkChosenCode(body.code);
    let row: LinkRow | undefined;
    if (chosen) {
      row = await insertAnnounced(req, chosen, url, userId);
      if (!row) throw new LadderError('CODE_TAKEN');
    } else {
      // A collision among 2.2e14 codes is rare; retry a few times rather than fail.
      for (let i = 0; i < CODE_ATTEMPTS && !row; i++) row = await insertAnnounced(req, generateCode(), url, userId);
      if (!row) throw new LadderError('INTERNAL', 'Could not allocate a code.');
    }
    return reply.status(201).send(linkJson(req, row, false));
  });

  app.get<{ Querystring: { limit?: string; cursor?: string } }>('/api/links', { schema: listLinksSchema, config: { auth: true } }, async (req) => {
    const userId = await req.session.requireUser();
    return listPage(req, userId, parseLimit(req.query.limit), decodeCursor(req.query.cursor));
  });

  app.get<CodeRoute>('/api/links/:code', { schema: linkSchema, config: { auth: true } }, async (req) => {
    const userId = await req.session.requireUser();
    const row = await findOwnLink(req.db, codeParam(req), userId);
    if (!row) throw new LadderError('NOT_FOUND', 'No such link.');
    return linkJson(req, row, true);
  });

  app.patch<CodeRoute>('/api/links/:code', { schema: editLinkSchema, config: { auth: true } }, async (req) => {
    const userId = await req.session.requireUser();
    const code = codeParam(req);
    const body = objectBody(req.body, ['url']);
    if (body.url === undefined) throw new LadderError('VALIDATION_FAILED', 'url is required.', { details: { field: 'url' } });
    const url = checkTargetUrl(body.url, selfHosts(req));
    const row = await updateLinkUrl(req.db, code, userId, url, req.outbox);
    if (!row) throw new LadderError('NOT_FOUND', 'No such link.');
    await req.cache.invalidate(linkKey(code));
    await req.edge.purge([linkPageKey(code)]);
    return linkJson(req, row, true);
  });

  app.delete<CodeRoute>('/api/links/:code', { schema: linkSchema, config: { auth: true } }, async (req, reply) => {
    const userId = await req.session.requireUser();
    const code = codeParam(req);
    if (!(await deleteLink(req.db, code, userId, req.outbox))) throw new LadderError('NOT_FOUND', 'No such link.');
    await req.cache.invalidate(linkKey(code));
    await req.edge.purge([linkPageKey(code)]);
    return reply.status(204).send();
  });

  app.get<CodeRoute>('/api/links/:code/stats', { schema: linkSchema, config: { auth: true } }, async (req) => {
    const userId = await req.session.requireUser();
    const row = await findOwnLink(req.db, codeParam(req), userId);
    if (!row) throw new LadderError('NOT_FOUND', 'No such link.');
    const daily = await dailyClicks(req.db, row.id);
    return {
      code: row.code,
      clicks: Number(row.clicks ?? 0),
      daily: daily.reverse().map((d) => ({ day: d.day, clicks: Number(d.clicks) })),
    };
  });
}
