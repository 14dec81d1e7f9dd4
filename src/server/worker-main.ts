// Entry of one worker (`ladder __worker`, node worker1.., rung 9): consumes the click batches
// and the link events from the broker and applies each once (the message's id is recorded in
// the transaction that applies it). Settings from the environment the launcher sets:
// DATABASE_URL, DATABASE_STATEMENTS, QUEUE_URL, PORT (its /healthz, /readyz and /metrics),
// WORKER_CONCURRENCY.
//
// Test switch, documented in docs/operations.md: LADDER_POISON_FILE names a file; while it
// exists and holds some text, a link event whose URL contains that text fails (a poison
// message), so a test can watch one reach the dead letters and be re-driven after the "fix"
// (deleting the file).
import { existsSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { applyClickBatch, applyLinkEvent, pruneClickKeys } from '../app/domain/links-repo.ts';
import { ConfigError, failureCode } from '../kit/errors.ts';
import { PgDatabase } from '../kit/db/pg-database.ts';
import { useUnnamedStatements } from '../kit/db/prepared.ts';
import { createMetrics } from '../kit/metrics/metrics.ts';
import { startOpsServer } from '../kit/metrics/ops-server.ts';
import { untilSignal } from '../kit/process/signals.ts';
import { BrokerConsumer, BrokerQueue, QUEUES } from '../kit/queue/broker.ts';
import { brokerSettings } from './broker-settings.ts';
import { queueMetrics } from '../kit/queue/queue-metrics.ts';
import { parseClickBatch, parseLinkEvent } from './queue-messages.ts';

/** In-flight messages get this long to finish on SIGTERM; then they are released to other workers. */
const STOP_GRACE_MS = 10_000;
/** Each worker forgets expired click keys about this often (jittered, so workers take turns). */
const PRUNE_EVERY_MS = 60_000;

function poisoned(url: string | null): boolean {
  const file = process.env.LADDER_POISON_FILE;
  if (!file || url === null || !existsSync(file)) return false;
  const marker = readFileSync(file, 'utf8').trim();
  return marker !== '' && url.includes(marker);
}

export async function runWorker(): Promise<number> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new ConfigError('DATABASE_URL', 'is not set', 'a worker needs the database URL in DATABASE_URL');
  const settings = brokerSettings();
  const node = process.env.LADDER_NODE ?? 'worker';
  const say = (m: string) => process.stderr.write(`${node}: ${m}\n`);
  const concurrency = Math.min(64, Math.max(1, Number(process.env.WORKER_CONCURRENCY ?? 4) || 4));
  // Behind PgBouncer (transaction mode) or RDS Proxy: unnamed statements, as the web servers.
  useUnnamedStatements(process.env.DATABASE_STATEMENTS === 'unnamed');
  const metrics = createMetrics();
  const database = new PgDatabase({ url: databaseUrl, metrics, max: concurrency * 2 + 1 });
  const queues = [new BrokerQueue(QUEUES.clicks, settings), new BrokerQueue(QUEUES.linkEvents, settings)];
  const qm = queueMetrics(metrics.registry, queues);
  const onResult = (queue: string, result: 'done' | 'retried' | 'dead', err?: unknown) => {
    qm.count(queue as 'clicks', result);
    if (result !== 'done') say(`${queue}: message ${result === 'dead' ? 'dead-lettered' : 'failed, will retry'}: ${(err as Error | undefined)?.message ?? ''}`);
  };
  const consumers = [
    new BrokerConsumer({
      settings,
      name: QUEUES.clicks,
      concurrency,
      onResult,
      handle: async (body) => {
        const b = parseClickBatch(body);
        const { applied, repeated } = await applyClickBatch(database, b, b.clicks);
        if (!applied) qm.duplicate(QUEUES.clicks);
        if (repeated > 0) qm.repeatedClicks(repeated);
      },
    }),
    new BrokerConsumer({
      settings,
      name: QUEUES.linkEvents,
      concurrency,
      onResult,
      handle: async (body) => {
        const e = parseLinkEvent(body);
        if (poisoned(e.url)) throw new Error(`poison event ${e.id} (LADDER_POISON_FILE)`);
        if (!(await applyLinkEvent(database, e.id, e.type, e.ownerId))) qm.duplicate(QUEUES.linkEvents);
      },
    }),
  ];
  const ops = await startOpsServer({
    host: process.env.HOST ?? '127.0.0.1',
    port: Number(process.env.PORT ?? 0),
    registry: metrics.registry,
    ready: () => database.ping(),
  });
  for (const c of consumers) c.start();
  let pruning: Promise<void> = Promise.resolve();
  const pruner = setInterval(
    () => {
      pruning = pruneClickKeys(database)
        .then((n) => {
          if (n > 0) say(`forgot ${n} expired click key(s)`);
        })
        .catch((err: unknown) => {
          say(`pruning click keys failed (tried again later): ${(err as Error).message}`);
        });
    },
    PRUNE_EVERY_MS * (0.75 + Math.random() / 2),
  );
  say(`consuming ${consumers.length} queues, ${concurrency} at a time each; ops at ${ops.url}`);
  await untilSignal(async () => {
    // Finish what is in flight; past the grace period, release it (another worker receives it).
    const graceful = Promise.all(consumers.map((c) => c.close()));
    const timer = new Promise<'late'>((r) => setTimeout(() => r('late'), STOP_GRACE_MS).unref());
    if ((await Promise.race([graceful.then(() => 'done' as const), timer])) === 'late') {
      say('in-flight messages did not finish in time: releasing them');
      await Promise.all(consumers.map((c) => c.close(true)));
    }
    clearInterval(pruner);
    await pruning;
    await Promise.all(queues.map((q) => q.close()));
    await ops.close();
    await database.close();
  }, say);
  return 0;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  try {
    process.exitCode = await runWorker();
  } catch (err) {
    const code = failureCode(err);
    process.stderr.write(`${process.env.LADDER_NODE ?? 'worker'}: ${code ? `${code}: ` : ''}${(err as Error).message ?? String(err)}\n`);
    process.exitCode = 1;
  }
}
