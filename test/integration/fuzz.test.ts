// The fuzzer: random and adversarial requests (methods, paths, query strings, headers,
// cookies, bodies) thrown at the real app (a real web process on a real Postgres, over real
// HTTP on loopback) for a bounded time. Properties, for every request:
//   - it is answered (never a reset or a hang) and never with a 5xx;
//   - a JSON error is {"error":{"code","message"}} with a catalogue code and that code's status;
//   - a refused request (4xx) leaves the database as it was (users and links, checksummed);
//   - and over the whole run no error-level log line is written.
// A failing case is shrunk by fast-check and printed as a curl command.
//
// In `npm test` it runs FUZZ_SECONDS (30 unless told); `npm run fuzz -- --seconds 600` runs
// the same properties for longer (test/support/fuzz-command.mjs). FUZZ_SEED replays a run;
// FUZZ_DEBUG=1 prints every 400 (to see what the generators reach).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/kit/errors.ts';
import { captureLogs } from '../support/log-capture.ts';
import { curlCommand, send, type RawRequest } from '../support/raw-http.ts';
import { Client, signedUpClient, startTestServer, type TestServer } from '../support/app.ts';

const SECONDS = Number(process.env.FUZZ_SECONDS ?? 30);
const SEED = process.env.FUZZ_SEED === undefined ? Date.now() ^ (Math.random() * 2 ** 31) : Number(process.env.FUZZ_SEED);

let server: TestServer;
let port: number;
let user: Client;
let codes: string[] = [];
let logs: ReturnType<typeof captureLogs>;
/** How many responses of each status the run got: shows what the fuzzer reached. */
const statuses = new Map<number, number>();

beforeAll(async () => {
  server = await startTestServer({
    logLevel: 'info',
    // High enough that the fuzzer reaches the routes, not only the limiter (429 is still fine).
    rateLimits: {
      signup: { limit: 100_000, windowMs: 60_000 },
      login: { limit: 100_000, windowMs: 60_000 },
      createLink: { limit: 100_000, windowMs: 60_000 },
    },
  });
  logs = captureLogs(server.fastify.log);
  port = Number(new URL(server.url).port);
  user = await signedUpClient(server.url);
  for (let i = 0; i < 5; i++) codes.push((await user.post('/api/links', { url: `https://example.com/seed/${i}` })).json.code as string);
});
afterAll(async () => {
  logs?.restore();
  await server?.close();
});

// ---- what the fuzzer sends ----------------------------------------------------------------

/** Percent-encodes every byte of the UTF-8 form except unreserved ones (lone surrogates included: no throw). */
function pct(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

const hostile = fc.constantFrom(
  '',
  '%',
  '%zz',
  '%00',
  '\u0000',
  '\u0000@example.com',
  '..%2f..%2f',
  '\u202e',
  '\ud800',
  "' or 1=1--",
  '<script>alert(1)</script>',
  '${jndi:ldap://x}',
  '__proto__',
  'constructor',
  'a'.repeat(300),
  'a'.repeat(5000),
  '9223372036854775808',
  '-1',
  '1e309',
  'null',
  'é',
  '🙂',
);
const text = fc.oneof(hostile, fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 20 }));

/** What could be a code: real ones, code-shaped random ones, and hostile strings. */
const code = fc.oneof(fc.constantFrom(...['CODES']), fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/), text);

const cursorish = fc.oneof(
  fc
    .tuple(
      fc.integer({ min: -1000, max: 12000 }),
      fc.integer({ min: 0, max: 14 }),
      fc.integer({ min: 0, max: 32 }),
      fc.integer({ min: 0, max: 25 }),
      fc.integer({ min: 0, max: 61 }),
      fc.oneof(fc.bigInt({ min: -1n, max: 2n ** 64n }), fc.constant(1n)),
    )
    .map(([y, mo, d, h, mi, id]) => {
      const p = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');
      return Buffer.from(`${p(y, 4)}-${p(mo)}-${p(d)}T${p(h)}:${p(mi)}:00.000Z|${id}`).toString('base64url');
    }),
  text.map((s) => Buffer.from(s).toString('base64url')),
  text,
);

