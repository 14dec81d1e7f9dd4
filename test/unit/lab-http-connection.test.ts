// The driver's HTTP client against a real node:http server, including the framings it must
// refuse rather than misread.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpConnection } from '../../src/lab/driver/http-connection.ts';

const PAGE = '<p>' + 'x'.repeat(100_000) + '</p>';
let server: http.Server;
let port: number;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/redirect') res.writeHead(302, { location: 'https://example.com/', 'content-length': '0' }).end();
    else if (req.url === '/page') res.writeHead(404, { 'content-length': String(PAGE.length) }).end(PAGE);
    else if (req.url === '/chunked') res.writeHead(200).end('chunked by default');
    else if (req.url === '/close') res.writeHead(302, { connection: 'close', 'content-length': '0' }).end();
    else if (req.url === '/me') res.writeHead(req.headers.cookie === 'sid=abc; LADDER_SRV=web1' ? 200 : 401, { 'content-length': '0' }).end();
    else res.writeHead(204).end();
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('HttpConnection', () => {
  it('reads statuses and skips bodies of any size over one keep-alive connection', async () => {
    const c = await HttpConnection.open('127.0.0.1', port);
    try {
      expect(await c.get('/redirect')).toBe(302);
      expect(await c.get('/page')).toBe(404);
      expect(await c.get('/nothing')).toBe(204);
      for (let i = 0; i < 50; i++) expect(await c.get('/redirect')).toBe(302);
      expect(c.usable).toBe(true);
    } finally {
      c.close();
    }
  });

  it('refuses a response it cannot frame, and is unusable after', async () => {
    const c = await HttpConnection.open('127.0.0.1', port);
    await expect(c.get('/chunked')).rejects.toThrow(/Content-Length/);
    expect(c.usable).toBe(false);
    await expect(c.get('/redirect')).rejects.toThrow();
  });

  it('sends a Cookie header only when given one', async () => {
    const c = await HttpConnection.open('127.0.0.1', port);
    try {
      expect(await c.get('/me', 'sid=abc; LADDER_SRV=web1')).toBe(200);
      expect(await c.get('/me')).toBe(401);
    } finally {
      c.close();
    }
  });

  it('honours Connection: close', async () => {
    const c = await HttpConnection.open('127.0.0.1', port);
    expect(await c.get('/close')).toBe(302);
    expect(c.usable).toBe(false);
    c.close();
  });

  it('fails to open on a port where nothing listens', async () => {
    const probe = http.createServer();
    probe.listen(0, '127.0.0.1');
    await new Promise((r) => probe.once('listening', r));
    const free = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await expect(HttpConnection.open('127.0.0.1', free)).rejects.toThrow();
  });
});
