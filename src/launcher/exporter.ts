// A node's metrics exporter (prometheus-postgres-exporter beside a Postgres node,
// prometheus-redis-exporter beside a Redis): a process of its own, started by the supervisor
// once its node is ready and stopped when the node stops or dies, so that a node that is
// down is a target that is down (`up == 0`), never an exporter saying the server is gone
// (docs/decisions.md, "Exporters run beside their node").
import type { ChildProcess } from 'node:child_process';
import { stopChild } from '../kit/process/stop-process.ts';
import { exitReason, httpOk, spawnLogged, waitUntil } from './child.ts';
import type { MetricsTarget } from './component.ts';

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 3_000;

/** Starts the exporter of a node's target and resolves once it serves its metrics page. */
export async function startExporter(node: string, target: MetricsTarget): Promise<ChildProcess | undefined> {
  const spec = target.exporter;
  if (!spec) return undefined;
  const child = spawnLogged(spec.command, spec.args, { logFile: spec.logFile, env: { ...process.env, ...spec.env } });
  try {
    await waitUntil(() => httpOk(`http://127.0.0.1:${target.port}${target.path}`), READY_TIMEOUT_MS, `${node}'s exporter`, () => exitReason(child, spec.logFile));
  } catch (err) {
    await stopExporter(child);
    throw err;
  }
  return child;
}

export async function stopExporter(child: ChildProcess | undefined): Promise<void> {
  if (child) await stopChild(child, { signal: 'SIGTERM', timeoutMs: STOP_TIMEOUT_MS });
}
