// `ladder alerts [--json]` and `ladder dashboard`: what fires, read from the topology's
// Alertmanager API, and where the dashboard is.
import { LadderFailure } from '../../kit/errors.ts';
import { readUpState } from '../up-state.ts';

/** One alert as `ladder alerts --json` lists it (a stable shape for scripts). */
export interface FiringAlert {
  alertname: string;
  severity: string | null;
  node: string | null;
  role: string | null;
  summary: string | null;
  startsAt: string;
  labels: Record<string, string>;
}

interface AlertmanagerAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  status: { state: string };
}

function monitoringUrl(stateDir: string, role: 'alertmanager' | 'prometheus'): string {
  const s = readUpState(stateDir);
  if (!s || s.state === 'stopped') throw new LadderFailure('NOT_RUNNING', 'nothing is running (start a topology with `ladder up --rung N`)');
  const node = s.nodes.find((n) => n.role === role);
  if (!node) throw new LadderFailure('NOT_MONITORED', `this topology runs no ${role}: start it with \`ladder up --rung ${s.rung ?? 'N'} --monitor\``);
  return node.url;
}

/** The alerts Alertmanager holds as active (firing, not silenced nor inhibited), oldest first. */
export async function firingAlerts(stateDir: string): Promise<FiringAlert[]> {
  const url = monitoringUrl(stateDir, 'alertmanager');
  let res: Response;
  try {
    res = await fetch(`${url}/api/v2/alerts?active=true&silenced=false&inhibited=false`, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new LadderFailure('COMPONENT_FAILED', `Alertmanager at ${url} did not answer (${(err as Error).message}); see \`ladder logs alertmanager\``);
  }
  if (!res.ok) throw new LadderFailure('COMPONENT_FAILED', `Alertmanager at ${url} answered ${res.status}`);
  const list = (await res.json()) as AlertmanagerAlert[];
  return list
    .filter((a) => a.status.state === 'active')
    .map((a) => ({
      alertname: a.labels.alertname ?? '',
      severity: a.labels.severity ?? null,
      node: a.labels.node ?? null,
      role: a.labels.role ?? null,
      summary: a.annotations.summary ?? null,
      startsAt: a.startsAt,
      labels: a.labels,
    }))
    .sort((a, b) => a.startsAt.localeCompare(b.startsAt) || a.alertname.localeCompare(b.alertname));
}

export async function alertsCommand(stateDir: string, json: boolean): Promise<number> {
  const alerts = await firingAlerts(stateDir);
  if (json) {
    process.stdout.write(`${JSON.stringify({ alerts })}\n`);
    return 0;
  }
  if (alerts.length === 0) process.stdout.write('no alert is firing\n');
  for (const a of alerts) {
    process.stdout.write(`${a.startsAt}  ${(a.severity ?? '-').padEnd(8)} ${a.alertname.padEnd(26)} ${a.summary ?? ''}\n`);
  }
  return 0;
}

export function dashboardCommand(stateDir: string): number {
  const s = readUpState(stateDir);
  if (!s || s.state === 'stopped') throw new LadderFailure('NOT_RUNNING', 'nothing is running (start a topology with `ladder up --rung N`)');
  if (!s.dashboard) throw new LadderFailure('NOT_MONITORED', `this topology runs no dashboard: start it with \`ladder up --rung ${s.rung ?? 'N'} --monitor\``);
  process.stdout.write(`${s.dashboard}\n`);
  return 0;
}
