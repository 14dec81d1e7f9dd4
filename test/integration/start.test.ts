// `ladder start` as a user runs it: the embedded Postgres, data kept under the state
// folder across restarts, a clean exit on SIGTERM, recovery after a kill -9, and a clear
// refusal of a second start on the same folder.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/kit/process/pid.ts';
import { ensureDir, freePort } from '../../src/launcher/state-dir.ts';
import { Client, uniqueEmail } from '../support/app.ts';
import { runLadder, stopProcess, type LadderProcess } from '../support/process.ts';

const stateDir = mkdtempSync(path.join(ensureDir(path.resolve('.ladder/test')), 'start-'));
const running: LadderProcess[] = [];
afterAll(async () => {
  for (const p of running) await stopProcess(p);
  const note = path.join(stateDir, 'rung1', 'pgdata.location');
  if (existsSync(note)) rmSync(path.dirname(readFileSync(note, 'utf8').trim()), { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
});

async function start(): Promise<{ p: LadderProcess; url: string }> {
  const p = runLadder(['start'], { PORT: String(await freePort()), HOST: '127.0.0.1', LADDER_STATE_DIR: stateDir, DATABASE_URL: '' });
  running.push(p);
  return { p, url: await p.url };
}

function postgresPid(): number {
  // As root in a private (mode 700) folder, the cluster lives elsewhere and a note says where.
  const note = path.join(stateDir, 'rung1', 'pgdata.location');
  const dataDir = existsSync(note) ? readFileSync(note, 'utf8').trim() : path.join(stateDir, 'rung1', 'pgdata');
  return Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

describe('ladder start (embedded Postgres)', () => {
  it('keeps data across restarts, survives a kill -9, refuses a second start', async () => {
    const first = await start();
    const c = new Client(first.url);
    expect((await c.post('/api/signup', { email: uniqueEmail(), password: 'correct horse battery' })).status).toBe(201);
    const { json } = await c.post('/api/links', { url: 'https://example.com/kept' });

    // A second start on the same folder is refused with a clear message, and leaves the first alone.
    const second = runLadder(['start'], { PORT: String(await freePort()), LADDER_STATE_DIR: stateDir, DATABASE_URL: '' });
    running.push(second);
    expect((await second.exited).code).toBe(1);
    expect(second.output()).toMatch(/already running from this folder/);
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);

    const pgPid = postgresPid();
    first.p.child.kill('SIGTERM');
    expect((await first.p.exited).code).toBe(0);
    expect(isAlive(pgPid)).toBe(false); // Postgres stopped with it

    const restarted = await start();
    const res = await fetch(`${restarted.url}/${json.code}`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('https://example.com/kept');

    // kill -9 leaves the Postgres child orphaned; the next start stops it and carries on.
    const orphan = postgresPid();
    restarted.p.child.kill('SIGKILL');
    await restarted.p.exited;
    expect(isAlive(orphan)).toBe(true);
    const third = await start();
    expect(isAlive(orphan)).toBe(false);
    expect((await fetch(`${third.url}/${json.code}`, { redirect: 'manual' })).status).toBe(302);
    third.p.child.kill('SIGTERM');
    expect((await third.p.exited).code).toBe(0);
  }, 120_000);
});
