// The request key on real HAProxy (rung 9's configuration, haproxy.ts): a redirect whose first
// server wrote its click and died before answering is retried by HAProxy on another server
// (`retry-on empty-response`), and both servers must see the same key, or the click is
// counted twice. Here one server closes every redirect without an answer (as a killed server
// does) and the other answers it: every key the first saw reaches the second, each client
// request has a key of its own, and a key a client sends is replaced. Without request keys
// (rungs 3-8) a client's key never gets through.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REQUEST_KEY_HEADER, requestKeyOf } from '../../src/kit/http/request-key.ts';
import { stopChild } from '../../src/kit/process/stop-process.ts';
import { requireBinary } from '../../src/launcher/binaries.ts';
import { haproxyConfig, haproxyErrorFiles, haproxySocketPath } from '../../src/launcher/haproxy.ts';
import { freePort } from '../../src/launcher/state-dir.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'ladder-retry-'));
const seen: Record<'web1' | 'web2', (string | undefined)[]> = { web1: [], web2: [] };
const servers: http.Server[] = [];
const proxies: ChildProcess[] = [];

/** web1 drops every redirect without a byte (a server killed mid-request); web2 answers 302. */
function backend(name: 'web1' | 'web2'): Promise<number> {
  const server = http.createServer((req, res) => {
    if (req.url === '/readyz') return res.end('ok');
    seen[name].push(req.headers[REQUEST_KEY_HEADER] as string | undefined);
    if (name === 'web1') return req.socket.destroy();
    res.writeHead(302, { location: 'https://example.com/' }).end();
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

async function startHaproxy(name: string, requestKeys: boolean, ports: number[]): Promise<number> {
  const d = path.join(dir, name);
  mkdirSync(path.join(d, 'errors'), { recursive: true });
  for (const [status, response] of haproxyErrorFiles()) writeFileSync(path.join(d, 'errors', `${status}.http`), response);
  const port = await freePort();
  const cfg = haproxyConfig({
    errorFilesDir: path.join(d, 'errors'),
    bindHost: '127.0.0.1',
    bindPort: port,
    adminSocket: haproxySocketPath(d),
    servers: ports.map((p, i) => ({ name: `web${i + 1}`, host: '127.0.0.1', port: p })),
    slots: ports.length,
    balance: 'roundrobin',
    sticky: false,
    requestKeys,
  });
  writeFileSync(path.join(d, 'haproxy.cfg'), cfg);
  const child = spawn(requireBinary('haproxy'), ['-db', '-f', path.join(d, 'haproxy.cfg')], { stdio: 'ignore' });
  proxies.push(child);
  // Both servers pass their health checks (every 500 ms, rise 2) before a request is sent.
  await new Promise((r) => setTimeout(r, 1800));
  return port;
}

function get(port: number, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/abc123', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    }).on('error', reject);
  });
}

let withKeys: number;
let withoutKeys: number;

beforeAll(async () => {
  const ports = [await backend('web1'), await backend('web2')];
  withKeys = await startHaproxy('keys', true, ports);
  withoutKeys = await startHaproxy('nokeys', false, ports);
}, 30_000);

afterAll(async () => {
  for (const p of proxies) await stopChild(p, { signal: 'SIGTERM', timeoutMs: 5000 });
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('HAProxy request keys', () => {
  it('a redirect retried on another server carries the same key; each request has its own; a client cannot choose it', async () => {
    seen.web1.length = 0;
    seen.web2.length = 0;
    const forged = '00000000-0000-4000-8000-000000000000';
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push(await get(withKeys, i % 2 ? { [REQUEST_KEY_HEADER]: forged } : {}));
    expect(statuses).toEqual(Array(8).fill(302));
    // Round robin sent some requests to web1 first, which HAProxy then retried on web2.
    expect(seen.web1.length).toBeGreaterThan(0);
    expect(seen.web2).toHaveLength(8);
    const keys = seen.web2.map((k) => requestKeyOf(k));
    expect(keys.every((k) => k !== undefined)).toBe(true);
    expect(new Set(keys).size).toBe(8);
    expect(keys).not.toContain(forged);
    for (const k of seen.web1) expect(keys).toContain(k);
  });

  it('without request keys (rungs 3-8), a key a client sends is removed', async () => {
    seen.web2.length = 0;
    expect(await get(withoutKeys, { [REQUEST_KEY_HEADER]: '00000000-0000-4000-8000-000000000000' })).toBe(302);
    expect(seen.web2).toEqual([undefined]);
  });
});
