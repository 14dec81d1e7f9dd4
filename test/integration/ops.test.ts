// Health, readiness, metrics, migrations: the operational surface of a web process.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR } from '../../src/app/links-app.ts';
import { migrate } from '../../src/kit/db/migrator.ts';
import { shutdown } from '../../src/kit/http/server.ts';
import { Client, freshDatabase, signedUpClient, startTestServer, type TestServer } from '../support/app.ts';
import { mkdtempSync, writeFileSync, copyFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.close());

describe('health and metrics', () => {
  it('/healthz and /readyz answer 200 when serving', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('/metrics exports the contract names with labels', async () => {
    const c = await signedUpClient(server.url);
    const { json } = await c.post('/api/links', { url: 'https://example.com/m' });
    await fetch(`${server.url}/${json.code}`, { redirect: 'manual' });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/^http_request_duration_seconds_bucket\{.*method="GET".*route="\/:code".*status_code="302"/m);
    expect(text).toMatch(/^ladder_db_queries_total\{shard="0",role="primary"\} \d+/m);
    expect(text).toMatch(/# TYPE ladder_cache_requests_total counter/);
    expect(text).toMatch(/# TYPE ladder_replica_lag_seconds gauge/);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    // Unknown paths share one label value, so random URLs cannot blow up the series count.
    await fetch(`${server.url}/api/random-${Date.now()}`);
    expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/route="\(unmatched\)"/);
  });

  it('/readyz reports draining once shutdown starts', async () => {
    const s = await startTestServer({ drainDelayMs: 800 });
    const closing = shutdown(s.fastify);
    const res = await fetch(`${s.url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'draining' });
    await closing;
    await s.close();
  });
});

/** The versions of the migrations the app ships (0001_initial.sql, ...). */
const shipped = () =>
  readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d+_.*\.sql$/.test(f))
    .map((f) => Number(f.slice(0, f.indexOf('_'))))
    .sort((a, b) => a - b);

describe('migrations', () => {
  it('are idempotent and recorded', async () => {
    const url = await freshDatabase(); // already migrated once
    expect(await migrate(url, MIGRATIONS_DIR)).toEqual([]);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const { rows } = await db.query('select version from schema_migrations order by version');
    await db.end();
    expect(rows.map((r: { version: number }) => r.version)).toEqual(shipped());
  });

  it('refuse a changed migration and roll back a failing one', async () => {
    const url = await freshDatabase();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mig-'));
    for (const f of readdirSync(MIGRATIONS_DIR)) copyFileSync(path.join(MIGRATIONS_DIR, f), path.join(dir, f));
    const next = Math.max(...shipped()) + 1;
    writeFileSync(path.join(dir, `${String(next).padStart(4, '0')}_broken.sql`), 'create table half_done (id int); select no_such_function();');
    await expect(migrate(url, dir)).rejects.toThrow(new RegExp(`0*${next}_broken failed`));
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const { rows } = await db.query("select to_regclass('half_done') as t");
    expect(rows[0].t).toBeNull(); // no partial migration
    writeFileSync(path.join(dir, '0001_initial.sql'), '-- edited\n');
    await expect(migrate(url, dir)).rejects.toThrow(/changed after it was applied/);
    await db.end();
  });
});

describe('pages', () => {
  it('serve HTML with content-hashed, immutable assets; unknown codes get the 404 page', async () => {
    const home = await new Client(server.url).get('/');
    expect(home.status).toBe(200);
    const css = /href="(\/static\/app\.[0-9a-f]{10}\.css)"/.exec(home.text)?.[1];
    const js = /src="(\/static\/app\.[0-9a-f]{10}\.js)"/.exec(home.text)?.[1];
    expect(css).toBeDefined();
    expect(js).toBeDefined();
    const asset = await fetch(server.url + css!);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toMatch(/immutable/);
    for (const p of ['/signup', '/login']) expect((await fetch(server.url + p)).status).toBe(200);
    const dash = await fetch(`${server.url}/dashboard`, { redirect: 'manual' });
    expect(dash.status).toBe(303);
    expect(dash.headers.get('location')).toBe('/login');
    const missing = await fetch(`${server.url}/no-such-link`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toMatch(/Not found/);
  });
});
