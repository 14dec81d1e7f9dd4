// The write-latency cost of synchronous replication, measured in one run: one `ladder up
// --rung 4 --ha --web 2` topology, switched between asynchronous and synchronous mode at
// runtime (Patroni's PATCH /config {"synchronous_mode": ...}), in alternating phases
// (async, sync, async, sync, ...) so that the machine's load drifts over both alike. Each
// phase: WRITERS users creating links back to back for PHASE_S seconds.
//
//   npm run build && node dist/lab/ha/durability-latency.js [--rounds 3] [--phase-s 10]
//
// Figures: docs/performance.md, "High availability". Prints one JSON document at the end.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { LADDER_BIN } from '../../launcher/ladder-bin.ts';
import { quantile, startLoad, Visitor } from './steady-load.ts';

const WRITERS = 4;
const { values } = parseArgs({ options: { rounds: { type: 'string' }, 'phase-s': { type: 'string' }, 'state-dir': { type: 'string' } }, strict: true });
const rounds = Number(values.rounds ?? 3);
const phaseMs = Number(values['phase-s'] ?? 10) * 1000;
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new Error('--rounds: 1 to 20');
if (!(phaseMs >= 2000 && phaseMs <= 600_000)) throw new Error('--phase-s: 2 to 600');
const stateDir = path.resolve(values['state-dir'] ?? '.ladder/durability-latency');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);

interface Node {
  name: string;
  role: string;
  port: number;
  api?: string;
}

function ladder(...args: string[]) {
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LADDER_STATE_DIR: stateDir, LADDER_RATE_LIMITS: 'createLink=1000000/60,signup=100000/60' },
    timeout: 240_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const leader = (): Node => (JSON.parse(ladder('status', '--json').out) as { nodes: Node[] }).nodes.find((n) => n.role === 'postgres' && n.api)!;

/** The standbys' sync_state on the leader, e.g. ['async', 'sync']. */
async function syncStates(n: Node): Promise<string[]> {
  const { superuser } = JSON.parse(readFileSync(path.join(stateDir, 'up', 'ha-passwords.json'), 'utf8')) as { superuser: string };
  const c = new pg.Client({ connectionString: `postgres://postgres:${encodeURIComponent(superuser)}@127.0.0.1:${n.port}/links` });
  await c.connect();
  try {
    return (await c.query<{ s: string }>('select sync_state as s from pg_stat_replication')).rows.map((r) => r.s);
  } finally {
    await c.end();
  }
}

async function setMode(sync: boolean): Promise<void> {
  const n = leader();
  const res = await fetch(`${n.api}/config`, { method: 'PATCH', body: JSON.stringify({ synchronous_mode: sync }), headers: { 'content-type': 'application/json' } });
  if (!res.ok) throw new Error(`PATCH /config: ${res.status}`);
  const deadline = performance.now() + 30_000;
  while ((await syncStates(n)).includes('sync') !== sync) {
    if (performance.now() > deadline) throw new Error(`not in ${sync ? 'synchronous' : 'asynchronous'} mode within 30 s`);
    await sleep(250);
  }
}

async function main(): Promise<void> {
  ladder('down');
  const up = ladder('up', '--rung', '4', '--ha', '--web', '2');
  if (up.code !== 0) throw new Error(`ladder up failed: ${up.err}`);
  const entry = up.out.trim();
  const lat: Record<'asynchronous' | 'synchronous', number[]> = { asynchronous: [], synchronous: [] };
  const errors: Record<'asynchronous' | 'synchronous', number> = { asynchronous: 0, synchronous: 0 };
  try {
    const writers = await Promise.all(Array.from({ length: WRITERS }, (_, i) => Visitor.signUp(entry, `dur${Date.now().toString(36)}${i}@example.com`)));
    for (let r = 1; r <= rounds; r++) {
      for (const sync of [false, true]) {
        const mode = sync ? 'synchronous' : 'asynchronous';
        await setMode(sync);
        const load = startLoad({ writers, readers: 0, base: entry, codes: [], pauseMs: 0 });
        await sleep(phaseMs);
        await load.stop();
        const ok = load.records.filter((x) => x.status === 201).map((x) => x.endedAt - x.startedAt);
        lat[mode].push(...ok);
        errors[mode] += load.records.length - ok.length;
        log(`round ${r} ${mode}: ${ok.length} creates, p50 ${quantile(ok, 0.5)} ms, p99 ${quantile(ok, 0.99)} ms`);
      }
    }
  } finally {
    ladder('down');
  }
  const summary = (xs: number[]) => ({ creates: xs.length, p50Ms: quantile(xs, 0.5), p99Ms: quantile(xs, 0.99), perSecond: Math.round(xs.length / ((rounds * phaseMs) / 1000)) });
  process.stdout.write(
    JSON.stringify(
      {
        command: `node dist/lab/ha/durability-latency.js --rounds ${rounds} --phase-s ${phaseMs / 1000}`,
        at: new Date().toISOString(),
        writers: WRITERS,
        asynchronous: { ...summary(lat.asynchronous), errors: errors.asynchronous },
        synchronous: { ...summary(lat.synchronous), errors: errors.synchronous },
      },
      null,
      2,
    ) + '\n',
  );
}

main().catch((err: unknown) => {
  log(`failed: ${(err as Error).message}`);
  ladder('down');
  process.exit(1);
});
