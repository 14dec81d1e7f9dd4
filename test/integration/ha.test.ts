// --ha on real components: `ladder up --rung 4 --ha --web 2` (etcd1..3, Patroni on pg1..pg3,
// two web servers behind HAProxy). Under a steady load of creates and redirects: kill -9 of
// the leader (Patroni and its Postgres) brings writes back within 10 s, no read fails, every
// acknowledged create survives (measured; asynchronous mode), and the old leader rejoins as a
// replica by itself. A leader frozen with `chaos stop` is replaced, takes no write once the
// new leader exists, and rejoins after `chaos cont`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoad, Visitor, writeOutageMs } from '../../src/lab/ha/steady-load.ts';
import { uniqueEmail } from '../support/app.ts';
import { HaCluster, sleep, waitFor, type HaNode } from '../support/ha-cluster.ts';

const cluster = new HaCluster('ha');

let entry = '';
let codes: string[] = [];

beforeAll(async () => {
  const up = cluster.ladder('up', '--rung', '4', '--ha', '--web', '2', '--no-monitor');
  if (up.code !== 0) throw new Error(`ladder up failed: ${up.out}\n${up.err}`);
  entry = up.out.trim();
  const user = await Visitor.signUp(entry, uniqueEmail());
  for (let i = 0; i < 20; i++) codes.push(((await user.request('POST', '/api/links', { url: `https://example.com/seed/${i}` })).json as { code: string }).code);
  codes = codes.filter(Boolean);
}, 200_000);

afterAll(async () => {
  cluster.ladder('chaos', 'cont', 'pg1');
  cluster.ladder('chaos', 'cont', 'pg2');
  cluster.ladder('chaos', 'cont', 'pg3');
  expect(cluster.down()).toEqual([]);
}, 120_000);

/** For a failure message: each database node's role and which of `codes` it holds. */
async function whereAre(codes: readonly string[]): Promise<string> {
  const lines = await Promise.all(
    cluster.pgNodes().map(async (n) => {
      const missing = await cluster.missingOn(n, codes).catch((err: Error) => err.message);
      return `${n.name} ${n.role} ${n.state}: ${typeof missing === 'string' ? missing : `has ${codes.length - missing.length} of ${codes.length}`}`;
    }),
  );
  return lines.join('; ');
}

