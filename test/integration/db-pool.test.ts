// The rung-1 database on a real Postgres: a pooled connection that its server drops while
// it is idle (a restart, a failover, an admin's pg_terminate_backend) is logged and counted,
// not dropped silently, and the pool goes on with a new connection; a failed transaction
// rolls back and leaves the pool usable.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgDatabase } from '../../src/kit/db/pg-database.ts';
import { createMetrics, type Metrics } from '../../src/kit/metrics/metrics.ts';
import { freshDatabase } from '../support/app.ts';

let url: string;
let metrics: Metrics;
let db: PgDatabase;
const warnings: string[] = [];

beforeAll(async () => {
  url = await freshDatabase();
  metrics = createMetrics();
  db = new PgDatabase({ url, metrics, log: { info: () => undefined, warn: (_o, msg) => warnings.push(msg) } });
}, 60_000);

afterAll(async () => {
  await db?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function series(name: string, labels: string): Promise<number> {
  const line = (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** Ends a backend from another connection, as an admin's pg_terminate_backend or a server's death would. */
async function terminateBackend(pid: number): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query('select pg_terminate_backend($1)', [pid]);
  } finally {
    await admin.end();
  }
}

describe('PgDatabase', () => {
  it('logs and counts an idle connection its server dropped, and carries on with a new one', async () => {
    const { pid } = (await db.read<{ pid: number }>('select pg_backend_pid() as pid'))[0]!;
    await terminateBackend(pid);
    for (let i = 0; i < 100 && warnings.length === 0; i++) await sleep(20);
    expect(warnings).toEqual(['an idle database connection failed; the pool opens a new one when needed']);
    expect(await series('ladder_background_errors_total', 'component="db"')).toBe(1);
    const { pid: next } = (await db.read<{ pid: number }>('select pg_backend_pid() as pid'))[0]!;
    expect(next).not.toBe(pid);
  });

  it('rolls a failed transaction back and counts its statements as primary queries', async () => {
    const before = await series('ladder_db_queries_total', 'role="primary"');
    await expect(
      db.tx(async (tx) => {
        await tx.query('create temporary table t (x int)');
        await tx.query('select 1/0');
      }),
    ).rejects.toThrow(/division by zero/);
    expect(await series('ladder_db_queries_total', 'role="primary"')).toBe(before + 2);
    expect(await db.tx(async (tx) => (await tx.query<{ n: number }>('select 1 as n'))[0]?.n)).toBe(1);
    expect(await db.ping()).toBe(true);
  });

  it('survives a connection its server drops in the middle of a transaction: the transaction fails, the process lives', async () => {
    // The connection is checked out (between two statements of a transaction) when its
    // backend goes, as when the primary is killed under load: pg emits 'error' on the client,
    // which pg-pool listens to only while it is idle. Unheard, that error kills the process
    // (vitest reports it as an unhandled error and fails the run).
    const uncaught: Error[] = [];
    const onUncaught = (err: Error) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      await expect(
        db.tx(async (tx) => {
          const { pid } = (await tx.query<{ pid: number }>('select pg_backend_pid() as pid'))[0]!;
          await terminateBackend(pid);
          await sleep(200); // the termination reaches the idle-in-transaction client
          await tx.query('select 1');
        }),
      ).rejects.toThrow();
    } finally {
      await sleep(50);
      process.off('uncaughtException', onUncaught);
    }
    expect(uncaught.map((e) => e.message)).toEqual([]);
    expect(await db.tx(async (tx) => (await tx.query<{ n: number }>('select 1 as n'))[0]?.n)).toBe(1);
  });
});
