import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { LADDER_BIN } from '../support/process.ts';

function ladder(...args: string[]) {
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], { encoding: 'utf8', env: { ...process.env, DATABASE_URL: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('ladder CLI', () => {
  it('refuses a rung that is not built, clearly', () => {
    const r = ladder('up', '--rung', '8');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/rung 8 .* is not built yet/);
    expect(ladder('start', '--rung', '8').err).toMatch(/not built yet/);
    expect(ladder('start', '--rung', '3').err).toMatch(/ladder start. runs rung 1/);
  });
  it('names the field on a bad setting', () => {
    const r = spawnSync(process.execPath, [LADDER_BIN, 'start'], { encoding: 'utf8', env: { ...process.env, PORT: 'abc' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/PORT: "abc" is not a port/);
  });
  it('lists the rungs as JSON', () => {
    const r = ladder('rungs', '--json');
    expect(r.code).toBe(0);
    const rungs = JSON.parse(r.out) as { rung: number; built: boolean }[];
    expect(rungs).toHaveLength(10);
    expect(rungs[0]).toMatchObject({ rung: 1, built: true });
  });
  it('rejects an unknown command with help', () => {
    const r = ladder('frobnicate');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/unknown command/);
    expect(r.out).toMatch(/ladder start/);
  });

  it('refuses an out-of-range or malformed flag at once, naming the range, on every command', () => {
    const env = { ...process.env, DATABASE_URL: '', LADDER_STATE_DIR: '.ladder/test/cli-flags' };
    const run = (...args: string[]) => {
      const t0 = Date.now();
      const r = spawnSync(process.execPath, [LADDER_BIN, ...args], { encoding: 'utf8', env, timeout: 30_000 });
      return { code: r.status, err: r.stderr, ms: Date.now() - t0 };
    };
    for (const [args, message] of [
      [['scale', '--web', '0'], /web: "0" web servers would serve nothing\. Fix: use 1 to 64/],
      [['scale', '--web', '99'], /web: "99" web servers is more than 64/],
      [['scale', '--web', '1.5'], /web: "1.5" is not a whole number/],
      [['up', '--rung', '3', '--web', '0'], /web: .*use 1 to 16/],
      [['up', '--rung', '3', '--web', '17'], /HAProxy has 16 server slots/],
      [['up', '--rung', '3', '--host', 'a b'], /host: "a b" is not a host/],
      [['up', '--rung', '3', '--cpu', '0'], /cpu: .*from 0\.01 to 64/],
      [['start', '--rung', 'x'], /rung: "x" is not a number/],
      [['logs', 'web1', '--lines', '0'], /lines: "0" lines\. Fix: use a whole number from 1 to 100000/],
      [['logs', 'web1', 'web2'], /logs: one node at a time/],
      [['down', '--force'], /Unknown option '--force'/],
      [['chaos', 'kill', 'web1', 'web2'], /chaos: one action and one node/],
    ] as const) {
      const r = run(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.err, args.join(' ')).toMatch(message);
      expect(r.ms, args.join(' ')).toBeLessThan(10_000);
    }
  }, 120_000);
});
