// HAProxy in front of the web servers (rung 3): the generated configuration and a client
// for its runtime API (add, drain and remove servers without a reload).
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { LadderError, type ErrorCode } from '../kit/errors.ts';
import { rawErrorResponse } from '../kit/http/raw-response.ts';
import { REQUEST_KEY_HEADER } from '../kit/http/request-key.ts';

export interface HaproxyBackend {
  name: string;
  host: string;
  port: number;
}

export interface HaproxyConfigOptions {
  /** Where haproxyErrorFiles() were written: HAProxy's own answers use them. */
  errorFilesDir: string;
  bindHost: string;
  bindPort: number;
  adminSocket: string;
  servers: HaproxyBackend[];
  /** Server slots declared in all (web1..webN); those beyond `servers` start disabled and are
   * filled at runtime. HAProxy 2.6 refuses `cookie` on servers added with `add server`,
   * so pre-declared slots are what lets sticky rung 3 scale without a reload too. */
  slots: number;
  balance: 'roundrobin' | 'leastconn';
  /** Rung 3 without shared sessions must pin a user to the server that holds the session. */
  sticky: boolean;
  /** Where its built-in Prometheus exporter listens (loopback), when the topology is monitored. */
  metricsPort?: number;
  /**
   * The edge (Varnish, rung 6) is in front, at this address: the client is the last address
   * of the X-Forwarded-For it sends (Varnish appends its peer), and the sticky cookie is set
   * only on answers to POST (log in, sign up: where a session starts), so that the GETs the
   * edge caches carry no Set-Cookie.
   */
  edge?: string;
  /**
   * Rung 9: give every request a request key (REQUEST_KEY_HEADER, a random UUID) that stays
   * the same when HAProxy retries the request on another server, so that the click of a
   * redirect a killed server wrote but never answered, and which another server then
   * answered, is counted once (the workers keep the keys they applied). Without it, the
   * header is removed, so a client can never send one through the balancer.
   */
  requestKeys?: boolean;
}

/**
 * Timeouts: HAProxy closes idle client keep-alive after 10 s and never keeps a server
 * connection idle longer than the web servers' 65 s keep-alive timeout, so a request is
 * never sent on a connection the server is closing.
 *
 * An oversized body is answered by the web server (413, PAYLOAD_TOO_LARGE), not by a rule
 * here: HAProxy 2.6 does not drain the rest of a request it answers itself, so a client
 * still uploading is reset before it reads the answer (measured: 49 of 50 answers lost
 * with a client that writes the whole 3 MiB body). A web server that reads and discards
 * the body before answering leaves neither itself nor HAProxy a reason to reset.
 */
/**
 * What HAProxy answers itself (a request too slow to arrive, no server left, a server that
 * answered nothing), in the catalogue's shape instead of its HTML pages, so a client sees
 * the same errors through the balancer as direct. Status -> catalogue code.
 * One gap: HAProxy before 3.2 ignores `errorfile 400` for the requests its own parser
 * refuses (a malformed request line or header, headers over its buffer): those get its
 * built-in HTML 400 (haproxy/haproxy#3032, fixed in 3.2). Still a 400, never a 5xx or a reset.
 */
const BALANCER_ERRORS: Record<number, { code: ErrorCode; message: string }> = {
  400: { code: 'VALIDATION_FAILED', message: 'Malformed request.' },
  403: { code: 'FORBIDDEN_ORIGIN', message: 'Request refused.' },
  404: { code: 'NOT_FOUND', message: 'Not found.' },
  405: { code: 'METHOD_NOT_ALLOWED', message: 'Method not allowed.' },
  408: { code: 'REQUEST_TIMEOUT', message: 'The request took too long to arrive.' },
  413: { code: 'PAYLOAD_TOO_LARGE', message: 'The request is too large.' },
  429: { code: 'RATE_LIMITED', message: 'Too many requests; retry later.' },
  500: { code: 'INTERNAL', message: 'Internal error.' },
  501: { code: 'INTERNAL', message: 'Not implemented.' },
  502: { code: 'SERVICE_UNAVAILABLE', message: 'No web server answered; retry shortly.' },
  503: { code: 'SERVICE_UNAVAILABLE', message: 'No web server is available; retry shortly.' },
  504: { code: 'SERVICE_UNAVAILABLE', message: 'No web server answered in time; retry shortly.' },
};

