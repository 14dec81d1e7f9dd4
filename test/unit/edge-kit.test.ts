// The app side of the edge (rung 6), in process: hashed assets (immutable, strong ETag, 304,
// the manifest, CDN_BASE_URL, the archive that keeps old versions for rolling deploys), the
// edge settings, what may be marked public, and the page CSP with a CDN origin.
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { AssetStore, IMMUTABLE } from '../../src/kit/assets/asset-store.ts';
import { loadServerConfig } from '../../src/kit/config.ts';
import { publicPageCacheControl } from '../../src/kit/edge/edge-cache.ts';
import { HTML_HEADERS, htmlHeaders } from '../../src/kit/security/security-headers.ts';
import { edgeStatsOf } from '../../src/launcher/components/varnish.ts';

function staticDir(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ladder-assets-'));
  for (const [name, body] of Object.entries(files)) writeFileSync(path.join(dir, name), body);
  return dir;
}

async function served(store: AssetStore) {
  const app = Fastify();
  store.register(app);
  await app.ready();
  return app;
}

describe('hashed assets', () => {
  it('are immutable with a strong ETag, answer If-None-Match with 304, and are listed in the manifest', async () => {
    const store = new AssetStore(staticDir({ 'a.css': 'body{}', 'b.js': 'x()', 'notes.txt': 'ignored' }));
    const url = store.url('a.css');
    expect(url).toMatch(/^\/static\/a\.[0-9a-f]{10}\.css$/);
    expect(store.manifest()).toEqual({ 'a.css': url, 'b.js': store.url('b.js') });
    const app = await served(store);
    const r = await app.inject(url);
    expect(r.statusCode).toBe(200);
    expect(r.headers['cache-control']).toBe(IMMUTABLE);
    expect(r.headers['etag']).toMatch(/^"[0-9a-f]{10}"$/);
    expect(r.headers['surrogate-key']).toBe('asset');
    expect(r.headers['cross-origin-resource-policy']).toBe('cross-origin');
    const etag = r.headers['etag'] as string;
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) expect((await app.inject({ url, headers: { 'if-none-match': inm } })).statusCode, inm).toBe(304);
    expect((await app.inject({ url, headers: { 'if-none-match': '"other"' } })).statusCode).toBe(200);
    expect((await app.inject('/static/manifest.json')).json()).toEqual(store.manifest());
    expect((await app.inject('/static/a.0000000000.css')).statusCode).toBe(404);
    expect(() => store.url('nope.css')).toThrow();
  });

  it('point at CDN_BASE_URL when set, and the page CSP allows that origin and no other', () => {
    const store = new AssetStore(staticDir({ 'a.css': 'body{}' }));
    store.configure({ baseUrl: 'https://cdn.example.com' });
    expect(store.url('a.css')).toMatch(/^https:\/\/cdn\.example\.com\/static\/a\.[0-9a-f]{10}\.css$/);
    expect(store.origin).toBe('https://cdn.example.com');
    const csp = htmlHeaders(store.origin)['content-security-policy']!;
    expect(csp).toContain("script-src 'self' https://cdn.example.com;");
    expect(csp).toContain("style-src 'self' https://cdn.example.com;");
    expect(csp).toContain("default-src 'self';");
    expect(htmlHeaders(undefined)).toBe(HTML_HEADERS);
    expect(() => htmlHeaders("https://x.example; script-src 'unsafe-inline'")).toThrow();
  });

  it("keep every deploy's files in the archive, so an old server serves a new page's assets and the other way round", async () => {
    const archive = path.join(mkdtempSync(path.join(os.tmpdir(), 'ladder-archive-')), 'assets');
    const v1 = new AssetStore(staticDir({ 'app.css': 'v1' }));
    v1.configure({ archiveDir: archive });
    const v2 = new AssetStore(staticDir({ 'app.css': 'v2' }));
    v2.configure({ archiveDir: archive });
    expect(readdirSync(archive).sort()).toEqual([path.basename(v1.url('app.css')), path.basename(v2.url('app.css'))].sort());
    const old = await served(v1);
    const neu = await served(v2);
    expect((await old.inject(v2.url('app.css'))).body).toBe('v2');
    expect((await neu.inject(v1.url('app.css'))).body).toBe('v1');
    // A file whose content does not match its name, or a name outside the pattern, is not served.
    const forged = 'app.0123456789.css';
    writeFileSync(path.join(archive, forged), 'not this');
    expect((await neu.inject(`/static/${forged}`)).statusCode).toBe(404);
    expect((await neu.inject('/static/..%2Fsecret.css')).statusCode).toBe(404);
  });
});

describe('edge settings', () => {
  const base = { LADDER_SECRET: 'x'.repeat(32) };
  it('are checked, and the purge token stays out of logs', () => {
    const c = loadServerConfig({}, { ...base, CDN_BASE_URL: 'https://cdn.example.com/', EDGE_PURGE_URL: 'http://127.0.0.1:6081', EDGE_PURGE_TOKEN: 't'.repeat(20), EDGE_PAGE_TTL_S: '5' });
    expect(c.cdnBaseUrl).toBe('https://cdn.example.com');
    expect(c.edgePurgeUrl).toBe('http://127.0.0.1:6081');
    expect(c.edgePageTtlS).toBe(5);
    expect(JSON.stringify(c)).not.toContain('t'.repeat(20));
    expect(loadServerConfig({}, base).edgePageTtlS).toBe(30);
    expect(() => loadServerConfig({}, { ...base, CDN_BASE_URL: 'https://cdn.example.com/assets' })).toThrow(/^CDN_BASE_URL: /);
    expect(() => loadServerConfig({}, { ...base, CDN_BASE_URL: 'javascript:alert(1)' })).toThrow(/^CDN_BASE_URL: /);
    expect(() => loadServerConfig({}, { ...base, EDGE_PURGE_URL: 'http://127.0.0.1:6081' })).toThrow(/^EDGE_PURGE_TOKEN: /);
    expect(() => loadServerConfig({}, { ...base, EDGE_PURGE_URL: 'http://127.0.0.1:6081', EDGE_PURGE_TOKEN: 'a"} b' })).toThrow(/^EDGE_PURGE_TOKEN: /);
    expect(() => loadServerConfig({}, { ...base, EDGE_PAGE_TTL_S: '0' })).toThrow(/^EDGE_PAGE_TTL_S: /);
  });

  it('public pages: browsers revalidate, shared caches keep them for the TTL, stale while refreshing or while the origin is down', () => {
    expect(publicPageCacheControl(30)).toBe('public, max-age=0, s-maxage=30, stale-while-revalidate=30, stale-if-error=86400');
  });

  it("reads varnishstat's JSON, in both of its shapes", () => {
    const counters = { 'MAIN.cache_hit': { value: 9 }, 'MAIN.cache_miss': { value: 2 }, 'MAIN.s_pass': { value: 3 }, 'MAIN.backend_req': { value: 5 }, 'MAIN.client_req': { value: 14 } };
    const want = { hits: 9, misses: 2, passes: 3, originRequests: 5, requests: 14 };
    expect(edgeStatsOf(JSON.stringify({ version: 1, timestamp: 'x', counters }))).toEqual(want);
    expect(edgeStatsOf(JSON.stringify({ timestamp: 'x', ...counters }))).toEqual(want);
  });
});
