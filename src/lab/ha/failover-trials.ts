// Failover trials of --ha: launches `ladder up --rung 4 --ha --web 2` (with --sync: Patroni's
// synchronous mode), measures the write latency of a steady load of creates, then, TRIALS
// times under a steady load of creates and redirects: `ladder chaos kill primary` (kill -9 of
// the leader's Patroni and Postgres), the time until a create sent after the kill succeeds,
// the reads that failed, the acknowledged creates the new leader lacks, and the wait for the
// old leader to rejoin as a replica before the next trial.
//
//   npm run build && node dist/lab/ha/failover-trials.js [--trials 5] [--sync] [--state-dir DIR]
//
// Figures: docs/performance.md, "High availability". Prints one JSON document at the end.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { LADDER_BIN } from '../../launcher/ladder-bin.ts';
import { quantile, startLoad, Visitor, writeOutageMs, type LoadRecord } from './steady-load.ts';

interface Node {
  name: string;
  role: string;
  state: string;
  port: number;
}

const { values } = parseArgs({
  options: { trials: { type: 'string' }, sync: { type: 'boolean' }, 'state-dir': { type: 'string' } },
  strict: true,
});
const trials = Number(values.trials ?? 5);
if (!Number.isInteger(trials) || trials < 1 || trials > 50) throw new Error('--trials: a whole number from 1 to 50');
const stateDir = path.resolve(values['state-dir'] ?? '.ladder/failover-trials');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);

function ladder(...args: string[]) {
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LADDER_STATE_DIR: stateDir, LADDER_RATE_LIMITS: 'createLink=1000000/60,signup=100000/60' },
    timeout: 240_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const pgNodes = (): Node[] => (JSON.parse(ladder('status', '--json').out) as { nodes: Node[] }).nodes.filter((n) => /^pg\d+$/.test(n.name));

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await ok())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

async function missingOnLeader(codes: readonly string[]): Promise<number> {
  const leader = pgNodes().find((n) => n.role === 'postgres' && n.state === 'ready');
  if (!leader) throw new Error('no leader');
  const { superuser } = JSON.parse(readFileSync(path.join(stateDir, 'up', 'ha-passwords.json'), 'utf8')) as { superuser: string };
  const c = new pg.Client({ connectionString: `postgres://postgres:${encodeURIComponent(superuser)}@127.0.0.1:${leader.port}/links` });
  await c.connect();
  try {
    const rows = (await c.query<{ n: string }>('select count(*)::text as n from links where code = any($1)', [codes])).rows;
    return codes.length - Number(rows[0]!.n);
  } finally {
    await c.end();
  }
}

let seq = 0;
const email = () => `trial${Date.now().toString(36)}${seq++}@example.com`;

async function main(): Promise<void> {
  const mode = values.sync ? 'synchronous' : 'asynchronous';
  ladder('down');
  log(`launching rung 4 --ha (${mode}) in ${stateDir}`);
  const up = ladder('up', '--rung', '4', '--ha', '--web', '2', ...(values.sync ? ['--sync'] : []));
  if (up.code !== 0) throw new Error(`ladder up failed: ${up.err}`);
  const entry = up.out.trim();
  try {
    const seed = await Visitor.signUp(entry, email());
    const codes: string[] = [];
    for (let i = 0; i < 50; i++) codes.push(((await seed.request('POST', '/api/links', { url: `https://example.com/seed/${i}` })).json as { code: string }).code);

    // Write latency: 4 writers back to back for 15 s, no fault.
    const quiet = startLoad({ writers: await Promise.all([0, 1, 2, 3].map(() => Visitor.signUp(entry, email()))), readers: 0, base: entry, codes, pauseMs: 0 });
    await sleep(15_000);
    await quiet.stop();
    const lat = quiet.records.filter((r) => r.status === 201).map((r) => r.endedAt - r.startedAt);
    const latency = { creates: lat.length, p50Ms: quantile(lat, 0.5), p99Ms: quantile(lat, 0.99), errors: quiet.records.filter((r) => r.status !== 201).length };
    log(`write latency (${mode}): ${JSON.stringify(latency)}`);

    const results: { outageMs: number; reads: number; failedReads: number; acknowledged: number; lost: number; rejoinMs: number; killed: string }[] = [];
    for (let t = 1; t <= trials; t++) {
      const writers = await Promise.all([0, 1, 2].map(() => Visitor.signUp(entry, email())));
      const load = startLoad({ writers, readers: 3, base: entry, codes });
      await sleep(3000);
      const old = pgNodes().find((n) => n.role === 'postgres')!;
      const at = Date.now();
      const kill = ladder('chaos', 'kill', 'primary');
      if (kill.code !== 0) throw new Error(`chaos kill primary failed: ${kill.err}`);
      await waitFor('writes to come back', () => writeOutageMs(load.records, at) < Infinity, 30_000);
      await sleep(2000);
      await load.stop();
      const records: LoadRecord[] = load.records;
      const reads = records.filter((r) => r.kind === 'redirect');
      const acknowledged = records.filter((r) => r.kind === 'create' && r.status === 201).map((r) => r.code!);
      const lost = await missingOnLeader(acknowledged);
      await waitFor(`${old.name} to rejoin`, () => pgNodes().find((n) => n.name === old.name)?.role === 'postgres-replica' && pgNodes().find((n) => n.name === old.name)?.state === 'ready', 90_000);
      const r = {
        killed: old.name,
        outageMs: writeOutageMs(records, at),
        reads: reads.length,
        failedReads: reads.filter((x) => x.status !== 302).length,
        acknowledged: acknowledged.length,
        lost,
        rejoinMs: Date.now() - at,
      };
      log(`trial ${t}: ${JSON.stringify(r)}`);
      results.push(r);
      await sleep(3000); // the rejoined node streams again before the next kill
    }
    const outages = results.map((r) => r.outageMs);
    process.stdout.write(
      JSON.stringify(
        {
          mode,
          command: `node dist/lab/ha/failover-trials.js --trials ${trials}${values.sync ? ' --sync' : ''}`,
          at: new Date().toISOString(),
          writeLatency: latency,
          failover: { trials: results, minMs: Math.min(...outages), medianMs: quantile(outages, 0.5), maxMs: Math.max(...outages) },
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    ladder('down');
  }
}

main().catch((err: unknown) => {
  log(`failed: ${(err as Error).message}`);
  ladder('down');
  process.exit(1);
});
