// The monitoring dashboard's server, run inside the supervisor on a loopback port of its own
// (never behind the public entry): the page and its scripts (plain ES modules and uPlot, no
// build step), the running topology as `ladder status` has it, and Prometheus' and
// Alertmanager's read APIs proxied, so the page needs one origin only.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { UpState } from '../up-state.ts';

const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));
const UPLOT_DIR = fileURLToPath(new URL('.', `file://${createRequire(import.meta.url).resolve('uplot/dist/uPlot.esm.js')}`));

/** Files the page loads, by URL path: [file, content type]. Nothing else is served from disk. */
const FILES: Record<string, [string, string]> = {
  '/': [`${STATIC_DIR}index.html`, 'text/html; charset=utf-8'],
  '/static/dashboard.js': [`${STATIC_DIR}dashboard.js`, 'text/javascript; charset=utf-8'],
  '/static/topology-view.js': [`${STATIC_DIR}topology-view.js`, 'text/javascript; charset=utf-8'],
  '/static/dashboard.css': [`${STATIC_DIR}dashboard.css`, 'text/css; charset=utf-8'],
  '/static/uPlot.esm.js': [`${UPLOT_DIR}uPlot.esm.js`, 'text/javascript; charset=utf-8'],
  '/static/uPlot.min.css': [`${UPLOT_DIR}uPlot.min.css`, 'text/css; charset=utf-8'],
};

/** The read APIs passed through, by path prefix, to Prometheus (`prom`) or Alertmanager (`am`). */
const PROXIED: readonly { path: string; to: 'prom' | 'am' }[] = [
  { path: '/api/v1/query', to: 'prom' },
  { path: '/api/v1/query_range', to: 'prom' },
  { path: '/api/v1/targets', to: 'prom' },
  { path: '/api/v1/alerts', to: 'prom' },
  { path: '/api/v2/alerts', to: 'am' },
];

/** A PromQL query string longer than this is refused (the page's longest is under 1 KiB). */
const MAX_QUERY_LENGTH = 8192;
const UPSTREAM_TIMEOUT_MS = 5000;

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export interface DashboardOptions {
  port: number;
  prometheusUrl: string;
  alertmanagerUrl: string;
}

export class DashboardServer {
  private server: http.Server | undefined;
  private snapshot: () => UpState = () => {
    throw new Error('dashboard not started');
  };

  constructor(private readonly opts: DashboardOptions) {}

  get url(): string {
    return `http://127.0.0.1:${this.opts.port}`;
  }

  /** Listens; `snapshot` gives the topology as the supervisor has it now. Resolves with the URL. */
  async start(snapshot: () => UpState): Promise<string> {
    this.snapshot = snapshot;
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) json(res, 500, { error: { code: 'INTERNAL', message: (err as Error).message } });
        else res.destroy();
      });
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Another site's page that a DNS name rebinds to loopback sends its own Host: refused.
    if (!/^(127\.0\.0\.1|localhost|\[::1\]):\d+$/.test(req.headers.host ?? '')) {
      json(res, 403, { error: { code: 'FORBIDDEN_ORIGIN', message: 'The dashboard answers on 127.0.0.1 or localhost only.' } });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      json(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'The dashboard is read-only.' } });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204, SECURITY_HEADERS).end();
      return;
    }
    const file = FILES[url.pathname];
    if (file) {
      const body = await readFile(file[0]);
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': file[1], 'content-length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (url.pathname === '/api/topology') {
      json(res, 200, topologyOf(this.snapshot(), this.url, this.opts));
      return;
    }
    const proxied = PROXIED.find((p) => p.path === url.pathname);
    if (proxied) {
      await this.proxy(url, proxied.to === 'prom' ? this.opts.prometheusUrl : this.opts.alertmanagerUrl, res);
      return;
    }
    json(res, 404, { error: { code: 'NOT_FOUND', message: 'Not found.' } });
  }

  private async proxy(url: URL, upstream: string, res: http.ServerResponse): Promise<void> {
    if (url.search.length > MAX_QUERY_LENGTH) {
      json(res, 414, { error: { code: 'VALIDATION_FAILED', message: `The query is longer than ${MAX_QUERY_LENGTH} characters.` } });
      return;
    }
    let answer: Response;
    try {
      answer = await fetch(`${upstream}${url.pathname}${url.search}`, { signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS) });
    } catch (err) {
      json(res, 503, { error: { code: 'SERVICE_UNAVAILABLE', message: `${upstream} did not answer: ${(err as Error).message}` } });
      return;
    }
    const body = Buffer.from(await answer.arrayBuffer());
    // Prometheus answers a bad query with 400 and says why: passed on as it is.
    res.writeHead(answer.status, { ...SECURITY_HEADERS, 'content-type': answer.headers.get('content-type') ?? 'application/json' });
    res.end(body);
  }
}

/** What the page draws: the nodes as `ladder status` lists them, and where the monitoring is. */
export function topologyOf(s: UpState, dashboard: string, o: Pick<DashboardOptions, 'prometheusUrl' | 'alertmanagerUrl'>) {
  return {
    entry: s.entry,
    rung: s.rung,
    state: s.state,
    dashboard,
    prometheus: o.prometheusUrl,
    alertmanager: o.alertmanagerUrl,
    nodes: s.nodes.map((n) => ({
      name: n.name,
      role: n.role,
      pid: n.pid,
      port: n.port,
      url: n.url,
      state: n.state,
      restarts: n.restarts,
      ...(n.cpu !== undefined ? { cpu: n.cpu } : {}),
    })),
  };
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
