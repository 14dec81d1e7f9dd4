// HAProxy in front of the web servers as a component (rung 3 and up), and the topology's
// balancer: scaling adds, drains and removes web servers through its runtime API, without
// a reload. Its configuration is written afresh on every start from the servers it has now.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stopChild } from '../../kit/process/stop-process.ts';
import { MAX_WEB_BALANCED } from '../../topology/topology.ts';
import { requireBinary } from '../binaries.ts';
import { exitReason, httpOk, spawnLogged, waitUntil } from '../child.ts';
import { ROLES, type Balancer, type Component, type MetricsTarget } from '../component.ts';
import {
  disableServer,
  drainServer,
  enableServer,
  FULL_WEIGHT,
  haproxyCommand,
  haproxyConfig,
  haproxyErrorFiles,
  haproxySocketPath,
  rampWeight,
  serverStates,
  type HaproxyBackend,
} from '../haproxy.ts';

/** HAProxy server slots, and so the most web servers `ladder scale` can run behind it. */
export const MAX_WEB = MAX_WEB_BALANCED;

const READY_TIMEOUT_MS = 30_000;

export interface HaproxyComponentOptions {
  /** Its folder: configuration and, when the path is short enough, the runtime API socket. */
  dir: string;
  host: string;
  port: number;
  logFile: string;
  webs: readonly Component[];
  balance: 'roundrobin' | 'leastconn';
  sticky: boolean;
  /** A loopback port for HAProxy's built-in Prometheus exporter (monitoring), on a frontend of its own. */
  metricsPort?: number;
  /** The edge's address, when Varnish is in front (haproxy.ts, HaproxyConfigOptions.edge). */
  edge?: string;
  /** Rung 9: a request key on every request, kept across retries (HaproxyConfigOptions.requestKeys). */
  requestKeys?: boolean;
}

export class HaproxyComponent implements Component, Balancer {
  readonly name = 'haproxy';
  readonly role = 'haproxy' as const;
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  readonly metrics: MetricsTarget | undefined;
  private readonly servers: HaproxyBackend[];
  private readonly adminSocket: string;

  constructor(private readonly opts: HaproxyComponentOptions) {
    this.port = opts.port;
    this.url = httpUrl(opts.host, opts.port);
    this.logFile = opts.logFile;
    this.metrics = opts.metricsPort !== undefined ? { port: opts.metricsPort, path: '/metrics' } : undefined;
    this.servers = opts.webs.map(backend);
    // Absolute: HAProxy reads a relative `stats socket` path as host:port.
    this.adminSocket = haproxySocketPath(opts.dir);
  }

  private get cfgFile(): string {
    return path.join(this.opts.dir, 'haproxy.cfg');
  }

  async start(): Promise<ChildProcess> {
    const bin = requireBinary('haproxy');
    haproxySocketPath(this.opts.dir); // (re)makes its folder when it lives outside `dir`
    const errorFilesDir = path.join(this.opts.dir, 'errors');
    mkdirSync(errorFilesDir, { recursive: true });
    for (const [status, response] of haproxyErrorFiles()) writeFileSync(path.join(errorFilesDir, `${status}.http`), response);
    writeFileSync(
      this.cfgFile,
      haproxyConfig({
        errorFilesDir,
        bindHost: this.opts.host,
        bindPort: this.port,
        adminSocket: this.adminSocket,
        servers: this.servers,
        slots: MAX_WEB,
        balance: this.opts.balance,
        sticky: this.opts.sticky,
        ...(this.opts.metricsPort !== undefined ? { metricsPort: this.opts.metricsPort } : {}),
        ...(this.opts.edge !== undefined ? { edge: this.opts.edge } : {}),
        requestKeys: this.opts.requestKeys === true,
      }),
    );
    return spawnLogged(bin, ['-db', '-f', this.cfgFile], { logFile: this.logFile });
  }

  /** Ready once it answers and has seen every web server pass a health check. */
  async waitReady(child: ChildProcess): Promise<void> {
    await waitUntil(
      async () => {
        if (!(await httpOk(`${this.url}/healthz`))) return false;
        const states = await serverStates(this.adminSocket).catch((): Record<string, string> => ({})); // not listening yet
        return this.servers.every((s) => states[s.name] === 'UP');
      },
      READY_TIMEOUT_MS,
      this.name,
      () => exitReason(child, this.logFile),
    );
  }

  async stop(child: ChildProcess): Promise<void> {
    await stopChild(child, { signal: ROLES.haproxy.stopSignal, timeoutMs: ROLES.haproxy.stopTimeoutMs });
    // HAProxy leaves its socket behind; when it lives outside its folder, so does the
    // folder haproxySocketPath made for it.
    if (!this.adminSocket.startsWith(`${path.resolve(this.opts.dir)}${path.sep}`)) {
      rmSync(path.dirname(this.adminSocket), { recursive: true, force: true });
    }
  }

  async addServer(web: Component): Promise<void> {
    if (this.servers.length >= MAX_WEB) throw new Error(`at most ${MAX_WEB} web servers behind HAProxy`);
    await enableServer(this.adminSocket, backend(web));
    this.servers.push(backend(web));
  }

  async addServerGradually(web: Component, rampMs: number): Promise<void> {
    if (this.servers.length >= MAX_WEB) throw new Error(`at most ${MAX_WEB} web servers behind HAProxy`);
    await haproxyCommand(this.adminSocket, `set weight web/${web.name} ${Math.round(FULL_WEIGHT / 10)}`);
    await enableServer(this.adminSocket, backend(web));
    this.servers.push(backend(web));
    await rampWeight(this.adminSocket, web.name, rampMs);
  }

  async drainServer(web: Component): Promise<void> {
    await drainServer(this.adminSocket, web.name);
  }

  async removeServer(web: Component): Promise<void> {
    await disableServer(this.adminSocket, web.name);
    const i = this.servers.findIndex((s) => s.name === web.name);
    if (i >= 0) this.servers.splice(i, 1);
  }
}

function backend(web: Component): HaproxyBackend {
  return { name: web.name, host: '127.0.0.1', port: web.port };
}

/** http://host:port, with an IPv6 address in brackets. */
export function httpUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
