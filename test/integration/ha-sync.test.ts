// --ha --sync on real components: `ladder up --rung 4 --ha --sync --web 2` (Patroni's
// synchronous mode). A commit returns once a standby has it, and only that standby may be
// promoted: under a steady load of creates, kill -9 of the leader loses none of the creates
// that were answered 201, and writes are back within 10 s.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoad, Visitor, writeOutageMs } from '../../src/lab/ha/steady-load.ts';
import { uniqueEmail } from '../support/app.ts';
import { HaCluster, sleep, waitFor } from '../support/ha-cluster.ts';

const cluster = new HaCluster('ha-sync');

let entry = '';
const codes: string[] = [];

beforeAll(async () => {
  const up = cluster.ladder('up', '--rung', '4', '--ha', '--sync', '--web', '2', '--no-monitor');
  if (up.code !== 0) throw new Error(`ladder up failed: ${up.out}\n${up.err}`);
  entry = up.out.trim();
  const user = await Visitor.signUp(entry, uniqueEmail());
  for (let i = 0; i < 10; i++) codes.push(((await user.request('POST', '/api/links', { url: `https://example.com/seed/${i}` })).json as { code: string }).code);
}, 200_000);

afterAll(async () => {
  expect(cluster.down()).toEqual([]);
}, 120_000);

describe('ladder up --rung 4 --ha --sync', () => {
  it('replicates synchronously to one standby', async () => {
    let states: string[] = [];
    await waitFor('a synchronous standby', async () => {
      const leader = cluster.pgNodes().find((n) => n.role === 'postgres' && n.state === 'ready');
      if (!leader) return false;
      states = await cluster.onNode(leader, async (c) => (await c.query<{ s: string }>('select sync_state as s from pg_stat_replication order by 1')).rows.map((r) => r.s));
      return states.includes('sync');
    }, 20_000);
    expect(states.filter((s) => s === 'sync')).toHaveLength(1);
  });

  it('kill -9 of the leader under load: 0 acknowledged creates lost, writes back within 10 s, no read fails', async () => {
    const writers = await Promise.all([0, 1, 2, 3].map(() => Visitor.signUp(entry, uniqueEmail())));
    const load = startLoad({ writers, readers: 2, base: entry, codes, pauseMs: 0 });
    await sleep(3000);
    const old = cluster.pgNodes().find((n) => n.role === 'postgres')!;
    const at = Date.now();
    expect(cluster.ladder('chaos', 'kill', 'primary').code).toBe(0);
    await waitFor('another node to lead', () => cluster.pgNodes().some((n) => n.role === 'postgres' && n.state === 'ready' && n.name !== old.name), 20_000);
    await waitFor('writes to succeed again', () => writeOutageMs(load.records, at) < Infinity, 15_000);
    await sleep(1000);
    await load.stop();
    const acknowledged = load.records.filter((r) => r.kind === 'create' && r.status === 201).map((r) => r.code!);
    const inFlightAtKill = load.records.filter((r) => r.kind === 'create' && r.startedAt <= at && r.endedAt >= at).length;
    const missing = await cluster.lost(acknowledged);
    const outage = writeOutageMs(load.records, at);
    process.stderr.write(`ha-sync: ${acknowledged.length} creates acknowledged (${inFlightAtKill} in flight at the kill), ${missing.length} lost; writes back after ${outage} ms\n`);
    expect(acknowledged.length).toBeGreaterThan(50);
    expect(missing).toEqual([]);
    expect(outage).toBeLessThan(10_000);
    const reads = load.records.filter((r) => r.kind === 'redirect');
    expect(reads.filter((r) => r.status !== 302).map((r) => r.status)).toEqual([]);
  }, 90_000);
});

