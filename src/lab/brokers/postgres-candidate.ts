// Candidate 3: a queue in a Postgres table, claimed with `FOR UPDATE SKIP LOCKED`: no new
// server for a project that already runs Postgres. A claim stamps `locked_until` (the
// visibility timeout) and counts the attempt; an acknowledgement deletes the row; a failure
// puts it back with a later `run_at` (the retry delay) or, at the last attempt, moves it to
// a dead-letter table in the same statement. `attempts` doubles as a lease token: an
// acknowledgement from a consumer whose claim expired (and was claimed again) changes nothing.
// Consumers poll every 100 ms when the queue is empty (LISTEN/NOTIFY would wake them sooner).
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { PostgresServer, systemBinDir } from '../../launcher/postgres-server.ts';
import { descendants } from '../../kit/process/process-tree.ts';
import { exited } from '../../kit/process/stop-process.ts';
import type { BrokerServer, Candidate, ClickBatch, Handler, QueueClient, QueueSettings, Subscription } from './candidate.ts';
import { sleep } from './server-process.ts';

const CLAIM_BATCH = 10;
const POLL_MS = 100;

function postgresServer(dir: string, port: number, synchronousCommit: boolean): BrokerServer {
  // The server runs as an unprivileged user when we are root: it must be able to enter the folder.
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  chmodSync(path.dirname(dir), 0o755);
  const server = new PostgresServer({
    dataDir: path.join(dir, 'pgdata'),
    port,
    binDir: systemBinDir(15),
    logFile: path.join(dir, 'postgres.log'),
    settings: { synchronous_commit: synchronousCommit ? 'on' : 'off' },
  });
  return {
    // Holds the generated password: the scenarios pass it to the child consumer through its environment only.
    address: server.url('postgres'),
    pid: () => server.pid,
    start: () => server.start(),
    async kill() {
      const child = server.process;
      if (!child?.pid) return;
      // The postmaster and every backend at once, as a crash of the machine would.
      const all = [child.pid, ...descendants(child.pid)];
      const gone = exited(child);
      for (const pid of all) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await gone;
    },
    stop: () => server.stop(),
  };
}

async function postgresClient(address: string, s: QueueSettings): Promise<QueueClient> {
  if (!/^[a-z][a-z0-9_]{0,40}$/.test(s.name)) throw new Error(`queue name ${JSON.stringify(s.name)}: use [a-z][a-z0-9_]{0,40}`);
  const t = `q_${s.name}`;
  const dead = `q_${s.name}_dead`;
  const pool = new pg.Pool({ connectionString: address, max: 8 });
  pool.on('error', () => undefined); // an idle connection cut by the server's death; the next query reconnects
  const stops: (() => Promise<void>)[] = [];
  const claimSql =
    `update ${t} set attempts = attempts + 1, locked_until = now() + make_interval(secs => $2) ` +
    `where id in (select id from ${t} where run_at <= now() and (locked_until is null or locked_until < now()) ` +
    `order by id limit $1 for update skip locked) returning id, body, attempts`;
  const deadSql =
    `with d as (delete from ${t} where id = $1 and attempts = $2 returning id, body, attempts) ` +
    `insert into ${dead} (id, body, attempts) select id, body, attempts from d`;

  return {
    async setup() {
      await pool.query(
        `create table if not exists ${t} (id bigserial primary key, body text not null, attempts int not null default 0, ` +
          `run_at timestamptz not null default now(), locked_until timestamptz)`,
      );
      await pool.query(`create table if not exists ${dead} (id bigint primary key, body text not null, attempts int not null, failed_at timestamptz not null default now())`);
    },
    async publish(batches) {
      await pool.query(`insert into ${t} (body) select unnest($1::text[])`, [batches.map((b) => JSON.stringify(b))]);
    },
    async consume(concurrency: number, handler: Handler): Promise<Subscription> {
      let stopped = false;
      const worker = async () => {
        while (!stopped) {
          let rows: { id: string; body: string; attempts: number }[];
          try {
            rows = (await pool.query<{ id: string; body: string; attempts: number }>(claimSql, [CLAIM_BATCH, s.visibilityMs / 1000])).rows;
          } catch {
            await sleep(200); // the server is away: try again
            continue;
          }
          if (rows.length === 0) {
            await sleep(POLL_MS);
            continue;
          }
          for (const r of rows) {
            if (stopped) break;
            try {
              if (r.attempts > s.maxAttempts) {
                await pool.query(deadSql, [r.id, r.attempts]);
                continue;
              }
              const { seq } = JSON.parse(r.body) as ClickBatch;
              const outcome = await handler({ seq, attempt: r.attempts }).catch(() => 'fail' as const);
              if (outcome === 'ack') await pool.query(`delete from ${t} where id = $1 and attempts = $2`, [r.id, r.attempts]);
              else if (r.attempts >= s.maxAttempts) await pool.query(deadSql, [r.id, r.attempts]);
              else {
                await pool.query(`update ${t} set locked_until = null, run_at = now() + make_interval(secs => $3) where id = $1 and attempts = $2`, [
                  r.id,
                  r.attempts,
                  s.retryDelayMs / 1000,
                ]);
              }
            } catch {
              // The server went away before the acknowledgement: the row comes back after its lock.
            }
          }
        }
      };
      const loops = Array.from({ length: concurrency }, () => worker());
      const close = async () => {
        stopped = true;
        await Promise.all(loops);
      };
      stops.push(close);
      return { close };
    },
    async deadLettered() {
      const { rows } = await pool.query<{ body: string }>(`select body from ${dead} order by id`);
      return rows.map((r) => (JSON.parse(r.body) as ClickBatch).seq);
    },
    async depth() {
      const { rows } = await pool.query<{ n: string }>(`select count(*) as n from ${t}`);
      return Number(rows[0]?.n ?? 0);
    },
    async close() {
      await Promise.all(stops.map((stop) => stop()));
      await pool.end();
    },
  };
}

/**
 * With `synchronousCommit: false` a commit returns before its WAL is flushed (the WAL writer
 * flushes within 3 × wal_writer_delay, 600 ms): the same queue code, with a durability
 * closer to Redis' appendfsync everysec, to see what the flush on every commit costs.
 */
function postgresCandidate(synchronousCommit: boolean): Candidate {
  return {
    name: synchronousCommit ? 'postgres-skip-locked' : 'postgres-async-commit',
    ...(synchronousCommit ? {} : { variantOf: 'postgres-skip-locked' }),
    describe() {
      return {
        client: 'pg (node-postgres), plain SQL',
        server: `PostgreSQL 15 (the machine's binaries), fsync on, synchronous_commit ${synchronousCommit ? 'on' : 'off'}`,
        settings: `claim ${CLAIM_BATCH} rows per statement with FOR UPDATE SKIP LOCKED, delete on ack, poll every ${POLL_MS} ms when empty, dead-letter table`,
      };
    },
    server: (dir, port) => postgresServer(dir, port, synchronousCommit),
    client: postgresClient,
  };
}

export const postgresQueue = postgresCandidate(true);
export const postgresAsyncCommit = postgresCandidate(false);
