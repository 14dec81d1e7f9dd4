import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { LADDER_BIN } from '../support/process.ts';

function ladder(...args: string[]) {
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], { encoding: 'utf8', env: { ...process.env, DATABASE_URL: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('ladder CLI', () => {
  it('refuses a rung that is not built, clearly', () => {
    const r = ladder('up', '--rung', '6');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/rung 6 .* is not built yet/);
    expect(ladder('start', '--rung', '6').err).toMatch(/not built yet/);
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
});
