// Issue 18's defects, each as an attacker would send it to the real app over real HTTP:
// every case gets its documented 4xx in the catalogue's shape, never a 500 or a reset, and
// none writes an error-level log line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogs } from '../support/log-capture.ts';
import { send, type RawRequest, type RawResponse } from '../support/raw-http.ts';
import { Client, TEST_SECRET, signedUpClient, startTestServer, uniqueEmail, type TestServer } from '../support/app.ts';

let server: TestServer;
let port: number;
let user: Client;
let logs: ReturnType<typeof captureLogs>;
beforeAll(async () => {
  server = await startTestServer({ logLevel: 'info' });
  logs = captureLogs(server.fastify.log);
  port = Number(new URL(server.url).port);
  user = await signedUpClient(server.url);
});
afterAll(async () => {
  logs.restore();
  await server.close();
});

async function raw(r: RawRequest, on = port): Promise<RawResponse> {
  const result = await send(on, r);
  if (!result.ok) throw new Error(`${r.method} ${r.path}: ${result.reset}`);
  return result.res;
}

function errorCode(res: RawResponse): string | undefined {
  return (JSON.parse(res.body) as { error?: { code?: string } }).error?.code;
}

const host = (): [string, string] => ['Host', `127.0.0.1:${port}`];

describe('defect 2: Content-Type', () => {
  it.each([
    'application/json; charset=utf-8',
    'application/json;charset=UTF-8',
    'application/json; charset="utf-8"',
    'Application/JSON',
    'application/json;',
    'application/json; foo=bar',
  ])('accepts %s', async (type) => {
    const res = await user.post('/api/links', { url: 'https://example.com/ct' }, { 'content-type': type });
    expect(res.status).toBe(201);
  });

  it.each([
    'application/json; charset=iso-8859-1',
    'application/json; charset=utf-16',
    'application/json; charset=utf-8; charset=latin1',
    'application/json-patch+json',
    'application/merge-patch+json',
    'application/vnd.api+json',
    'application/jsonx',
    'application/json garbage',
    'application/json; charset',
    'application/json; =x',
    'application/',
    '/json',
    'json',
    'text/json',
    '*/*',
  ])('refuses %s with 415', async (type) => {
    const before = await server.sql('select count(*) from links');
    const res = await user.post('/api/links', { url: 'https://example.com/ct' }, { 'content-type': type });
    expect(res.status).toBe(415);
    expect(res.json.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(await server.sql('select count(*) from links')).toEqual(before);
  });
});

describe('defect 3: no 500 an anonymous client can cause', () => {
  const badCookies = ['ladder_sid=%', 'ladder_sid=%zz', 'ladder_sid=%ff', 'ladder_sid=a%E0%A4%A', 'ladder_lsn=%; ladder_sid=%'];
  const sessionRoutes: [string, string, unknown, number][] = [
    ['GET', '/api/me', undefined, 401],
    ['GET', '/api/links', undefined, 401],
    ['POST', '/api/links', { url: 'https://example.com/c' }, 401],
    ['GET', '/api/links/abcdef', undefined, 401],
    ['PATCH', '/api/links/abcdef', { url: 'https://example.com/c' }, 401],
    ['DELETE', '/api/links/abcdef', undefined, 401],
    ['GET', '/api/links/abcdef/stats', undefined, 401],
    ['POST', '/api/logout', undefined, 204],
    ['POST', '/api/login', { email: 'nobody@example.com', password: 'whatever123' }, 401],
    ['GET', '/dashboard', undefined, 303],
    ['GET', '/login', undefined, 200],
    ['GET', '/signup', undefined, 200],
    ['GET', '/', undefined, 200],
  ];
  it.each(badCookies)('a cookie that is not percent-encoding (%s) is no session', async (cookie) => {
    for (const [method, path, body, status] of sessionRoutes) {
      const c = new Client(server.url);
      c.cookie = cookie;
      const res = await c.req(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(status);
    }
  });

  it.each(['QUERY', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'LOCK', 'UNLOCK', 'SEARCH', 'REPORT', 'PURGE', 'LINK', 'COPY', 'MOVE', 'TRACE'])(
    'an unrouted method %s is a JSON 404 in the catalogue shape',
    async (method) => {
      for (const path of ['/api/links', '/', '/abcdef', '/api/nope']) {
        const res = await raw({ method, path, headers: [host()] });
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(errorCode(res)).toBe('NOT_FOUND');
      }
      const withBody = await raw({ method, path: '/api/links', headers: [host(), ['Content-Type', 'application/json']], body: '{"x":' });
      expect(withBody.status).toBeLessThan(500);
    },
  );

  it('CONNECT gets an answer, not a closed connection', async () => {
    const res = await raw({ method: 'CONNECT', path: 'example.com:443', headers: [['Host', 'example.com:443']] });
    expect(res.status).toBe(404);
    expect(errorCode(res)).toBe('NOT_FOUND');
  });

  const cursor = (s: string) => Buffer.from(s).toString('base64url');
  const badCursors = [
    cursor('2024-02-30T00:00:00.000Z|1'),
    cursor('2023-02-29T12:00:00.000Z|1'),
    cursor('2024-13-01T00:00:00.000Z|1'),
    cursor('2024-01-01T24:00:00.000Z|1'),
    cursor('2024-01-01T23:60:00.000Z|1'),
    cursor('0000-01-01T00:00:00.000Z|1'),
    cursor('2024-01-01T00:00:00.000Z|9223372036854775808'),
    cursor('2024-01-01T00:00:00.000Z|9999999999999999999'),
  ];
  it.each(badCursors)('a cursor with an impossible date or id (%s) is 400 on /api/links and /dashboard', async (c) => {
    const api = await user.get(`/api/links?cursor=${c}`);
    expect(api.status).toBe(400);
    expect(api.json.error.code).toBe('VALIDATION_FAILED');
    const page = await user.get(`/dashboard?cursor=${c}`);
    expect(page.status).toBe(400);
    expect(page.json.error.code).toBe('VALIDATION_FAILED');
  });

  it('a cursor at the real bounds still pages', async () => {
    const res = await user.get(`/api/links?cursor=${cursor('2999-12-31T23:59:59.999Z|9223372036854775807')}`);
    expect(res.status).toBe(200);
  });

  it('a NUL byte in an email, a password or a URL is 400, and writes nothing', async () => {
    const users = await server.sql('select count(*) from users');
    const anon = new Client(server.url);
    const cases: [string, unknown, string][] = [
      ['/api/signup', { email: 'a\u0000b@example.com', password: 'long enough pw' }, 'VALIDATION_FAILED'],
      ['/api/signup', { email: uniqueEmail(), password: 'long enough\u0000pw' }, 'VALIDATION_FAILED'],
      ['/api/signup', { email: `${uniqueEmail()}\u0000`, password: 'long enough pw' }, 'VALIDATION_FAILED'],
      ['/api/login', { email: 'a\u0000b@example.com', password: 'long enough pw' }, 'VALIDATION_FAILED'],
      ['/api/login', { email: 'a@example.com', password: '\u0000' }, 'VALIDATION_FAILED'],
    ];
    for (const [path, body, code] of cases) {
      const res = await anon.post(path, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.error.code).toBe(code);
    }
    expect(await server.sql('select count(*) from users')).toEqual(users);
    const res = await user.post('/api/links', { url: 'https://example.com/a\u0000b' });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('INVALID_URL');
  });
});

describe('defect 4: a link may not point back at the service in any spelling', () => {
  it('refuses loopback, unspecified and localhost hosts', async () => {
    const before = await server.sql('select count(*) from links');
    for (const url of [
      `http://0.0.0.0:${port}/`,
      `http://[::ffff:127.0.0.1]:${port}/`,
      `http://a.localhost:${port}/`,
      `http://[::]:${port}/x`,
      `http://0x7f.1:${port}/x`,
      `http://2130706433:${port}/x`,
      `http://127.0.0.2:${port}/x`,
      `http://LOCALHOST.:${port}/x`,
    ]) {
      const res = await user.post('/api/links', { url });
      expect(res.status, url).toBe(400);
      expect(res.json.error.code).toBe('INVALID_URL');
    }
    expect(await server.sql('select count(*) from links')).toEqual(before);
  });

  it("refuses the service's public host (PUBLIC_URL) on any port", async () => {
    const pub = await startTestServer({ publicUrl: 'https://sho.rt' }, { databaseUrl: server.databaseUrl });
    try {
      const c = await signedUpClient(pub.url);
      for (const url of ['https://sho.rt/abc', 'http://SHO.RT:8080/x', 'https://sho.rt./y']) {
        expect((await c.post('/api/links', { url })).json.error?.code, url).toBe('INVALID_URL');
      }
    } finally {
      await pub.close();
    }
  });
});

describe('defect 5: the Host header', () => {
  const sessionCookie = (): [string, string] => ['Cookie', user.cookie!];
  const create = (hostHeader: [string, string][] , version: '1.0' | '1.1' = '1.1') =>
    raw({
      method: 'POST',
      path: '/api/links',
      version,
      headers: [...hostHeader, sessionCookie(), ['Content-Type', 'application/json']],
      body: JSON.stringify({ url: 'https://example.com/host' }),
    });

  it.each(['evil.example/phish?x=', 'evil.example/', 'a b', 'evil.example:99999', 'evil.example:x', '[::1', 'user@evil.example', '-bad-.example', '..', 'é.example'])(
    'refuses Host: %s with 400 and writes nothing',
    async (value) => {
      const before = await server.sql('select count(*) from links');
      const res = await create([['Host', value]]);
      expect(res.status).toBe(400);
      expect(errorCode(res)).toBe('VALIDATION_FAILED');
      expect(await server.sql('select count(*) from links')).toEqual(before);
    },
  );

  it('a request without Host (HTTP/1.0) gets the listen address, never http:///CODE', async () => {
    const res = await create([], '1.0');
    expect(res.status).toBe(201);
    const { shortUrl, code } = JSON.parse(res.body) as { shortUrl: string; code: string };
    expect(shortUrl).toBe(`http://127.0.0.1:${port}/${code}`);
  });

  it('PUBLIC_URL wins over any Host', async () => {
    const pub = await startTestServer({ publicUrl: 'https://sho.rt' }, { databaseUrl: server.databaseUrl });
    try {
      const c = await signedUpClient(pub.url);
      const res = await c.post('/api/links', { url: 'https://example.com/p' });
      expect(res.json.shortUrl).toBe(`https://sho.rt/${res.json.code}`);
      const pubPort = Number(new URL(pub.url).port);
      const viaEvil = await raw(
        {
          method: 'POST',
          path: '/api/links',
          headers: [['Host', 'evil.example'], ['Cookie', c.cookie!], ['Content-Type', 'application/json'], ['X-Forwarded-Host', 'evil.example']],
          body: JSON.stringify({ url: 'https://example.com/q' }),
        },
        pubPort,
      );
      expect(JSON.parse(viaEvil.body).shortUrl).toMatch(/^https:\/\/sho\.rt\//);
    } finally {
      await pub.close();
    }
  });
});

describe('defect 1 (app side): forwarded headers count only from the proxies the topology names', () => {
  const limits = {
    signup: { limit: 100, windowMs: 60_000 },
    login: { limit: 3, windowMs: 60_000 },
    createLink: { limit: 100, windowMs: 60_000 },
  };

  it('from an untrusted peer, X-Forwarded-For/-Proto/-Host change nothing', async () => {
    // The proxy it trusts is elsewhere: this test's client is not it.
    const s = await startTestServer({ trustProxy: ['10.9.9.9'], rateLimits: limits }, { databaseUrl: server.databaseUrl });
    try {
      const anon = new Client(s.url);
      let last = 0;
      for (let i = 0; i < 5; i++) {
        last = (await anon.post('/api/login', { email: 'x@example.com', password: 'wrong-password' }, { 'x-forwarded-for': `203.0.113.${i}` })).status;
      }
      expect(last).toBe(429);
      const c = new Client(s.url);
      const res = await c.post(
        '/api/signup',
        { email: uniqueEmail(), password: 'correct horse battery' },
        { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' },
      );
      expect(res.status).toBe(201);
      expect(res.headers.get('strict-transport-security')).toBeNull();
      expect(res.headers.get('set-cookie')).not.toMatch(/Secure/);
      const link = await c.post('/api/links', { url: 'https://example.com/f' }, { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' });
      expect(link.json.shortUrl).toBe(`${s.url}/${link.json.code}`);
    } finally {
      await s.close();
    }
  });

  it('from the trusted proxy, X-Forwarded-For keys the limit and -Proto counts, but -Host never makes shortUrl', async () => {
    const s = await startTestServer({ trustProxy: ['127.0.0.1'], rateLimits: limits }, { databaseUrl: server.databaseUrl });
    try {
      const anon = new Client(s.url);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        statuses.push((await anon.post('/api/login', { email: 'x@example.com', password: 'wrong-password' }, { 'x-forwarded-for': `203.0.113.${i}` })).status);
      }
      expect(statuses).toEqual([401, 401, 401, 401]); // one bucket per forwarded client
      const c = new Client(s.url);
      const res = await c.post('/api/signup', { email: uniqueEmail(), password: 'correct horse battery' }, { 'x-forwarded-proto': 'https' });
      expect(res.headers.get('set-cookie')).toMatch(/; Secure/);
      const link = await c.post('/api/links', { url: 'https://example.com/g' }, { 'x-forwarded-host': 'evil.example' });
      expect(link.status).toBe(201);
      expect(link.json.shortUrl).toBe(`${s.url}/${link.json.code}`);
    } finally {
      await s.close();
    }
  });
});

describe('defect 6: session-dependent responses are private, no-store', () => {
  it('on every session route, success or refusal', async () => {
    const c = new Client(server.url);
    const email = uniqueEmail();
    const check = async (what: string, p: Promise<{ status: number; headers: Headers }>) => {
      const res = await p;
      expect(res.headers.get('cache-control'), `${what} (${res.status})`).toBe('private, no-store');
    };
    await check('me, anonymous', c.get('/api/me'));
    await check('links, anonymous', c.get('/api/links'));
    await check('signup', c.post('/api/signup', { email, password: 'correct horse battery' }));
    await check('signup taken', new Client(server.url).post('/api/signup', { email, password: 'correct horse battery' }));
    await check('signup invalid', new Client(server.url).post('/api/signup', { email: 'bad', password: 'x' }));
    await check('me', c.get('/api/me'));
    await check('create', c.post('/api/links', { url: 'https://example.com/cc' }));
    const { json } = await c.post('/api/links', { url: 'https://example.com/cd' });
    await check('list', c.get('/api/links'));
    await check('get', c.get(`/api/links/${json.code}`));
    await check('stats', c.get(`/api/links/${json.code}/stats`));
    await check('patch', c.patch(`/api/links/${json.code}`, { url: 'https://example.com/ce' }));
    await check('missing', c.get('/api/links/nosuchcode'));
    await check('delete', c.del(`/api/links/${json.code}`));
    await check('dashboard', c.get('/dashboard'));
    await check('login bad', new Client(server.url).post('/api/login', { email, password: 'wrong password' }));
    await check('login', new Client(server.url).post('/api/login', { email, password: 'correct horse battery' }));
    await check('logout', c.post('/api/logout'));
    await check('dashboard, logged out', c.get('/dashboard'));
  });
});

describe('defect 7: the cookie carries the session lifetime', () => {
  it('login and signup set Max-Age to the idle expiry (within the absolute one)', async () => {
    const res = await new Client(server.url).post('/api/signup', { email: uniqueEmail(), password: 'correct horse battery' });
    expect(res.headers.get('set-cookie')).toMatch(/Max-Age=86400\b/);
  });
});

describe('defect 8: a client that aborts mid-body', () => {
  it('is one info line without a stack, not an error', async () => {
    const before = logs.lines.length;
    const head = `POST /api/links HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nCookie: ${user.cookie}\r\nContent-Length: 1000\r\n\r\n{"url":"https://exa`;
    const { connect } = await import('node:net');
    await new Promise<void>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.write(head, () => setTimeout(() => {
          socket.destroy();
          resolve();
        }, 100));
      });
    });
    await new Promise((r) => setTimeout(r, 300));
    const lines = logs.lines.slice(before);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    const info = lines.filter((l) => l.level === 30 && /client closed/.test(l.msg ?? ''));
    expect(info).toHaveLength(1);
    expect(JSON.stringify(info[0])).not.toMatch(/\n\s+at /);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});

describe('no case above logged an error', () => {
  it('has no error-level line', () => {
    expect(logs.errors().map((l) => `${l.msg} ${l.err?.stack?.split('\n')[0] ?? ''}`)).toEqual([]);
    expect(TEST_SECRET).toBeTruthy();
  });
});
