// Rung 6 on real components: `ladder up --rung 6` (Postgres, the cache tier's Redis, two web
// servers, HAProxy, and the edge: Varnish in front). What the edge caches (assets, anonymous
// public pages; each asset fetched from the origin once), what it must never cache (anything
// personal, whatever the variant), X-Cache on every response, purge after a write (and how
// soon it is visible), stale content while every web server is stopped, and no process left
// after `ladder down`.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/kit/process/pid.ts';
import { varnishWorkDir } from '../../src/launcher/components/varnish.ts';
import { ensureDir } from '../../src/launcher/state-dir.ts';
import { Client, signedUpClient } from '../support/app.ts';
import { LADDER_BIN } from '../support/process.ts';
import { send } from '../support/raw-http.ts';

const stateDir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'edge-'));
chmodSync(stateDir, 0o755);
/** Public pages live 2 s at the edge here (30 s by default), so that grace can be seen within the test. */
const PAGE_TTL_S = 2;

interface EdgeCounters {
  hits: number;
  misses: number;
  passes: number;
  originRequests: number;
}
interface Status {
  entry: string;
  rung: number;
  nodes: { name: string; role: string; pid: number | null; port: number; url: string; state: string; edge?: EdgeCounters | null }[];
}

function ladder(...args: string[]) {
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LADDER_STATE_DIR: stateDir, LOG_LEVEL: 'warn', EDGE_PAGE_TTL_S: String(PAGE_TTL_S) },
    timeout: 180_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const status = (): Status => JSON.parse(ladder('status', '--json').out) as Status;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let entry: string;
let webs: string[];
let alice: Client;
let bob: Client;
let aliceEmail: string;
let bobEmail: string;

