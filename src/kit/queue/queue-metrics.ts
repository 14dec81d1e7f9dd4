// Rung 9's metrics (names are contracts, ARCHITECTURE.md): ladder_jobs_total{queue,result}
// counted by the consumers of this process, and ladder_queue_depth{queue} and
// ladder_queue_oldest_age_seconds{queue} read from the broker at scrape time (every worker
// reports the same broker-wide figures: aggregate them with max, not sum).
import { Counter, Gauge, type Registry } from 'prom-client';
import type { BrokerQueue, JobResult, QueueName, QueueStats } from './broker.ts';

/** A scrape does not wait longer than this for the broker (it may be stopped). */
const STATS_TIMEOUT_MS = 1000;

export interface QueueMetrics {
  jobs: Counter<'queue' | 'result'>;
  count(queue: QueueName, result: JobResult): void;
  /** A message received again after it was applied (a redelivery), recognised by its id and skipped. */
  duplicate(queue: QueueName): void;
  /** Clicks whose request key had been applied already (a redirect the balancer retried), counted as none. */
  repeatedClicks(n: number): void;
}

export function queueMetrics(registry: Registry, queues: readonly BrokerQueue[]): QueueMetrics {
  const registers = [registry];
  const jobs = new Counter({
    name: 'ladder_jobs_total',
    help: 'Messages handled by this process, by queue and result (done, retried, dead).',
    labelNames: ['queue', 'result'] as const,
    registers,
  });
  const duplicates = new Counter({
    name: 'ladder_jobs_duplicates_total',
    help: 'Messages received again after they had been applied (redeliveries), recognised by their id and changing nothing.',
    labelNames: ['queue'] as const,
    registers,
  });
  const repeated = new Counter({
    name: 'ladder_clicks_repeated_total',
    help: 'Clicks whose request key had been applied already (a redirect the balancer retried on another server after the first wrote the click), counted as none.',
    registers,
  });
  for (const q of queues) {
    for (const r of ['done', 'retried', 'dead'] as const) jobs.labels(q.name, r).inc(0);
    duplicates.labels(q.name).inc(0);
  }
  let last: Promise<QueueStats[]> | undefined;
  // One broker read per scrape, shared by both gauges.
  const stats = (): Promise<QueueStats[]> => {
    last ??= Promise.race([
      Promise.all(queues.map((q) => q.stats())),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('broker did not answer')), STATS_TIMEOUT_MS).unref()),
    ]).finally(() => setTimeout(() => (last = undefined), 200).unref());
    return last;
  };
  new Gauge({
    name: 'ladder_queue_depth',
    help: 'Messages in the queue not yet done (waiting, delayed for a retry, or being handled).',
    labelNames: ['queue'] as const,
    registers,
    async collect() {
      try {
        for (const s of await stats()) this.labels(s.name).set(s.depth);
      } catch {
        this.reset(); // broker away: no figure rather than a stale one
      }
    },
  });
  new Gauge({
    name: 'ladder_queue_oldest_age_seconds',
    help: 'Age of the oldest message waiting in the queue, 0 when none waits.',
    labelNames: ['queue'] as const,
    registers,
    async collect() {
      try {
        for (const s of await stats()) this.labels(s.name).set(s.oldestAgeSeconds);
      } catch {
        this.reset();
      }
    },
  });
  return {
    jobs,
    count: (queue, result) => jobs.labels(queue, result).inc(),
    duplicate: (queue) => duplicates.labels(queue).inc(),
    repeatedClicks: (n) => repeated.inc(n),
  };
}
