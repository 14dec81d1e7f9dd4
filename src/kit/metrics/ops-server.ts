// The small HTTP server of a process that serves no users (a worker, the relay): GET /healthz
// (alive), /readyz (its dependencies answer) and /metrics (Prometheus text), on loopback,
// for the launcher's readiness wait and for monitoring.
import http from 'node:http';
import type { Registry } from 'prom-client';

export interface OpsServer {
  url: string;
  close(): Promise<void>;
}

export async function startOpsServer(opts: { host: string; port: number; registry: Registry; ready: () => Promise<boolean> }): Promise<OpsServer> {
  const server = http.createServer((req, res) => {
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET') return send(405, 'application/json', '{"error":{"code":"METHOD_NOT_ALLOWED","message":"GET only."}}');
    if (req.url === '/healthz') return send(200, 'application/json', '{"status":"ok"}');
    if (req.url === '/readyz') {
      opts.ready().then(
        (ok) => send(ok ? 200 : 503, 'application/json', ok ? '{"status":"ready"}' : '{"status":"unavailable"}'),
        () => send(503, 'application/json', '{"status":"unavailable"}'),
      );
      return;
    }
    if (req.url === '/metrics') {
      opts.registry.metrics().then(
        (text) => send(200, opts.registry.contentType, text),
        (err: unknown) => send(500, 'text/plain', `metrics failed: ${(err as Error).message}\n`),
      );
      return;
    }
    send(404, 'application/json', '{"error":{"code":"NOT_FOUND","message":"No such path."}}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    url: `http://${opts.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
