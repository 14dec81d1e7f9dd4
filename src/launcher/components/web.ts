// One web server of a topology as a component: `ladder __web` with its settings in the
// environment (DATABASE_URL, PORT, LADDER_SECRET, REDIS_URL, ...), ready once /readyz
// answers 200. The launcher starts it by command and imports none of the app.
import type { ChildProcess } from 'node:child_process';
import { stopChild } from '../../kit/process/stop-process.ts';
import { capCpu, removeGroup } from '../cgroup-cpu.ts';
import { exitReason, httpOk, spawnLogged, waitUntil } from '../child.ts';
import { ROLES, type Component, type ComponentContext, type MetricsTarget } from '../component.ts';
import { WEB_ENTRY } from '../ladder-bin.ts';

/**
 * V8's young generation, per semi-space, in MiB (Node 20: 16). A request's garbage dies
 * young; a larger nursery means half as many scavenges for the same traffic, and their pauses
 * were the web server's largest stall at a fixed rate (GC pauses 26-27 -> 13-17 ms per second
 * in the redirect scenario, for about 20 MiB more RSS; docs/decisions.md).
 */
const SEMI_SPACE_MB = 32;

/**
 * V8's first limit of the old generation, in MiB, before a full (mark-compact) collection.
 * The click buffer and the flushes' statements leave about a megabyte of old garbage a
 * second; from a small start V8 collected it every few seconds, each a 5-8 ms pause that
 * made the redirects' p99.9 at a fixed rate 27-42 ms. From 64 MiB it runs about once a
 * minute (p99.9 10 ms), for about 25 MiB more RSS (docs/performance.md, issue 12).
 */
const INITIAL_OLD_SPACE_MB = 64;

/** The command line of a web server: what `ladder start` runs in the foreground too. */
export const WEB_COMMAND: readonly string[] = [
  process.execPath,
  `--max-semi-space-size=${SEMI_SPACE_MB}`,
  `--initial-old-space-size=${INITIAL_OLD_SPACE_MB}`,
  WEB_ENTRY,
  '__web',
];

/**
 * WEB_COMMAND with the node flags of LADDER_WEB_NODE_FLAGS, a diagnostic for the web
 * servers only (--cpu-prof, --trace-gc, ...), which NODE_OPTIONS refuses or would also give
 * the launcher (docs/operations.md).
 */
export function webCommand(): { command: string; args: string[] } {
  const [command, ...args] = WEB_COMMAND;
  const flags = (process.env.LADDER_WEB_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  return { command: command!, args: [...flags, ...args] };
}

const READY_TIMEOUT_MS = 60_000;

export interface WebComponentOptions {
  name: string;
  port: number;
  logFile: string;
  /** Its settings, on top of the launcher's own environment; undefined removes a variable. */
  env: Record<string, string | undefined>;
  cpu?: number;
}

export class WebComponent implements Component {
  readonly name: string;
  readonly role = 'web' as const;
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  readonly cpu: number | undefined;
  readonly metrics: MetricsTarget;
  private readonly group: string;

  constructor(
    private readonly ctx: Pick<ComponentContext, 'groupPrefix' | 'note'>,
    private readonly opts: WebComponentOptions,
  ) {
    this.name = opts.name;
    this.port = opts.port;
    this.url = `http://127.0.0.1:${opts.port}`;
    this.logFile = opts.logFile;
    this.cpu = opts.cpu;
    this.group = `${ctx.groupPrefix}-${opts.name}`;
    this.metrics = { port: opts.port, path: '/metrics' };
  }

  async start(): Promise<ChildProcess> {
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(this.port), HOST: '127.0.0.1', LADDER_NODE: this.name };
    for (const [k, v] of Object.entries(this.opts.env)) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const { command, args } = webCommand();
    const child = spawnLogged(command, args, { logFile: this.logFile, env });
    if (this.cpu !== undefined && child.pid) {
      try {
        capCpu(this.group, child.pid, this.cpu);
      } catch (err) {
        this.ctx.note(`could not cap ${this.name} at ${this.cpu} core: ${(err as Error).message}`);
      }
    }
    return child;
  }

  async waitReady(child: ChildProcess): Promise<void> {
    await waitUntil(() => httpOk(`${this.url}/readyz`), READY_TIMEOUT_MS, this.name, () => exitReason(child, this.logFile));
  }

  async stop(child: ChildProcess): Promise<void> {
    await stopChild(child, { signal: ROLES.web.stopSignal, timeoutMs: ROLES.web.stopTimeoutMs });
    removeGroup(this.group);
  }
}