/** The errorfiles, by status: whole HTTP responses, as HAProxy's `errorfile` wants them. */
export function haproxyErrorFiles(): Map<number, string> {
  const files = new Map<number, string>();
  for (const [status, { code, message }] of Object.entries(BALANCER_ERRORS)) {
    files.set(Number(status), rawErrorResponse(new LadderError(code, message), Number(status)));
  }
  return files;
}

export function haproxyConfig(o: HaproxyConfigOptions): string {
  const errorfiles = [...haproxyErrorFiles().keys()].map((status) => `  errorfile ${status} ${path.join(o.errorFilesDir, `${status}.http`)}`).join('\n');
  const lines: string[] = [];
  for (let i = 1; i <= Math.max(o.slots, o.servers.length); i++) {
    const name = `web${i}`;
    const s = o.servers.find((x) => x.name === name);
    const addr = s ? `${s.host}:${s.port}` : '127.0.0.1:1';
    lines.push(`  server ${name} ${addr}${o.sticky ? ` cookie ${name}` : ''}${s ? '' : ' disabled'}`);
  }
  const servers = lines.join('\n');
  // Its own frontend on loopback, never on the public entry: /metrics there is the exporter.
  const metrics =
    o.metricsPort === undefined
      ? ''
      : `
frontend metrics
  bind 127.0.0.1:${o.metricsPort}
  http-request use-service prometheus-exporter if { path /metrics }
  http-request return status 404 content-type text/plain string "not found" unless { path /metrics }
`;
  return `# Generated by ladder; edits are overwritten.
global
  maxconn 4096
  stats socket ${o.adminSocket} mode 600 level admin
  stats timeout 10s

defaults
  mode http
  option http-keep-alive
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout http-request 10s
  timeout http-keep-alive 10s
  timeout queue 5s
  # A check every 500 ms, but a slow answer is not a failure until 2 s: a killed server
  # (refused at once) or a draining one (503 at once) leaves rotation within a second,
  # while a small instance that is busy but working is not dropped, which would pile its
  # load on the others and cascade.
  timeout check 2s
  # A connection failure, an empty answer or a 503 from a server that is shutting down is
  # retried on another server, for GET and HEAD only (see disable-l7-retry below).
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response response-timeout 503
  # HAProxy's own answers in the catalogue's JSON shape (haproxyErrorFiles).
${errorfiles}

frontend links
  bind ${o.bindHost}:${o.bindPort}
  # The balancer says who the client is: it sets X-Forwarded-For itself (replacing, never
  # appending to, what a client sent) and drops the client's X-Forwarded-Proto,
  # X-Forwarded-Host and Forwarded. Web servers trust these headers from the balancer's
  # address only, so a client can neither pick its rate-limit bucket nor the host of its
  # short URLs, nor turn on HSTS (docs/operations.md). The scheme is http, which is what a
  # web server assumes without the header; it is dropped rather than set to http because
  # the redirect fast path steps aside for any request that carries it (server.ts).
  # Terminating TLS here would set it to https.
  http-request del-header forwarded
  http-request del-header x-forwarded-host
  http-request del-header x-forwarded-port
  http-request del-header x-forwarded-proto
${o.requestKeys ? `  # One key per client request, set before a server is chosen: an L7 retry resends the
  # same request, key included (clicks are counted once per key, docs/operations.md).
  http-request set-header ${REQUEST_KEY_HEADER} %[uuid]` : `  http-request del-header ${REQUEST_KEY_HEADER}`}
${o.edge ? `  http-request set-header x-forwarded-for %[req.hdr(x-forwarded-for,-1)] if { src ${o.edge} } { req.hdr_cnt(x-forwarded-for) gt 0 }
  http-request set-header x-forwarded-for %[src] unless { src ${o.edge} } { req.hdr_cnt(x-forwarded-for) gt 0 }` : '  http-request set-header x-forwarded-for %[src]'}
  default_backend web

${metrics}
backend web
  balance ${o.balance}
  option httpchk GET /readyz
  http-check expect status 200
  http-request disable-l7-retry if !METH_GET !METH_HEAD
  http-reuse safe
${o.sticky ? `  cookie LADDER_SRV insert indirect nocache httponly${o.edge ? ' postonly' : ''}\n` : ''}  # Weight ${FULL_WEIGHT}, not 1: a server added at runtime starts at a fraction of it (rampWeight).
  default-server check inter 500ms fall 2 rise 2 slowstart 0s weight ${FULL_WEIGHT}
${servers}
`;
}

