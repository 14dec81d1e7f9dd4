// What the --ha tests share: the `ladder` command on a state folder of their own, its status,
// and a superuser connection to one Patroni node (the password is in the web servers'
// environment only; the tests read it where the launcher keeps it).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { isAlive } from '../../src/kit/process/pid.ts';
import { ensureDir } from '../../src/launcher/state-dir.ts';
import { LADDER_BIN } from './process.ts';

export interface HaNode {
  name: string;
  role: string;
  pid: number | null;
  port: number;
  url: string;
  state: string;
  restarts: number;
  api?: string;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what: string, ok: () => boolean | Promise<boolean>, ms = 40_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await ok())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

export class HaCluster {
  readonly stateDir: string;

  constructor(prefix: string) {
    this.stateDir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), `${prefix}-`));
    chmodSync(this.stateDir, 0o755);
  }

  ladder(...args: string[]): { code: number | null; out: string; err: string } {
    const r = spawnSync(process.execPath, [LADDER_BIN, ...args], {
      encoding: 'utf8',
      env: { ...process.env, LADDER_STATE_DIR: this.stateDir, LOG_LEVEL: 'info', LADDER_RATE_LIMITS: 'createLink=1000000/60' },
      timeout: 180_000,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  status(): { entry: string; nodes: HaNode[] } {
    return JSON.parse(this.ladder('status', '--json').out) as { entry: string; nodes: HaNode[] };
  }

  pgNodes(): HaNode[] {
    return this.status().nodes.filter((n) => /^pg\d+$/.test(n.name));
  }

  /** Runs fn on a superuser connection to node n; a refused connection names the node. */
  async onNode<T>(n: HaNode, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const { superuser } = JSON.parse(readFileSync(path.join(this.stateDir, 'up', 'ha-passwords.json'), 'utf8')) as { superuser: string };
    const c = new pg.Client({ connectionString: `postgres://postgres:${encodeURIComponent(superuser)}@127.0.0.1:${n.port}/links`, connectionTimeoutMillis: 3000 });
    await c.connect().catch((err: Error) => {
      throw new Error(`${n.name} (${n.role}, ${n.state}, port ${n.port}): ${err.message}`, { cause: err });
    });
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  /**
   * `ladder down`; returns what went wrong (empty when it exited 0 and no node's process is
   * left). The state folder is removed unless KEEP_STATE=1 (the nodes' logs, for a failure).
   */
  down(): string[] {
    let pids: number[] = [];
    try {
      pids = this.status().nodes.flatMap((n) => (n.pid === null ? [] : [n.pid]));
    } catch {
      // nothing was started
    }
    const down = this.ladder('down');
    const problems = [...(down.code === 0 ? [] : [`ladder down exited ${down.code}: ${down.err}`]), ...pids.filter(isAlive).map((p) => `pid ${p} still runs`)];
    if (!process.env.KEEP_STATE) rmSync(this.stateDir, { recursive: true, force: true });
    return problems;
  }

  /** The codes of `acknowledged` that node n does not have. */
  async missingOn(n: HaNode, acknowledged: readonly string[]): Promise<string[]> {
    const found = await this.onNode(n, async (c) => (await c.query<{ code: string }>('select code from links where code = any($1)', [acknowledged])).rows);
    const have = new Set(found.map((r) => r.code));
    return acknowledged.filter((c) => !have.has(c));
  }

  /** Every acknowledged code that the leader does not have. */
  async lost(acknowledged: readonly string[]): Promise<string[]> {
    const leader = this.pgNodes().find((n) => n.role === 'postgres' && n.state === 'ready')!;
    return this.missingOn(leader, acknowledged);
  }
}