const queryString = fc
  .array(
    fc.tuple(fc.constantFrom('limit', 'cursor', 'x', '__proto__', 'limit[]', ''), fc.oneof(cursorish, fc.integer({ min: -5, max: 200 }).map(String), text)),
    { maxLength: 3 },
  )
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${pct(k)}=${pct(v)}`).join('&')}`));

const pathArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('/api/signup', '/api/login', '/api/logout', '/api/me', '/api/links', '/', '/login', '/signup', '/dashboard', '/healthz', '/readyz', '/static/app.js', '/api', '/api/') },
  { weight: 4, arbitrary: code.map((c) => `/api/links/${pct(c)}`) },
  { weight: 2, arbitrary: code.map((c) => `/api/links/${pct(c)}/stats`) },
  { weight: 3, arbitrary: code.map((c) => `/${pct(c)}`) },
  { weight: 2, arbitrary: fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)) },
  // Raw bytes in the request target: what the parser and router make of them.
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 30 }).map((s) => `/${s}`) },
  { weight: 1, arbitrary: fc.constantFrom('*', 'http://evil.example/api/me', '//api/me', '/api/links/../me', '/%2e%2e/api/me', '/api/links?', '/api/links#x') },
);

const method = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE') },
  { weight: 3, arbitrary: fc.constantFrom('PUT', 'HEAD', 'OPTIONS', 'QUERY', 'TRACE', 'PROPFIND', 'MKCOL', 'SEARCH', 'PURGE', 'CONNECT', 'M-SEARCH') },
  { weight: 1, arbitrary: fc.constantFrom('get', 'FOO', 'G ET', 'GET\u0000', '') },
);

const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'application/json; charset=latin1',
      'application/json-patch+json',
      'application/vnd.api+json',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json; charset="utf-8"; charset=utf-16',
      '',
      ';',
      'application/json\u0000',
    ),
  },
  { weight: 1, arbitrary: text },
);

const field = fc.oneof(text, fc.emailAddress(), fc.webUrl(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.object({ maxDepth: 1 }));
const urlValue = fc.oneof(
  fc.webUrl(),
  fc.constantFrom('http://0.0.0.0/', 'http://[::ffff:127.0.0.1]/', 'http://a.localhost/', 'http://0x7f.1/', 'javascript:alert(1)', 'https://u:p@example.com/'),
  text,
);
const body = fc.oneof(
  { weight: 4, arbitrary: fc.record({ email: fc.oneof(fc.emailAddress(), text), password: fc.oneof(text, fc.constant('correct horse battery')) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)) },
  { weight: 4, arbitrary: fc.record({ url: urlValue, code: fc.oneof(code, field) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)) },
  { weight: 4, arbitrary: fc.record({ url: fc.webUrl(), code: fc.option(fc.stringMatching(/^[A-Za-z0-9_-]{3,32}$/), { nil: undefined }) }, { requiredKeys: ['url'] }).map((o) => JSON.stringify(o)) },
  { weight: 2, arbitrary: fc.dictionary(fc.oneof(text, fc.constantFrom('url', 'code', 'email', 'password', '__proto__')), field, { maxKeys: 4 }).map((o) => JSON.stringify(o)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.constantFrom('{"__proto__":{"admin":true},"url":"https://example.com"}', '{"url":', '[]', 'null', '""', '{}{}', '\u0000', `{"url":"https://example.com/${'a'.repeat(17_000)}"}`, '['.repeat(5000)) },
  { weight: 1, arbitrary: text },
);

const cookie = fc.oneof(
  { weight: 8, arbitrary: fc.constant('SESSION') },
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.oneof(text, cursorish).map((v) => `ladder_sid=${v}`) },
  { weight: 1, arbitrary: fc.oneof(text, cursorish).map((v) => `ladder_lsn=${v}; ladder_fresh=${v}`) },
  { weight: 1, arbitrary: fc.constantFrom('ladder_sid=%', 'ladder_sid=%; ladder_sid=%zz', '=; ;;', 'SESSION_DOUBLE') },
);

const hostHeader = fc.oneof(
  { weight: 24, arbitrary: fc.constant('SELF') },
  { weight: 2, arbitrary: fc.constantFrom('evil.example', 'evil.example/phish?x=', '[::1]', '[::1', 'a b', 'x:99999', '', 'localhost:1', '0x7f.1') },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: text },
);

