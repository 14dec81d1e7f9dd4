// Prometheus as a component (node `prometheus`, monitoring): its own data folder and loopback
// port, a configuration written on every start, and the targets file it watches, which the
// supervisor rewrites whenever the nodes change (the TargetSink below).
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stopChild } from '../../kit/process/stop-process.ts';
import { requireBinary } from '../binaries.ts';
import { exitReason, httpOk, spawnLogged, waitUntil } from '../child.ts';
import { ROLES, type Component, type MetricsTarget, type TargetSink } from '../component.ts';
import { limitsRules, prometheusConfig, RULES_FILE, writeTargets, type ScrapeTarget } from '../monitoring/prometheus-config.ts';
import { ensureDir } from '../state-dir.ts';

const READY_TIMEOUT_MS = 30_000;
/** Locally a few hours are plenty: the dashboard charts minutes. */
const RETENTION = '6h';

export interface PrometheusComponentOptions {
  dir: string;
  port: number;
  logFile: string;
  alertmanagerPort: number | undefined;
  /** Cores each web server may use: its --cpu cap, else 1. */
  webCpuLimit: number;
}

export class PrometheusComponent implements Component, TargetSink {
  readonly name = 'prometheus';
  readonly role = 'prometheus' as const;
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  readonly metrics: MetricsTarget;
  private readonly targetsFile: string;
  private targets: readonly ScrapeTarget[] = [];
  private fresh = true;

  constructor(private readonly opts: PrometheusComponentOptions) {
    this.port = opts.port;
    this.url = `http://127.0.0.1:${opts.port}`;
    this.logFile = opts.logFile;
    this.metrics = { port: opts.port, path: '/metrics' };
    this.targetsFile = path.join(opts.dir, 'targets.json');
  }

  setTargets(targets: readonly ScrapeTarget[]): void {
    this.targets = targets;
    writeTargets(this.targetsFile, targets);
  }

  async start(): Promise<ChildProcess> {
    const bin = requireBinary('prometheus');
    const rulesFile = path.join(this.opts.dir, 'ladder-rules.yml');
    copyFileSync(RULES_FILE, rulesFile);
    const limitsFile = path.join(this.opts.dir, 'ladder-limits.yml');
    writeFileSync(limitsFile, limitsRules(this.opts.webCpuLimit));
    writeTargets(this.targetsFile, this.targets);
    const cfg = path.join(this.opts.dir, 'prometheus.yml');
    const data = path.join(this.opts.dir, 'data');
    // Each `up` starts with no history: the last run's series name ports that are gone now,
    // and would count as live for Prometheus' 5-minute lookback. A restart keeps its data.
    if (this.fresh) rmSync(data, { recursive: true, force: true });
    this.fresh = false;
    writeFileSync(cfg, prometheusConfig({ targetsFile: this.targetsFile, rulesFiles: [rulesFile, limitsFile], alertmanagerPort: this.opts.alertmanagerPort }));
    return spawnLogged(
      bin,
      [
        `--config.file=${cfg}`,
        `--storage.tsdb.path=${ensureDir(data)}`,
        `--storage.tsdb.retention.time=${RETENTION}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        // Firing alerts are sent again this often (default 1 m): an Alertmanager that was
        // restarted, and so forgot them, shows them again within seconds.
        '--rules.alert.resend-delay=2s',
        // Its own pages link to this URL; nothing is served beyond loopback.
        `--web.external-url=${this.url}/`,
      ],
      { logFile: this.logFile },
    );
  }

  async waitReady(child: ChildProcess): Promise<void> {
    await waitUntil(() => httpOk(`${this.url}/-/ready`), READY_TIMEOUT_MS, this.name, () => exitReason(child, this.logFile));
  }

  async stop(child: ChildProcess): Promise<void> {
    await stopChild(child, { signal: ROLES.prometheus.stopSignal, timeoutMs: ROLES.prometheus.stopTimeoutMs });
  }
}
