// Test helpers: a fresh database per caller in the run's Postgres, and a Links web server
// on it (listening on a free loopback port, so tests speak real HTTP).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { MIGRATIONS_DIR } from '../../src/app/links-app.ts';
import { loadServerConfig, type ServerConfigOverrides } from '../../src/kit/config.ts';
import { migrate } from '../../src/kit/db/migrator.ts';
import { startWebProcess, type WebProcess } from '../../src/server/web-process.ts';

export const TEST_SECRET = 'test-secret-that-is-long-enough-0123456789';

/** Runs one statement on the database at `url`, on a client of its own, and returns its rows. */
export async function sql<R extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(text, params)).rows;
  } finally {
    await c.end();
  }
}

/** Creates an empty, migrated database and returns its URL. */
export async function freshDatabase(): Promise<string> {
  const admin = inject('pgAdminUrl');
  const name = `t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = admin.replace(/\/postgres$/, `/${name}`);
  await migrate(url, MIGRATIONS_DIR);
  return url;
}

export interface TestServer extends WebProcess {
  databaseUrl: string;
  /** Runs SQL against the server's database directly (for checking rows). */
  sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params?: unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  /** Serve this (already migrated) database, e.g. another test server's, instead of a new one. */
  databaseUrl?: string;
}

export async function startTestServer(overrides: ServerConfigOverrides = {}, opts: TestServerOptions = {}): Promise<TestServer> {
  const databaseUrl = opts.databaseUrl ?? (await freshDatabase());
  const config = loadServerConfig({
    host: '127.0.0.1',
    port: 0,
    secret: TEST_SECRET,
    logLevel: 'silent',
    clickFlushMs: 100,
    ...overrides,
  });
  const web = await startWebProcess(config, databaseUrl);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  return {
    ...web,
    databaseUrl,
    sql: async (text, params) => (await pool.query(text, params)).rows,
    close: async () => {
      await web.stop();
      await pool.end();
    },
  };
}

/** A tiny HTTP client that keeps a cookie jar, like a browser session. */
export class Client {
  private readonly jar = new Map<string, string>();
  constructor(readonly base: string) {}

  /** The Cookie header it sends ("a=1; b=2"); setting it replaces the whole jar. */
  get cookie(): string | undefined {
    return this.jar.size === 0 ? undefined : Array.from(this.jar, ([k, v]) => `${k}=${v}`).join('; ');
  }

  set cookie(header: string | undefined) {
    this.jar.clear();
    for (const part of (header ?? '').split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0) this.jar.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
    }
  }

  /** One cookie's value, or undefined. */
  cookieValue(name: string): string | undefined {
    return this.jar.get(name);
  }

  /** Drops one cookie, as a client that does not keep it would. */
  forget(name: string): void {
    this.jar.delete(name);
  }

  async req(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; headers: Headers; json: any; text: string }> {
    const h: Record<string, string> = { ...headers };
    if (body !== undefined && !('content-type' in h)) h['content-type'] = 'application/json';
    if (this.cookie) h.cookie = this.cookie;
    const res = await fetch(this.base + path, {
      method,
      headers: h,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      redirect: 'manual',
    });
    for (const setCookie of res.headers.getSetCookie()) {
      const pair = setCookie.split(';')[0]!;
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (value === '' || /;\s*Max-Age=0\b/i.test(setCookie)) this.jar.delete(name);
      else this.jar.set(name, value);
    }
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, json, text };
  }

  get = (path: string, headers?: Record<string, string>) => this.req('GET', path, undefined, headers);
  post = (path: string, body?: unknown, headers?: Record<string, string>) => this.req('POST', path, body, headers);
  patch = (path: string, body?: unknown) => this.req('PATCH', path, body);
  del = (path: string) => this.req('DELETE', path);
}

let counter = 0;
export function uniqueEmail(): string {
  return `u${Date.now().toString(36)}${(counter++).toString(36)}${randomBytes(3).toString('hex')}@example.com`;
}

/** Signs up a new user and returns a logged-in client. */
export async function signedUpClient(base: string): Promise<Client> {
  const c = new Client(base);
  const res = await c.post('/api/signup', { email: uniqueEmail(), password: 'correct horse battery' });
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${res.text}`);
  return c;
}