const extraHeaders = fc.oneof({ weight: 3, arbitrary: fc.constant<[string, string][]>([]) }, { weight: 1, arbitrary: fc.array(
  fc.tuple(
    fc.constantFrom('X-Forwarded-For', 'X-Forwarded-Host', 'X-Forwarded-Proto', 'Origin', 'Referer', 'X-Request-Id', 'Accept', 'Accept-Encoding', 'Transfer-Encoding', 'Expect', 'Upgrade', 'Range', 'If-None-Match'),
    fc.oneof(text, fc.constantFrom('https', 'null', 'gzip', 'chunked', '100-continue', 'websocket', 'bytes=0-1', '203.0.113.9, 10.0.0.1')),
  ),
  { maxLength: 3 },
) });

type FuzzCase = { method: string; path: string; query: string; host: string | undefined; cookie: string | undefined; contentType: string | undefined; body: string | undefined; extra: [string, string][]; version: '1.0' | '1.1' };

const fuzzCase: fc.Arbitrary<FuzzCase> = fc.record({
  method,
  path: pathArb,
  query: queryString,
  host: hostHeader,
  cookie,
  contentType: fc.option(contentType, { nil: undefined }),
  body: fc.option(body, { nil: undefined }),
  extra: extraHeaders,
  version: fc.constantFrom<'1.0' | '1.1'>('1.1', '1.1', '1.1', '1.1', '1.1', '1.1', '1.1', '1.0'),
});

/** The case as bytes on the wire: placeholders filled, header values made sendable. */
function toRequest(c: FuzzCase): RawRequest {
  const headers: [string, string][] = [];
  // A header value cannot hold CR or LF (that would be two headers: another test); the rest goes as is.
  const clean = (v: string) => v.replace(/[\r\n]/g, ' ');
  if (c.host !== undefined) headers.push(['Host', c.host === 'SELF' ? `127.0.0.1:${port}` : clean(c.host)]);
  if (c.cookie !== undefined) {
    const value = c.cookie === 'SESSION' ? user.cookie! : c.cookie === 'SESSION_DOUBLE' ? `${user.cookie!}; ${user.cookie!}` : clean(c.cookie);
    headers.push(['Cookie', value]);
  }
  if (c.contentType !== undefined) headers.push(['Content-Type', clean(c.contentType)]);
  for (const [n, v] of c.extra) {
    // A chunked body needs chunked bytes and a body that never ends hangs by design (the
    // request timeout answers it): both are left to hostile-input tests, not the fuzzer.
    if (n === 'Transfer-Encoding' || n === 'Expect') continue;
    headers.push([n, clean(v)]);
  }
  const path = `${c.path.replace(/CODES/g, () => codes[0]!)}${c.query}`.replace(/[\r\n ]/g, (ch) => encodeURIComponent(ch));
  return { method: c.method, path, headers, body: c.body, version: c.version };
}

// ---- what must hold -----------------------------------------------------------------------

async function snapshot(): Promise<string> {
  const [row] = await server.sql<{ users: string; links: string }>(
    `select (select count(*) || ':' || coalesce(md5(string_agg(id || '|' || email || '|' || password_hash, ',' order by id)), '') from users) as users,
            (select count(*) || ':' || coalesce(md5(string_agg(id || '|' || code || '|' || url || '|' || owner_id, ',' order by id)), '') from links) as links`,
  );
  return `${row!.users} ${row!.links}`;
}