describe('ladder up --rung 4 --ha', () => {
  it('runs etcd1..3 and pg1..pg3, exactly one of them the leader (role postgres), with the app migrated', async () => {
    const ns = cluster.status().nodes;
    expect(ns.filter((n) => n.role === 'etcd').map((n) => n.name).sort()).toEqual(['etcd1', 'etcd2', 'etcd3']);
    const pgs = cluster.pgNodes();
    expect(pgs.map((n) => n.name).sort()).toEqual(['pg1', 'pg2', 'pg3']);
    await waitFor('one leader and two replicas', () => {
      const roles = cluster.pgNodes().map((n) => n.role).sort();
      return roles.join() === 'postgres,postgres-replica,postgres-replica';
    }, 10_000);
    for (const n of ns) expect(n.state).toBe('ready');
    expect(codes.length).toBe(20);
    // A replica's role is known before it streams: wait for both to connect (a fresh clone on
    // a busy machine read 1 of 2 at once).
    const leader = cluster.pgNodes().find((n) => n.role === 'postgres')!;
    let streaming: number | null = 0;
    await waitFor('both replicas streaming from the leader', async () => {
      streaming = await cluster.onNode(leader, async (c) => (await c.query("select application_name from pg_stat_replication where state = 'streaming'")).rowCount);
      return streaming === 2;
    }, 20_000).catch(() => undefined);
    expect(streaming).toBe(2);
  });

  it('kill -9 of the leader under load: writes are back within 10 s, no read fails, the old leader rejoins as a replica', async () => {
    const writers = await Promise.all([0, 1, 2].map(() => Visitor.signUp(entry, uniqueEmail())));
    const load = startLoad({ writers, readers: 3, base: entry, codes });
    await sleep(2000);
    const old = cluster.pgNodes().find((n) => n.role === 'postgres')!;
    const kill = cluster.ladder('chaos', 'kill', 'primary');
    const at = Date.now();
    expect(kill.code, kill.err).toBe(0);
    expect(kill.err).toContain(`to ${old.name}`);
    await waitFor('another node to lead', () => cluster.pgNodes().some((n) => n.role === 'postgres' && n.name !== old.name), 20_000);
    await waitFor('writes to succeed again', () => writeOutageMs(load.records, at) < Infinity, 15_000);
    await sleep(2000);
    await load.stop();
    const outage = writeOutageMs(load.records, at);
    const reads = load.records.filter((r) => r.kind === 'redirect');
    const failedReads = reads.filter((r) => r.status !== 302);
    process.stderr.write(`ha: writes back ${outage} ms after the kill; ${reads.length} redirects, ${failedReads.length} failed\n`);
    expect(outage).toBeLessThan(10_000);
    expect(reads.length).toBeGreaterThan(50);
    expect(failedReads.map((r) => r.status)).toEqual([]);
    // No web server crashed on the way (HAProxy would hide one behind its retries).
    expect(cluster.status().nodes.filter((n) => n.role === 'web').map((n) => `${n.name}: ${n.restarts}`)).toEqual(['web1: 0', 'web2: 0']);
    // Asynchronous mode: loss is possible, bounded by maximum_lag_on_failover; measured here.
    const acknowledged = load.records.filter((r) => r.kind === 'create' && r.status === 201).map((r) => r.code!);
    const missing = await cluster.lost(acknowledged);
    process.stderr.write(`ha: ${acknowledged.length} creates acknowledged, ${missing.length} lost in the failover (asynchronous mode)\n`);
    expect(missing.length).toBeLessThan(acknowledged.length / 10);
    await waitFor(`${old.name} to rejoin as a replica`, () => cluster.pgNodes().find((n) => n.name === old.name)?.role === 'postgres-replica' && cluster.pgNodes().find((n) => n.name === old.name)?.state === 'ready', 60_000);
    const rejoined = cluster.pgNodes().find((n) => n.name === old.name)!;
    await waitFor('the old leader to stream from the new one', async () =>
      cluster.onNode(rejoined, async (c) => (await c.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]!.r).catch(() => false),
    );
  }, 120_000);

  it('a frozen leader (chaos stop) is replaced, is not written to once the new leader exists, and rejoins after chaos cont', async () => {
    const writers = await Promise.all([0, 1].map(() => Visitor.signUp(entry, uniqueEmail())));
    const load = startLoad({ writers, readers: 2, base: entry, codes });
    await sleep(1000);
    const old = cluster.pgNodes().find((n) => n.role === 'postgres')!;
    expect(cluster.ladder('chaos', 'stop', 'primary').code).toBe(0);
    const frozenAt = Date.now();
    let next: HaNode | undefined;
    await waitFor('a new leader', () => (next = cluster.pgNodes().find((n) => n.role === 'postgres' && n.name !== old.name)) !== undefined, 20_000);
    const newLeaderAt = Date.now();
    await waitFor('writes on the new leader', () => writeOutageMs(load.records, newLeaderAt) < Infinity, 15_000);
    // The new leader's timeline began after the old one's last commit: whatever the old node
    // did after this point would be on its old timeline, which pg_rewind throws away.
    const forkTimeline = await cluster.onNode(next!, async (c) => (await c.query<{ t: number }>('select timeline_id as t from pg_control_checkpoint()')).rows[0]!.t);
    expect(cluster.ladder('chaos', 'cont', old.name).code).toBe(0);
    await sleep(3000);
    await load.stop();
    const acknowledged = load.records.filter((r) => r.kind === 'create' && r.status === 201);
    // Every write acknowledged once the new leader led is on the new leader: nothing went to the old one.
    const afterNew = acknowledged.filter((r) => r.startedAt >= newLeaderAt).map((r) => r.code!);
    expect(afterNew.length).toBeGreaterThan(0);
    // On the node that took over, whichever `ladder status` names now.
    const missingOnNext = await cluster.missingOn(next!, afterNew);
    expect(missingOnNext, `${old.name} frozen, ${next!.name} led from ${newLeaderAt}; ${await whereAre(missingOnNext)}`).toEqual([]);
    // Rejoined: a replica again, streaming on the new timeline (rewound if it had gone its own
    // way): one history, not two. Demotion, then pg_rewind, restart its Postgres on the way.
    let rejoinedTimeline = 0;
    await waitFor(`${old.name} to rejoin as a replica streaming from the new leader`, async () => {
      const n = cluster.pgNodes().find((x) => x.name === old.name);
      if (n?.role !== 'postgres-replica') return false;
      const row = await cluster.onNode(n, async (c) => (await c.query<{ r: boolean; t: string | null }>("select pg_is_in_recovery() as r, (select received_tli::text from pg_stat_wal_receiver where status = 'streaming') as t")).rows[0]).catch(() => undefined);
      rejoinedTimeline = Number(row?.t ?? 0);
      return row?.r === true && rejoinedTimeline > 0;
    }, 60_000);
    expect(rejoinedTimeline).toBeGreaterThanOrEqual(forkTimeline);
    // Every acknowledged write of the whole run is on the leader (none applied only on the old one).
    const lostOfRun = await cluster.lost(acknowledged.map((r) => r.code!));
    expect(lostOfRun, await whereAre(lostOfRun)).toEqual([]);
    const reads = load.records.filter((r) => r.kind === 'redirect');
    process.stderr.write(`ha: frozen leader replaced ${newLeaderAt - frozenAt} ms after the freeze; ${reads.filter((r) => r.status !== 302).length} of ${reads.length} redirects failed\n`);
    expect(reads.filter((r) => r.status !== 302).map((r) => r.status)).toEqual([]);
  }, 120_000);
});

