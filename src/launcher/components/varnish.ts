// The edge (rung 6): Varnish in front of HAProxy, node `edge`, role `varnish`. varnishd runs
// in the foreground (-F) so that the supervisor owns it: its pid is the manager, which forks
// the cacher child and stops it on SIGTERM. Its VCL (varnish-vcl.ts) is written afresh on
// every start; its working folder (-n) is what varnishadm, varnishstat and an exporter read.
import type { ChildProcess } from 'node:child_process';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { LadderFailure } from '../../kit/errors.ts';
import { stopChild } from '../../kit/process/stop-process.ts';
import { findBinary, requireBinary } from '../binaries.ts';
import { exitReason, spawnLogged, waitUntil } from '../child.ts';
import { ROLES, type Component, type MetricsTarget } from '../component.ts';
import { edgeVcl } from '../varnish-vcl.ts';
import { httpUrl } from './haproxy.ts';

const READY_TIMEOUT_MS = 30_000;
const run = promisify(execFile);

/**
 * The shared-memory log records the edge does not write (vsl_mask): every per-request one
 * (headers, timestamps, VCL calls, session and backend-connection records). Writing them
 * cost about a quarter of Varnish's CPU per cache hit here: 20.8 against 15.8 µs per asset
 * hit at 0.2 core, 9,600 against 12,750 hits/s (docs/performance.md, "The edge"). Errors,
 * health probes, lost or bad headers and notices are still logged, varnishstat's counters
 * (what `ladder status` and the exporter read) are not log records, and an operator who
 * needs full varnishlog output turns it back on without a restart:
 * `varnishadm -n <workDir> param.set vsl_mask default`.
 */
export const EDGE_VSL_MASK = [
  // sessions, transactions and backend connections
  'SessOpen', 'SessClose', 'Begin', 'End', 'Link', 'ReqStart', 'Proxy',
  'BackendOpen', 'BackendReuse', 'BackendClose', 'BackendStart',
  // the client's request and the response it gets
  'ReqMethod', 'ReqURL', 'ReqProtocol', 'ReqStatus', 'ReqReason', 'ReqHeader', 'ReqUnset', 'ReqAcct',
  'RespMethod', 'RespURL', 'RespProtocol', 'RespStatus', 'RespReason', 'RespHeader', 'RespUnset', 'Timestamp',
  // the backend request, its response and the stored object
  'BereqMethod', 'BereqURL', 'BereqProtocol', 'BereqStatus', 'BereqReason', 'BereqHeader', 'BereqUnset', 'BereqAcct',
  'BerespMethod', 'BerespURL', 'BerespProtocol', 'BerespStatus', 'BerespReason', 'BerespHeader', 'BerespUnset',
  'ObjMethod', 'ObjURL', 'ObjUnset', 'TTL', 'Storage', 'Length', 'Fetch_Body', 'Filters', 'Gzip', 'PipeAcct',
  // VCL and the cache lookup
  'VCL_call', 'VCL_return', 'VCL_use', 'VCL_acl', 'Hit', 'HitMiss', 'HitPass',
]
  .map((tag) => `-${tag}`)
  .join(',');

/**
 * Where the edge keeps its VCL and working folder: under the topology's folder. Started as
 * root, Varnish compiles the VCL and runs its cacher as its own accounts (varnish, vcache),
 * which must reach both: inside a private folder (a checkout under a 0700 temporary folder)
 * varnishd exited with code 2 at start. They then live under /var/lib/ladder, named after the
 * topology's folder, as Postgres' data does (docs/decisions.md, "Postgres under root").
 */
export function edgeDir(upDir: string): string {
  const requested = path.join(upDir, 'edge');
  if (process.getuid?.() !== 0 || searchableByAll(path.resolve(upDir))) return requested;
  const hash = createHash('sha256').update(path.resolve(requested)).digest('hex').slice(0, 16);
  return path.join('/var/lib/ladder', `edge-${hash}`);
}

/** varnishd's working folder (-n): what varnishadm, varnishstat and the exporter are pointed at. */
export function varnishWorkDir(upDir: string): string {
  return path.join(edgeDir(upDir), 'varnish');
}

/** Whether every existing ancestor of dir (and dir, if it exists) lets others search it. */
function searchableByAll(dir: string): boolean {
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      if ((statSync(d).mode & 0o001) === 0) return false;
    } catch {
      // not made yet: the launcher makes it 0755
    }
    if (path.dirname(d) === d) return true;
  }
}

export interface VarnishComponentOptions {
  /** The topology's folder (<stateDir>/up). */
  upDir: string;
  host: string;
  port: number;
  /** Varnish's management port (-T), on loopback. */
  adminPort: number;
  logFile: string;
  /** The origin: HAProxy. */
  origin: { host: string; port: number };
  purgeToken: string;
  /** Cache size, MB (-s malloc). */
  memoryMb?: number;
}

export class VarnishComponent implements Component {
  readonly name = 'edge';
  readonly role = 'varnish' as const;
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  /** varnishd's -n: point varnishstat, varnishadm or prometheus_varnish_exporter (-n) here. */
  readonly workDir: string;
  /** Its management interface (-T), 127.0.0.1:adminPort; the secret is <workDir>/_.secret. */
  readonly adminPort: number;
  /** Scraped through prometheus_varnish_exporter pointed at workDir (monitoring). */
  metrics?: MetricsTarget;