/** Undefined when the response keeps every property, else what broke. */
async function check(c: FuzzCase): Promise<string | undefined> {
  const req = toRequest(c);
  const before = await snapshot();
  const result = await send(port, req, 15_000);
  if (!result.ok) return `no answer: ${result.reset}`;
  const { status, headers, body: text } = result.res;
  statuses.set(status, (statuses.get(status) ?? 0) + 1);
  if (process.env.FUZZ_DEBUG && status === 400) console.log(`${c.method} ${c.path.slice(0, 30)} host=${String(c.host).slice(0, 20)} ${text.slice(0, 120)}`);
  if (status >= 500) return `status ${status}: ${text.slice(0, 300)}`;
  if (status >= 400 && (headers['content-type'] ?? '').startsWith('application/json') && c.method !== 'HEAD') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return `status ${status} with a body that is not JSON: ${text.slice(0, 200)}`;
    }
    const err = (parsed as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof err?.code !== 'string' || typeof err.message !== 'string') return `status ${status} without {"error":{"code","message"}}: ${text.slice(0, 200)}`;
    const entry = (ErrorCodes as Record<string, { status: number }>)[err.code];
    if (!entry) return `status ${status} with a code outside the catalogue: ${err.code}`;
    if (entry.status !== status) return `${err.code} with status ${status}, the catalogue says ${entry.status}`;
  } else if (status >= 400 && c.method !== 'HEAD' && !(headers['content-type'] ?? '').startsWith('text/html')) {
    return `status ${status} with content-type ${headers['content-type'] ?? '(none)'}`;
  }
  if (status >= 400 && (await snapshot()) !== before) return `refused with ${status} but the database changed`;
  // A logout (or a login that rotated it) with the fuzz user's cookie ends that session: a new user goes on.
  if (c.cookie === 'SESSION' && (req.path.startsWith('/api/logout') || req.path.startsWith('/api/login')) && status < 400) user = await signedUpClient(server.url);
  if (status === 201 && req.path.startsWith('/api/links')) {
    const created = JSON.parse(text) as { code?: string };
    if (created.code) codes = [created.code, ...codes].slice(0, 10);
  }
  return undefined;
}

describe('fuzz: hostile requests against the real app', () => {
  it(`holds the properties for ${SECONDS} s (seed ${SEED})`, { timeout: (SECONDS + 120) * 1000 }, async () => {
    const details = await fc.check(
      fc.asyncProperty(fuzzCase, async (c) => {
        const broke = await check(c);
        if (broke) throw new Error(broke);
      }),
      { seed: SEED, numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: SECONDS * 1000, markInterruptAsFailure: false, endOnFailure: false },
    );
    const runs = details.numRuns;
    if (details.failed && details.counterexample) {
      const [c] = details.counterexample;
      const req = toRequest(c);
      const why = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      throw new Error(
        `fuzz case failed after ${runs} runs (seed ${SEED}, path ${details.counterexamplePath}): ${why}\n` +
          `reproduce (the cookie is the fuzz user's session):\n  ${curlCommand(server.url, req)}\n` +
          `case: ${JSON.stringify(c)}`,
      );
    }
    const seen = [...statuses].sort(([a], [b]) => a - b).map(([st, n]) => `${st}×${n}`).join(' ');
    console.log(`fuzz: ${runs} requests in ${SECONDS} s, seed ${SEED}, no property broken; statuses ${seen}`);
    expect(runs).toBeGreaterThan(50);
    // After the run, the server is healthy and never logged at error level.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(logs.errors().map((l) => `${l.msg} ${l.err?.stack?.split('\n').slice(0, 2).join(' ') ?? ''}`)).toEqual([]);
  });
});
