// SIGTERM during load: in-flight requests complete, the process exits 0 within 10 s, and
// every click it answered is in the database (the buffer is flushed on a clean shutdown).
import { freePort } from '../../src/launcher/state-dir.ts';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { Client, freshDatabase, uniqueEmail } from '../support/app.ts';
import { runLadder, stopProcess, type LadderProcess } from '../support/process.ts';

let proc: LadderProcess | undefined;
afterAll(async () => {
  if (proc) await stopProcess(proc);
});

describe('graceful shutdown', () => {
  it('finishes in-flight requests, exits 0 within 10 s, loses no buffered click', async () => {
    const databaseUrl = await freshDatabase();
    proc = runLadder(['start'], {
      DATABASE_URL: databaseUrl,
      PORT: String(await freePort()),
      HOST: '127.0.0.1',
      LADDER_SECRET: 'shutdown-test-secret-0123456789abcdef',
      CLICK_FLUSH_MS: '60000', // nothing is flushed before SIGTERM: the shutdown must do it
      LADDER_STATE_DIR: '.ladder/test/shutdown',
    });
    const url = await proc.url;
    const c = new Client(url);
    await c.post('/api/signup', { email: uniqueEmail(), password: 'correct horse battery' });
    const { json } = await c.post('/api/links', { url: 'https://example.com/target' });

    // Steady load from 16 concurrent loops; SIGTERM arrives in the middle of it.
    let ok = 0;
    let failed = 0;
    let stop = false;
    const loops = Array.from({ length: 16 }, async () => {
      while (!stop) {
        try {
          const res = await fetch(`${url}/${json.code}`, { redirect: 'manual' });
          await res.arrayBuffer();
          if (res.status === 302) ok++;
          else if (res.status === 503) stop = true; // closing: refused cleanly, not counted
          else failed++;
        } catch {
          stop = true; // the listener is closed: the load stops, as a balancer would
        }
      }
    });
    await new Promise((r) => setTimeout(r, 1500));
    const t0 = Date.now();
    proc.child.kill('SIGTERM');
    const exit = await proc.exited;
    const elapsed = Date.now() - t0;
    stop = true;
    await Promise.all(loops);

    expect(exit.code).toBe(0);
    expect(elapsed).toBeLessThan(10_000);
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(50);
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const { rows } = await db.query<{ n: string }>('select coalesce(sum(clicks), 0) as n from link_clicks_daily');
    await db.end();
    expect(Number(rows[0]!.n)).toBe(ok);
    expect(proc.output()).toMatch(/SIGTERM/);
  });
});
