// The bad-input table: each case gets its documented JSON error, never a 500, and no
// partial write.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, signedUpClient, startTestServer, type TestServer } from '../support/app.ts';

let server: TestServer;
let user: Client;
beforeAll(async () => {
  server = await startTestServer();
  user = await signedUpClient(server.url);
});
afterAll(async () => server.close());

async function linkCount(): Promise<number> {
  return Number((await server.sql<{ n: string }>('select count(*) as n from links'))[0]!.n);
}

type Case = [name: string, body: unknown, status: number, code: string, headers?: Record<string, string>];

const createCases: Case[] = [
  ['invalid JSON', '{"url": ', 400, 'BAD_JSON'],
  ['JSON that is not an object', '[1,2]', 400, 'VALIDATION_FAILED'],
  ['empty body', '', 400, 'VALIDATION_FAILED'],
  ['missing url', {}, 400, 'VALIDATION_FAILED'],
  ['url of the wrong type', { url: 42 }, 400, 'INVALID_URL'],
  ['unknown field', { url: 'https://example.com', admin: true }, 400, 'VALIDATION_FAILED'],
  ['javascript: URL', { url: 'javascript:alert(1)' }, 400, 'INVALID_URL'],
  ['data: URL', { url: 'data:text/html,<script>alert(1)</script>' }, 400, 'INVALID_URL'],
  ['file: URL', { url: 'file:///etc/passwd' }, 400, 'INVALID_URL'],
  ['ftp: URL', { url: 'ftp://example.com/x' }, 400, 'INVALID_URL'],
  ['relative URL', { url: '/just/a/path' }, 400, 'INVALID_URL'],
  ['URL with spaces', { url: 'https://exa mple.com/' }, 400, 'INVALID_URL'],
  ['URL with credentials', { url: 'https://user:pw@example.com/' }, 400, 'INVALID_URL'],
  ['URL longer than 2048', { url: `https://example.com/${'a'.repeat(2040)}` }, 400, 'INVALID_URL'],
  ['code too short', { url: 'https://example.com', code: 'ab' }, 400, 'INVALID_CODE'],
  ['code too long', { url: 'https://example.com', code: 'a'.repeat(33) }, 400, 'INVALID_CODE'],
  ['code with bad characters', { url: 'https://example.com', code: 'ab/cd' }, 400, 'INVALID_CODE'],
  ['code with unicode', { url: 'https://example.com', code: 'héllo' }, 400, 'INVALID_CODE'],
  ['SQL in code', { url: 'https://example.com', code: "x'; drop table links;--" }, 400, 'INVALID_CODE'],
  ['code of the wrong type', { url: 'https://example.com', code: 123 }, 400, 'INVALID_CODE'],
  ['reserved code api', { url: 'https://example.com', code: 'api' }, 400, 'INVALID_CODE'],
  ['reserved code dashboard', { url: 'https://example.com', code: 'Dashboard' }, 400, 'INVALID_CODE'],
  ['reserved code healthz', { url: 'https://example.com', code: 'healthz' }, 400, 'INVALID_CODE'],
  ['reserved code static', { url: 'https://example.com', code: 'static' }, 400, 'INVALID_CODE'],
  ['wrong content type', 'url=https://example.com', 415, 'UNSUPPORTED_MEDIA_TYPE', { 'content-type': 'application/x-www-form-urlencoded' }],
  ['text/plain', '{"url":"https://example.com"}', 415, 'UNSUPPORTED_MEDIA_TYPE', { 'content-type': 'text/plain' }],
  ['oversized body', { url: `https://example.com/${'a'.repeat(20_000)}` }, 413, 'PAYLOAD_TOO_LARGE'],
];

describe('POST /api/links refuses bad input', () => {
  it.each(createCases)('%s', async (_name, body, status, code, headers) => {
    const before = await linkCount();
    const res = await user.req('POST', '/api/links', body, headers);
    expect(res.status).toBe(status);
    expect(res.json.error.code).toBe(code);
    expect(typeof res.json.error.message).toBe('string');
    expect(await linkCount()).toBe(before);
  });

  it('refuses a URL pointing back at this service', async () => {
    const before = await linkCount();
    for (const url of [`${server.url}/abc`, `http://localhost:${new URL(server.url).port}/x`]) {
      const res = await user.post('/api/links', { url });
      expect(res.status).toBe(400);
      expect(res.json.error.code).toBe('INVALID_URL');
    }
    expect(await linkCount()).toBe(before);
  });
});

describe('other routes refuse bad input', () => {
  it('signup: bad email, short password, duplicate email', async () => {
    const anon = new Client(server.url);
    expect((await anon.post('/api/signup', { email: 'not-an-email', password: 'long enough pw' })).json.error.code).toBe('VALIDATION_FAILED');
    expect((await anon.post('/api/signup', { email: 'a@example.com', password: 'short' })).json.error.code).toBe('VALIDATION_FAILED');
    expect((await anon.post('/api/signup', { email: 'a@example.com' })).status).toBe(400);
    expect((await anon.post('/api/signup', '{bad')).json.error.code).toBe('BAD_JSON');
    const email = `dup-${Date.now()}@example.com`;
    expect((await anon.post('/api/signup', { email, password: 'long enough pw' })).status).toBe(201);
    const dup = await new Client(server.url).post('/api/signup', { email: email.toUpperCase(), password: 'another long pw' });
    expect(dup.status).toBe(409);
    expect(dup.json.error.code).toBe('EMAIL_TAKEN');
    expect(await server.sql('select id from users where lower(email) = $1', [email])).toHaveLength(1);
  });

  it('login: wrong password and unknown email are the same 401', async () => {
    const anon = new Client(server.url);
    const a = await anon.post('/api/login', { email: 'nobody@example.com', password: 'whatever123' });
    expect(a.status).toBe(401);
    expect(a.json.error.code).toBe('INVALID_CREDENTIALS');
    expect(anon.cookie).toBeUndefined();
  });

  it('PATCH with a bad URL changes nothing', async () => {
    const { json } = await user.post('/api/links', { url: 'https://example.com/keep' });
    const res = await user.patch(`/api/links/${json.code}`, { url: 'javascript:alert(1)' });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('INVALID_URL');
    expect((await user.get(`/api/links/${json.code}`)).json.url).toBe('https://example.com/keep');
  });

  it('list: bad limit and cursor', async () => {
    for (const q of ['limit=0', 'limit=101', 'limit=abc', 'limit=-1', 'cursor=%%%', 'cursor=bm90LWEtY3Vyc29y']) {
      const res = await user.get(`/api/links?${q}`);
      expect(res.status).toBe(400);
      expect(res.json.error.code).toBe('VALIDATION_FAILED');
    }
  });

  it('unknown API route and method: JSON 404', async () => {
    const res = await user.get('/api/nope');
    expect(res.status).toBe(404);
    expect(res.json.error.code).toBe('NOT_FOUND');
    expect((await user.req('PUT', '/api/links/abc', { url: 'https://example.com' })).status).toBe(404);
  });

  it('hostile codes in the path are 404s, never 500s', async () => {
    for (const path of ['/%00', '/a%27%20or%201=1', `/${'x'.repeat(300)}`, '/..%2f..%2fetc', '/%E2%80%AE']) {
      const res = await fetch(server.url + path, { redirect: 'manual' });
      expect(res.status).toBeLessThan(500);
      expect([400, 404]).toContain(res.status);
    }
    for (const path of ['/api/links/%00', `/api/links/${'x'.repeat(300)}`]) {
      expect((await user.get(path)).status).toBeLessThan(500);
    }
  });
});