async function get(p: string, headers: Record<string, string> = {}) {
  const res = await fetch(entry + p, { headers, redirect: 'manual' });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Requests the web servers answered for a route (http_request_duration_seconds_count, summed over servers and statuses). */
async function originCount(route: string): Promise<number> {
  let n = 0;
  for (const w of webs) {
    const text = await (await fetch(`${w}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (line.startsWith('http_request_duration_seconds_count{') && line.includes(`route="${route}"`)) n += Number(line.split(' ').pop());
    }
  }
  return n;
}

function assetPaths(html: string): string[] {
  return [...html.matchAll(/(?:href|src)="(\/static\/[^"]+)"/g)].map((m) => m[1]!);
}

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.99 * s.length) - 1)]!;
}

beforeAll(async () => {
  // Replicas have their own test; the cache tier (rung 5) stays.
  const up = ladder('up', '--rung', '6', '--replicas', '0', '--no-monitor'); // monitoring has its own tests
  if (up.code !== 0) throw new Error(`ladder up failed:\n${up.err}\n${up.out}`);
  entry = up.out.trim().split('\n').pop()!;
  webs = status().nodes.filter((n) => n.role === 'web').map((n) => n.url);
  alice = await signedUpClient(entry);
  bob = await signedUpClient(entry);
  aliceEmail = (await alice.get('/api/me')).json.user.email as string;
  bobEmail = (await bob.get('/api/me')).json.user.email as string;
}, 240_000);

afterAll(async () => {
  const nodes = (() => {
    try {
      return status().nodes;
    } catch {
      return [];
    }
  })();
  // varnishd's cacher child, as well as the manager the state file names.
  const edgePid = nodes.find((n) => n.name === 'edge')?.pid ?? undefined;
  const children = edgePid ? childrenOf(edgePid) : [];
  const down = ladder('down');
  expect(down.code).toBe(0);
  for (const pid of [...nodes.map((n) => n.pid).filter((p): p is number => p !== null), ...children]) expect(isAlive(pid), `pid ${pid}`).toBe(false);
  rmSync(stateDir, { recursive: true, force: true });
}, 120_000);

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('rung 6: the edge', () => {
  it('is the entry: node edge, role varnish, with its counters in `ladder status`', async () => {
    const st = status();
    expect(st.rung).toBe(6);
    const edge = st.nodes.find((n) => n.name === 'edge')!;
    expect(edge.role).toBe('varnish');
    expect(st.entry).toBe(edge.url);
    expect(childrenOf(edge.pid!).length).toBeGreaterThan(0); // the manager and its cacher
    expect(edge.edge).toMatchObject({ hits: expect.any(Number), misses: expect.any(Number), passes: expect.any(Number), originRequests: expect.any(Number) });
    await get('/login');
    const text = ladder('status').out;
    expect(text).toMatch(/edge\s+varnish\s+ready/);
    expect(text).toMatch(/hits \d+ {2}misses \d+ {2}passes \d+ {2}origin requests \d+/);
    // Short URLs name the edge, whatever Host or X-Forwarded-Host a client sent.
    const link = await alice.post('/api/links', { url: 'https://example.com/entry' }, { 'x-forwarded-host': 'evil.example' });
    expect(link.json.shortUrl).toBe(`${entry}/${link.json.code}`);
  });

  it("passes writes with the browser's own Host, so the CSRF check sees it match Origin", async () => {
    const port = Number(new URL(entry).port);
    const email = `edge-host-${Date.now()}@example.com`;
    const post = (p: string, origin: string) =>
      send(port, {
        method: 'POST',
        path: p,
        headers: [['Host', `localhost:${port}`], ['Origin', origin], ['Content-Type', 'application/json']],
        body: JSON.stringify({ email, password: 'correct horse battery' }),
      });
    const signup = await post('/api/signup', `http://localhost:${port}`);
    expect(signup.ok && signup.res.status).toBe(201);
    const cross = await post('/api/login', 'http://evil.example');
    expect(cross.ok && cross.res.status).toBe(403);
  });

  it('says X-Cache HIT or MISS on every response', async () => {
    const anon = new Client(entry);
    const responses = [
      await anon.get('/'),
      await anon.get('/'),
      await anon.get('/login'),
      await anon.get('/api/me'),
      await alice.get('/api/me'),
      await alice.get('/dashboard'),
      await anon.get('/no-such-code'),
      await anon.post('/api/login', { email: 'nobody@example.com', password: 'wrong password' }),
      await anon.req('BREW', '/'),
      await anon.req('PURGE', '/'),
      await anon.get('/static/nothing.0123456789.css'),
    ];
    for (const r of responses) expect(['HIT', 'MISS']).toContain(r.headers.get('x-cache'));
    expect(responses[1]!.headers.get('x-cache')).toBe('HIT');
    expect(responses[9]!.status).toBe(403); // a purge without the token
  });

  it('fetches each asset from the origin once and serves it from the edge: immutable, strong ETag, 304', async () => {
    const page = await get('/');
    const assets = assetPaths(page.text);
    expect(assets.length).toBe(3);
    const before = await originCount('/static/:name');
    let hits = 0;
    let total = 0;
    // 200 anonymous page views, 8 at a time: the page and its three assets each.
    const views = Array.from({ length: 8 }, async () => {
      for (let i = 0; i < 25; i++) {
        const p = await get('/');
        expect(p.status).toBe(200);
        for (const a of assetPaths(p.text)) {
          const r = await get(a);
          expect(r.status).toBe(200);
          total++;
          if (r.headers.get('x-cache') === 'HIT') hits++;
        }
      }
    });
    await Promise.all(views);
    const fetched = (await originCount('/static/:name')) - before;
    expect(fetched).toBeLessThanOrEqual(assets.length); // once per asset (fewer when an earlier test already did)
    expect(hits / total).toBeGreaterThanOrEqual(0.99);
    const r = await fetch(entry + assets[0]!);
    expect(r.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const etag = r.headers.get('etag')!;
    expect(etag).toMatch(/^"[0-9a-f]{10}"$/); // strong
    const again = await fetch(entry + assets[0]!, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    // The manifest names the same files the pages link.
    const manifest = (await (await fetch(`${entry}/static/manifest.json`)).json()) as Record<string, string>;
    expect(Object.values(manifest).sort()).toEqual([...assets].sort());
  });

  it('never serves anything personal to another client, whatever the variant', async () => {
    const anon = new Client(entry);
    const personal = [aliceEmail, bobEmail];
    const noPersonal = (text: string, who: string) => {
      for (const email of personal) expect(text, `${who} sees ${email}`).not.toContain(email);
    };
    const variants: Record<string, string>[] = [
      {},
      { 'accept-encoding': 'gzip' },
      { 'accept-encoding': 'br, gzip, deflate' },
      { 'accept-encoding': 'identity' },
      { 'x-forwarded-host': 'evil.example' },
    ];
    const paths = [
      '/',
      '/?utm_source=mail',
      '/?x=1',
      '/dashboard',
      '/dashboard?x=1',
      '/dashboard?utm_source=mail',
      '/dashboard/x.css',
      '/dashboard.css',
      '/dashboard/x.js',
      '/api/me',
      '/api/me/x.css',
      '/api/links',
      '/api/links?limit=5',
      '/static/..%2Fdashboard',
      '/login',
      '/signup',
    ];
    // Alice and Bob go first, with every variant, so that anything stored would be found after.
    for (const p of paths) {
      for (const h of variants) {
        const a = await alice.get(p, h);
        expect(a.headers.get('x-cache'), `alice ${p} ${JSON.stringify(h)}`).toBe('MISS');
        const b = await bob.get(p, h);
        expect(b.headers.get('x-cache')).toBe('MISS');
        expect(b.text).not.toContain(aliceEmail);
        const a2 = await alice.get(p, h);
        expect(a2.text).not.toContain(bobEmail);
      }
    }
    for (const p of paths) {
      for (const h of variants) {
        const r = await anon.get(p, h);
        noPersonal(r.text, `anonymous ${p} ${JSON.stringify(h)}`);
        expect(r.headers.getSetCookie().join(';')).not.toMatch(/ladder_sid/);
        if (p.startsWith('/api/')) expect(r.status).toBe(p === '/api/me/x.css' ? 404 : 401);
      }
    }
    // Another Host (fetch cannot send one: raw requests), with Alice's cookie first, then without.
    const port = Number(new URL(entry).port);
    for (const p of ['/', '/dashboard', '/api/me', '/dashboard/x.css']) {
      const headers: [string, string][] = [['Host', 'other.example']];
      const a = await send(port, { method: 'GET', path: p, headers: [...headers, ['Cookie', alice.cookie!]] });
      expect(a.ok && a.res.headers['x-cache']).toBe('MISS');
      const r = await send(port, { method: 'GET', path: p, headers });
      expect(r.ok).toBe(true);
      if (r.ok) noPersonal(r.res.body, `anonymous ${p} Host: other.example`);
    }
    // Personal responses say so.
    for (const p of ['/dashboard', '/api/me', '/']) expect((await alice.get(p)).headers.get('cache-control')).toMatch(/private, no-store/);
    // A logged-in user's cookie is never handed to another client, nor a login's Set-Cookie replayed.
    const login = new Client(entry);
    await login.post('/api/signup', { email: `edge-${Date.now()}@example.com`, password: 'correct horse battery' });
    const after = await fetch(`${entry}/`, { redirect: 'manual' });
    expect(after.headers.getSetCookie()).toEqual([]);
  });

  it('purges a link preview when the link changes: the next read after the write sees it (p99 measured)', async () => {
    const anon = new Client(entry);
    const { code } = (await alice.post('/api/links', { url: 'https://example.com/v0' })).json as { code: string };
    // Cached, including as "not found" before it existed? Create one that was cached as a 404 first.
    const fresh = `edge${Date.now().toString(36)}`;
    expect((await anon.get(`/preview/${fresh}`)).status).toBe(404);
    expect((await anon.get(`/preview/${fresh}`)).headers.get('x-cache')).toBe('HIT');
    expect((await alice.post('/api/links', { url: 'https://example.com/new', code: fresh })).status).toBe(201);
    const created = await anon.get(`/preview/${fresh}`);
    expect(created.status).toBe(200);
    expect(created.text).toContain('https://example.com/new');

    const bounds: number[] = [];
    const stale: number[] = [];
    for (let i = 1; i <= 40; i++) {
      await anon.get(`/preview/${code}`);
      expect((await anon.get(`/preview/${code}`)).headers.get('x-cache')).toBe('HIT');
      const url = `https://example.com/v${i}`;
      const t0 = performance.now();
      const res = await alice.patch(`/api/links/${code}`, { url });
      expect(res.status).toBe(200);
      // The commit happened between t0 and the answer; the purge is done before the answer.
      let seen = await anon.get(`/preview/${code}`);
      if (!seen.text.includes(url)) {
        stale.push(i);
        while (!seen.text.includes(url) && performance.now() - t0 < 5000) seen = await anon.get(`/preview/${code}`);
      }
      bounds.push(performance.now() - t0);
      expect(seen.text).toContain(url);
    }
    expect(stale).toEqual([]);
    const p = p99(bounds);
    console.log(`edge purge: write to visible at the edge, upper bound (write sent -> first read showing it): p99 ${p.toFixed(1)} ms, max ${Math.max(...bounds).toFixed(1)} ms over ${bounds.length} writes`);
    expect(p).toBeLessThan(50);
    // Deleting purges too: the preview is a 404 at once.
    expect((await alice.del(`/api/links/${code}`)).status).toBe(204);
    expect((await anon.get(`/preview/${code}`)).status).toBe(404);
  });

  it('coalesces concurrent misses into one origin request', async () => {
    const { code } = (await alice.post('/api/links', { url: 'https://example.com/coalesce' })).json as { code: string };
    const before = await originCount('/preview/:code');
    const all = await Promise.all(Array.from({ length: 20 }, () => get(`/preview/${code}`)));
    for (const r of all) expect(r.status).toBe(200);
    expect((await originCount('/preview/:code')) - before).toBe(1);
  });

  it('writes no per-request records to its shared-memory log, and still its health probes', async () => {
    // The mask is a measured saving (docs/performance.md); what it keeps is what an operator needs.
    const url = `/login?vsl-check=${Date.now()}`;
    expect((await get(url)).status).toBe(200);
    const log = spawnSync('varnishlog', ['-n', varnishWorkDir(path.join(stateDir, 'up')), '-d', '-g', 'raw'], { encoding: 'utf8', timeout: 3000 });
    expect(log.stdout).toMatch(/\bBackend_health\b/);
    expect(log.stdout).not.toMatch(/\b(ReqURL|ReqHeader|RespHeader|Timestamp|VCL_call)\b/);
    expect(log.stdout).not.toContain('vsl-check');
  });

  it('keeps serving cached assets and public pages with every web server stopped', async () => {
    const { code } = (await alice.post('/api/links', { url: 'https://example.com/grace' })).json as { code: string };
    const home = await get('/');
    const assets = assetPaths(home.text);
    for (const p of [`/preview/${code}`, '/login', ...assets]) expect((await get(p)).status).toBe(200);
    const webNodes = status().nodes.filter((n) => n.role === 'web').map((n) => n.name);
    for (const w of webNodes) expect(ladder('chaos', 'stop', w).code).toBe(0);
    try {
      // Past the pages' TTL, and until the origin is seen down (HAProxy has no server).
      await sleep(PAGE_TTL_S * 1000 + 500);
      const deadline = performance.now() + 20_000;
      let down = false;
      while (!down && performance.now() < deadline) {
        const me = await fetch(`${entry}/api/me`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
        down = me?.status === 503;
        if (!down) await sleep(250);
      }
      expect(down).toBe(true);
      for (const p of [`/preview/${code}`, '/login', ...assets]) {
        const t0 = performance.now();
        const r = await get(p);
        expect(r.status, p).toBe(200);
        expect(r.headers.get('x-cache')).toBe('HIT');
        expect(performance.now() - t0).toBeLessThan(1000);
      }
      expect((await get(`/preview/${code}`)).text).toContain('https://example.com/grace');
    } finally {
      for (const w of webNodes) ladder('chaos', 'cont', w);
    }
  }, 60_000);
});
