import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, signedUpClient, startTestServer, uniqueEmail, type TestServer } from '../support/app.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({
    rateLimits: {
      signup: { limit: 5, windowMs: 60_000 },
      login: { limit: 5, windowMs: 60_000 },
      createLink: { limit: 5, windowMs: 60_000 },
    },
  });
});
afterAll(async () => server.close());

describe('security', () => {
  it('stores passwords as argon2id at OWASP parameters, never in clear', async () => {
    const c = new Client(server.url);
    const email = uniqueEmail();
    await c.post('/api/signup', { email, password: 'correct horse battery' });
    const [row] = await server.sql<{ password_hash: string }>('select password_hash from users where email = $1', [email]);
    expect(row!.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(row!.password_hash).not.toContain('correct horse');
  });

  it('session cookie is HttpOnly and SameSite=Lax, signed, and rotates on login', async () => {
    const c = new Client(server.url);
    const email = uniqueEmail();
    const res = await c.post('/api/signup', { email, password: 'correct horse battery' });
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).not.toMatch(/Secure/); // plain HTTP here; Secure behind HTTPS
    const before = c.cookie!;
    await c.post('/api/login', { email, password: 'correct horse battery' });
    expect(c.cookie).not.toBe(before);
    const old = new Client(server.url);
    old.cookie = before;
    expect((await old.get('/api/me')).status).toBe(401);
    // A forged (unsigned or tampered) session id is refused.
    const forged = new Client(server.url);
    forged.cookie = c.cookie!.replace(/.$/, (ch) => (ch === 'A' ? 'B' : 'A'));
    expect((await forged.get('/api/me')).status).toBe(401);
  });

  it('sets a Secure cookie when the request came over HTTPS through a trusted proxy', async () => {
    const tls = await startTestServer({ trustProxy: ['127.0.0.1'] });
    try {
      const res = await new Client(tls.url).post(
        '/api/signup',
        { email: uniqueEmail(), password: 'correct horse battery' },
        { 'x-forwarded-proto': 'https' },
      );
      expect(res.status).toBe(201);
      expect(res.headers.get('set-cookie')).toMatch(/; Secure/);
      expect(res.headers.get('strict-transport-security')).toMatch(/max-age=/);
    } finally {
      await tls.close();
    }
  });

  it('refuses unsafe cross-site requests (Origin or Referer of another site) with 403', async () => {
    const c = await signedUpClient(server.url);
    const evil = await c.post('/api/links', { url: 'https://example.com/x' }, { origin: 'https://evil.example' });
    expect(evil.status).toBe(403);
    expect(evil.json.error.code).toBe('FORBIDDEN_ORIGIN');
    const evilRef = await c.post('/api/logout', undefined, { referer: 'https://evil.example/page' });
    expect(evilRef.status).toBe(403);
    expect((await c.get('/api/me')).status).toBe(200); // logout did not happen
    const nullOrigin = await c.post('/api/links', { url: 'https://example.com/x' }, { origin: 'null' });
    expect(nullOrigin.status).toBe(403);
    const same = await c.post('/api/links', { url: 'https://example.com/y' }, { origin: server.url });
    expect(same.status).toBe(201);
    const sameRef = await c.post('/api/links', { url: 'https://example.com/z' }, { referer: `${server.url}/dashboard` });
    expect(sameRef.status).toBe(201);
  });

  it('rate-limits signup, login and link creation per IP with 429 and Retry-After', async () => {
    const anon = new Client(server.url);
    const attempt = () => anon.post('/api/login', { email: 'x@example.com', password: 'wrong-password' });
    let last = await attempt();
    for (let i = 0; i < 6; i++) last = await attempt();
    expect(last.status).toBe(429);
    expect(last.json.error.code).toBe('RATE_LIMITED');
    expect(Number(last.headers.get('retry-after'))).toBeGreaterThan(0);

    const limited = await startTestServer({
      rateLimits: {
        signup: { limit: 2, windowMs: 60_000 },
        login: { limit: 100, windowMs: 60_000 },
        createLink: { limit: 2, windowMs: 60_000 },
      },
    });
    try {
      const a = await signedUpClient(limited.url);
      await signedUpClient(limited.url);
      const third = await new Client(limited.url).post('/api/signup', { email: uniqueEmail(), password: 'long enough pw' });
      expect(third.status).toBe(429);
      expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
      const users = await limited.sql('select id from users');
      expect(users).toHaveLength(2);
      for (let i = 0; i < 2; i++) expect((await a.post('/api/links', { url: 'https://example.com' })).status).toBe(201);
      const over = await a.post('/api/links', { url: 'https://example.com' });
      expect(over.status).toBe(429);
      expect(await limited.sql('select id from links')).toHaveLength(2);
    } finally {
      await limited.close();
    }
  });

  it('sends security headers on API, pages and redirects; only HTML gets the page policy', async () => {
    const owner = await signedUpClient(server.url);
    const created = await owner.post('/api/links', { url: 'https://example.com/headers' });
    expect(created.status).toBe(201);
    const code = (created.json as { code: string }).code;
    const cases: [path: string, status: number, policy: RegExp][] = [
      ['/', 200, /^default-src 'self'; script-src 'self'; .*frame-ancestors 'none'/],
      ['/no-such-code', 404, /^default-src 'self'; script-src 'self'; .*frame-ancestors 'none'/],
      // Not a page: loads nothing, never framed.
      ['/api/me', 401, /^default-src 'none'; frame-ancestors 'none'$/],
      ['/healthz', 200, /^default-src 'none'; frame-ancestors 'none'$/],
      [`/${code}`, 302, /^default-src 'none'; frame-ancestors 'none'$/],
    ];
    for (const [path, status, policy] of cases) {
      const res = await fetch(server.url + path, { redirect: 'manual' });
      await res.arrayBuffer();
      expect(res.status, path).toBe(status);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
      expect(res.headers.get('content-security-policy'), path).toMatch(policy);
      expect(res.headers.get('referrer-policy'), path).toBeTruthy();
    }
  });

  it('echoes a well-formed request id and replaces a hostile one', async () => {
    const ok = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'abc-123' } });
    expect(ok.headers.get('x-request-id')).toBe('abc-123');
    const bad = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'x'.repeat(200) } });
    expect(bad.headers.get('x-request-id')).not.toBe('x'.repeat(200));
  });
});
