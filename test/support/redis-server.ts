// A real redis-server for one test file: its own free loopback port and temp folder, no
// persistence, stopped by PID (SIGTERM, then SIGKILL). Also the faults a test injects:
// pause (SIGSTOP: the port stays open but nothing answers), resume, kill, restart on the
// same port.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { redisServerArgs } from '../../src/launcher/redis-server.ts';
import { freePort } from '../../src/launcher/state-dir.ts';

export class TestRedis {
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private readonly dir = mkdtempSync(path.join(tmpdir(), 'ladder-redis-'));
  private readonly onExit = () => this.child?.kill('SIGKILL'); // no orphan if the worker dies

  private constructor(
    readonly port: number,
    private readonly extraArgs: readonly string[],
  ) {}

  /** extraArgs: more redis-server options, e.g. ['--cluster-enabled', 'yes']. */
  static async start(extraArgs: readonly string[] = []): Promise<TestRedis> {
    if (spawnSync('redis-server', ['--version']).error) {
      throw new Error('redis-server not found. Install it: apt-get install -y redis-server');
    }
    const r = new TestRedis(await freePort(), extraArgs);
    await r.spawn();
    process.once('exit', r.onExit);
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private async spawn(): Promise<void> {
    // The launcher's command line (loopback, own port and folder, nothing persisted), quieter.
    const child = spawn(
      'redis-server',
      [...redisServerArgs({ port: this.port, dir: this.dir }), '--loglevel', 'warning', ...this.extraArgs],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    // Ready when it answers PING (the log line depends on the log level).
    const deadline = performance.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited at start:\n${out}`);
      if (await ping(this.port)) return;
      if (performance.now() > deadline) throw new Error(`redis-server did not answer PING within 10 s:\n${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGSTOP: connections stay open, nothing answers. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** SIGKILL, as a crash: every connection drops, the port refuses. */
  async kill(): Promise<void> {
    if (!this.running()) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** Starts again on the same port, empty. */
  async restart(): Promise<void> {
    await this.kill();
    await this.spawn();
  }

  /** SIGCONT (in case it is paused) and SIGTERM, then SIGKILL after the timeout. */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.running()) {
      this.child!.kill('SIGCONT');
      this.child!.kill('SIGTERM');
      const timer = setTimeout(() => this.child?.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    process.off('exit', this.onExit);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }
}

/** True when something on the port answers PING with PONG within 500 ms. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d: Buffer) => {
      data += d.toString();
      if (data.includes('+PONG')) done(true);
    });
    s.on('error', () => done(false));
  });
}