  constructor(private readonly opts: VarnishComponentOptions) {
    this.port = opts.port;
    this.url = httpUrl(opts.host, opts.port);
    this.logFile = opts.logFile;
    this.workDir = varnishWorkDir(opts.upDir);
    this.adminPort = opts.adminPort;
  }

  private get vclFile(): string {
    return path.join(edgeDir(this.opts.upDir), 'edge.vcl');
  }

  async start(): Promise<ChildProcess> {
    const bin = varnishd();
    mkdirSync(this.workDir, { recursive: true });
    const host = this.url.replace(/^http:\/\//, '');
    writeFileSync(this.vclFile, edgeVcl({ backend: { host: this.opts.origin.host, port: this.opts.origin.port }, host, purgeToken: this.opts.purgeToken }));
    const listen = this.opts.host.includes(':') ? `[${this.opts.host}]:${this.port}` : `${this.opts.host}:${this.port}`;
    return spawnLogged(
      bin,
      [
        '-F',
        '-n', this.workDir,
        '-a', listen,
        '-T', `127.0.0.1:${this.adminPort}`,
        '-f', this.vclFile,
        '-s', `malloc,${this.opts.memoryMb ?? 64}m`,
        // One thread pool, started small: the machine is shared, and the edge's work is short.
        '-p', 'thread_pools=1',
        '-p', 'thread_pool_min=20',
        '-p', 'thread_pool_max=500',
        '-p', `vsl_mask=${EDGE_VSL_MASK}`,
      ],
      { logFile: this.logFile },
    );
  }

  /** Ready once a request through it reaches a web server (HAProxy and the webs start first). */
  async waitReady(child: ChildProcess): Promise<void> {
    await waitUntil(
      async () => {
        try {
          const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) });
          await res.arrayBuffer();
          return res.ok && res.headers.has('x-cache');
        } catch {
          return false;
        }
      },
      READY_TIMEOUT_MS,
      this.name,
      () => exitReason(child, this.logFile),
    );
  }

  /** SIGTERM to the manager, which stops its cacher child before it exits. */
  async stop(child: ChildProcess): Promise<void> {
    await stopChild(child, { signal: ROLES.varnish.stopSignal, timeoutMs: ROLES.varnish.stopTimeoutMs });
  }

  /** Its counters now (varnishstat). */
  async stats(): Promise<EdgeStats> {
    const { stdout } = await run(varnishstatBin(), ['-n', this.workDir, '-j', ...STAT_FIELDS.flatMap((f) => ['-f', f])], { timeout: 5000 });
    return edgeStatsOf(stdout);
  }
}

/** varnishd, and the xkey vmod its VCL imports (Debian ships it in varnish-modules). */
function varnishd(): string {
  const bin = requireBinary('varnishd');
  const vmodDirs = ['/usr/lib/x86_64-linux-gnu/varnish/vmods', '/usr/lib/aarch64-linux-gnu/varnish/vmods', '/usr/lib/varnish/vmods'].filter((d) => existsSync(d));
  if (vmodDirs.length > 0 && !vmodDirs.some((d) => existsSync(path.join(d, 'libvmod_xkey.so')))) {
    throw new LadderFailure('BINARY_MISSING', `the xkey vmod is not installed (${vmodDirs.join(', ')}). Install it with: apt-get install -y varnish-modules`);
  }
  return bin;
}

function varnishstatBin(): string {
  return findBinary('varnishstat') ?? requireBinary('varnishd');
}

/** The edge's counters `ladder status` shows: from varnishstat, since the edge started. */
export interface EdgeStats {
  /** Requests answered from the cache (grace hits included). */
  hits: number;
  /** Requests looked up and not found (hit-for-miss included): each went to the origin. */
  misses: number;
  /** Requests passed to the origin without a lookup (Cookie, Authorization, POST...). */
  passes: number;
  /** Requests the edge sent to the origin (HAProxy), background refreshes included. */
  originRequests: number;
  /** Client requests received. */
  requests: number;
}

const STAT_FIELDS = ['MAIN.cache_hit', 'MAIN.cache_miss', 'MAIN.s_pass', 'MAIN.backend_req', 'MAIN.client_req'];

export function edgeStatsOf(varnishstatJson: string): EdgeStats {
  const doc = JSON.parse(varnishstatJson) as { counters?: Record<string, { value: number }> } & Record<string, unknown>;
  // varnishstat -j: {version:1, timestamp, counters:{...}} (older: the counters at the top level).
  const counters = (doc.counters ?? doc) as Record<string, { value?: number } | undefined>;
  const v = (k: string) => Number(counters[k]?.value ?? 0);
  return {
    hits: v('MAIN.cache_hit'),
    misses: v('MAIN.cache_miss'),
    passes: v('MAIN.s_pass'),
    originRequests: v('MAIN.backend_req'),
    requests: v('MAIN.client_req'),
  };
}

/** The counters of the edge whose working folder is `workDir`, or undefined when it does not answer. */
export function edgeStatsSync(workDir: string): EdgeStats | undefined {
  const bin = findBinary('varnishstat');
  if (!bin) return undefined;
  try {
    const out = execFileSync(bin, ['-n', workDir, '-j', ...STAT_FIELDS.flatMap((f) => ['-f', f])], { timeout: 3000, stdio: ['ignore', 'pipe', 'ignore'] });
    return edgeStatsOf(out.toString());
  } catch {
    return undefined;
  }
}
