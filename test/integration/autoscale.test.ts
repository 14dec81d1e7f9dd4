// The autoscaler on real components: `ladder up --rung 3 --cpu 0.1 --autoscale 1:3` with a
// 1 s sync and a 5 s scale-in window, under an open-loop load of redirects through HAProxy.
// A step above what one capped server can take must add a server within a few syncs; once
// the load drops, the tier must shrink back to one after the window; and no request of the
// whole run may fail (warming before a server takes traffic, draining before one stops).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runStepLoad } from '../../src/lab/driver/step-load.ts';
import { ensureDir } from '../../src/launcher/state-dir.ts';
import { logFile, readUpState } from '../../src/launcher/up-state.ts';
import { signedUpClient } from '../support/app.ts';
import { LADDER_BIN } from '../support/process.ts';

const stateDir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'autoscale-'));
chmodSync(stateDir, 0o755);

function ladder(...args: string[]) {
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LADDER_STATE_DIR: stateDir, LOG_LEVEL: 'warn' },
    timeout: 180_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Web servers serving now, from the state file the supervisor keeps (read without blocking the load for long). */
const servingWebs = () => (readUpState(stateDir)?.nodes ?? []).filter((n) => n.role === 'web' && n.state === 'ready').length;

let entry: URL;
let code: string;

beforeAll(async () => {
  const up = ladder('up', '--rung', '3', '--cpu', '0.1', '--autoscale', '1:3', '--target-cpu', '0.6', '--autoscale-sync', '1', '--scale-in-window', '5', '--no-monitor');
  if (up.code !== 0) throw new Error(`ladder up failed:\n${up.err}`);
  entry = new URL(up.out.trim().split('\n').pop()!);
  const user = await signedUpClient(entry.origin);
  code = (await user.post('/api/links', { url: 'https://example.com/autoscaled' })).json.code as string;
}, 240_000);

afterAll(() => {
  const down = ladder('down');
  expect(down.code).toBe(0);
  rmSync(stateDir, { recursive: true, force: true });
}, 120_000);

it('refuses --autoscale without a balancer, and a tier outside MIN:MAX', () => {
  const r2 = ladder('up', '--rung', '2', '--autoscale', '1:3');
  expect(r2.code).toBe(1);
  expect(r2.err).toMatch(/CONFIG_INVALID: autoscale: needs the load balancer.*--rung 3/);
  const outside = ladder('up', '--rung', '3', '--autoscale', '2:4', '--web', '5');
  expect(outside.err).toMatch(/web: 5 web servers is outside the autoscaling range 2:4/);
  expect(ladder('up', '--rung', '3', '--autoscale', '9:17').err).toMatch(/outside 1\.\.16/);
});

it('adds a server under a load step, removes it after the window once the load drops, with 0 failed requests', async () => {
  const status = JSON.parse(ladder('status', '--json').out) as { autoscaler: { url: string; min: number; max: number; targetCpu: number } };
  expect(status.autoscaler).toMatchObject({ min: 1, max: 3, targetCpu: 0.6, url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/) });
  expect(servingWebs()).toBe(1);

  // High: well above one server at 0.1 core (about 100-150 redirects/s on this machine);
  // then low, until the tier is back to one server. Low must read below 30% on two servers
  // (which asks for one at a 60% target) even on a busy CI machine: 15/s read 15-20% here
  // and 25-40% in one CI run, where the tier then held two servers to the end; 5/s reads
  // about 10% here (an idle server reads about 5%).
  const HIGH = 260;
  const LOW = 5;
  let phase: 'high' | 'low' = 'high';
  let scaledOutAt: number | undefined;
  let scaledInAt: number | undefined;
  let lowFrom = 0;
  let peak = 1;
  const t0 = Date.now();
  const watcher = setInterval(() => {
    const n = servingWebs();
    peak = Math.max(peak, n);
    if (phase === 'high' && n >= 2) {
      scaledOutAt ??= Date.now() - t0;
      // Hold the high rate a few seconds on the bigger tier, then drop.
      if (Date.now() - t0 > scaledOutAt + 4000) {
        phase = 'low';
        lowFrom = Date.now() - t0;
      }
    }
    if (phase === 'low' && n === 1 && scaledInAt === undefined) scaledInAt = Date.now() - t0;
  }, 250);
  const load = await runStepLoad({
    host: entry.hostname,
    port: Number(entry.port),
    durationS: 70,
    rate: () => (phase === 'high' ? HIGH : LOW),
    path: () => `/${code}`,
    ok: (s) => s === 302,
    // Once back at one server, a few more seconds of low load: the removed server's drain is over.
    stop: () => scaledInAt !== undefined && Date.now() - t0 > scaledInAt + 3000,
  });
  clearInterval(watcher);

  const log = readFileSync(logFile(stateDir, 'supervisor'), 'utf8');
  const decisions = log.split('\n').filter((l) => l.startsWith('autoscaler: 2'));
  const context = `scaled out at ${scaledOutAt} ms, low from ${lowFrom} ms, back to 1 at ${scaledInAt} ms; failures ${JSON.stringify(load.failures)}\n${decisions.slice(-40).join('\n')}`;
  expect(scaledOutAt, context).toBeLessThan(15_000);
  expect(scaledInAt, context).toBeDefined();
  // Not before the 5 s window has passed since the low load started.
  expect(scaledInAt! - lowFrom, context).toBeGreaterThanOrEqual(5000);
  expect(load.failed, context).toBe(0);
  expect(load.ok).toBe(load.sent);
  expect(load.sent).toBeGreaterThan(HIGH * 5);

  // Each decision is one log line: time, utilisation, current -> desired, why.
  expect(decisions.some((l) => / utilisation \d+% 1 -> [23] \(out\): .*scaling out at once/.test(l)), context).toBe(true);
  expect(decisions.some((l) => / -> 1 \(in\): .*scaling in/.test(l)), context).toBe(true);
  expect(decisions.some((l) => /holding [23]: the last 5 s asked for up to [23]/.test(l)), context).toBe(true);

  // And as metrics on the supervisor's own endpoint.
  const metrics = await (await fetch(status.autoscaler.url)).text();
  const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics)?.[1]);
  expect(value('ladder_autoscaler_decisions_total{direction="out"}')).toBeGreaterThanOrEqual(1);
  expect(value('ladder_autoscaler_decisions_total{direction="in"}')).toBeGreaterThanOrEqual(1);
  expect(value('ladder_autoscaler_current_servers')).toBe(1);
  expect(value('ladder_autoscaler_desired_servers')).toBe(1);
  expect(value('ladder_autoscaler_utilisation')).toBeGreaterThanOrEqual(0);
  expect(peak).toBeGreaterThanOrEqual(2);
}, 120_000);