/** HAProxy refuses a `stats socket` path longer than this (sun_path, less its own suffix). */
const MAX_SOCKET_PATH = 90;

/**
 * Where the runtime API socket of the HAProxy whose folder is `dir` lives: in it, unless that
 * path is too long for a Unix socket (a checkout deep in a temporary folder), then in a
 * private folder under /tmp named after `dir` (mode 700), so every caller finds it.
 */
export function haproxySocketPath(dir: string): string {
  const inDir = path.resolve(dir, 'admin.sock');
  if (Buffer.byteLength(inDir) <= MAX_SOCKET_PATH) return inDir;
  const short = path.join('/tmp', `ladder-haproxy-${createHash('sha1').update(path.resolve(dir)).digest('hex').slice(0, 16)}`);
  mkdirSync(short, { recursive: true, mode: 0o700 });
  chmodSync(short, 0o700);
  return path.join(short, 'admin.sock');
}

/** One command on the runtime API socket; resolves with HAProxy's answer. */
export function haproxyCommand(socket: string, command: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket);
    let out = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`HAProxy runtime API: no answer to "${command}"`));
    }, timeoutMs);
    conn.on('connect', () => conn.end(`${command}\n`));
    conn.on('data', (d) => (out += d.toString()));
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    conn.on('close', () => {
      clearTimeout(timer);
      resolve(out.trim());
    });
  });
}

/** Puts a web server into its slot at runtime (no reload) and lets health checks admit it. */
export async function enableServer(socket: string, s: HaproxyBackend): Promise<void> {
  const addr = await haproxyCommand(socket, `set server web/${s.name} addr ${s.host} port ${s.port}`);
  if (/No such|not found|error/i.test(addr)) throw new Error(`HAProxy refused the address of ${s.name}: ${addr}`);
  await haproxyCommand(socket, `enable health web/${s.name}`);
  await haproxyCommand(socket, `set server web/${s.name} state ready`);
}

/** Every server's weight; a server added at runtime is ramped up to it (rampWeight). */
export const FULL_WEIGHT = 100;

/**
 * Ramps a server's weight from a tenth of FULL_WEIGHT to all of it over `ms`, in ten steps:
 * a server added under load gets its share of traffic gradually (HAProxy's slowstart, for a
 * server enabled through the runtime API; the config's slowstart stays 0 for the bench,
 * which puts servers in and out of rotation and measures them at once).
 */
export async function rampWeight(socket: string, name: string, ms: number): Promise<void> {
  const steps = 10;
  for (let i = 1; i <= steps; i++) {
    await haproxyCommand(socket, `set weight web/${name} ${Math.round((FULL_WEIGHT * i) / steps)}`);
    if (i < steps) await new Promise((r) => setTimeout(r, ms / steps));
  }
}

/** Stops new traffic to a server (drain): open requests finish, sticky users move on. */
export async function drainServer(socket: string, name: string): Promise<void> {
  await haproxyCommand(socket, `set server web/${name} state drain`);
}

/** Takes a server out entirely (maintenance): its slot is free for a later scale-up. */
export async function disableServer(socket: string, name: string): Promise<void> {
  await haproxyCommand(socket, `set server web/${name} state maint`);
}

/** Each server's operational state as HAProxy sees it (UP, DOWN, MAINT, ...). */
export async function serverStates(socket: string): Promise<Record<string, string>> {
  const csv = await haproxyCommand(socket, 'show stat');
  const out: Record<string, string> = {};
  for (const line of csv.split('\n')) {
    const f = line.split(',');
    if (f[0] === 'web' && f[1] && f[1] !== 'BACKEND') out[f[1]] = f[17] ?? '';
  }
  return out;
}
