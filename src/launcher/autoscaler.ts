// The autoscaler of `ladder up --autoscale MIN:MAX`: a control loop in the supervisor that
// every sync period measures the web servers' CPU (process tree CPU seconds from /proc, each
// relative to its --cpu cap, else one core), asks the policy (autoscale-policy.ts) how many
// servers the tier should run, and scales to that through the supervisor, which warms a new
// server before the balancer sends it traffic and drains one before it stops. Every decision
// is one line of the supervisor log and a sample of the metrics it serves on a loopback
// /metrics endpoint of its own (its URL is in the state file, for Prometheus to scrape).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { treeCpuSeconds } from '../kit/process/process-cpu.ts';
import type { AutoscaleConfig } from '../topology/autoscale-config.ts';
import { decide, meanUtilisation, type Recommendation } from './autoscale-policy.ts';
import type { AutoscalerState } from './up-state.ts';

/** A web server as the autoscaler sees it: serving ones only (not starting, not draining). */
export interface ScalableServer {
  name: string;
  pid: number;
  /** Its CPU cap in cores, when capped. */
  cpu?: number;
}

/** What the autoscaler drives: the supervisor's web tier. */
export interface ScalableTier {
  servingWebs(): ScalableServer[];
  scale(count: number): Promise<void>;
}

export class Autoscaler {
  private readonly registry = new Registry();
  private readonly desiredGauge: Gauge;
  private readonly currentGauge: Gauge;
  private readonly utilisationGauge: Gauge;
  private readonly decisions: Counter<'direction'>;
  private history: Recommendation[] = [];
  private samples = new Map<string, number>();
  private sampledAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private server: http.Server | undefined;
  private busy: Promise<void> | undefined;
  private stopped = false;
  /** What the last acting sync asked for. */
  private desired = 0;

  constructor(
    private readonly config: AutoscaleConfig,
    private readonly tier: ScalableTier,
    private readonly log: (line: string) => void,
  ) {
    const registers = [this.registry];
    this.desiredGauge = new Gauge({ name: 'ladder_autoscaler_desired_servers', help: 'Web servers the autoscaler last asked for', registers });
    this.currentGauge = new Gauge({ name: 'ladder_autoscaler_current_servers', help: 'Web servers serving at the last sync', registers });
    this.utilisationGauge = new Gauge({
      name: 'ladder_autoscaler_utilisation',
      help: "Mean CPU utilisation of the web servers over the last sync period, of each one's cap (1 core when uncapped)",
      registers,
    });
    this.decisions = new Counter({ name: 'ladder_autoscaler_decisions_total', help: 'Autoscaler decisions, by direction (out, in, none)', labelNames: ['direction'], registers });
    for (const direction of ['out', 'in', 'none']) this.decisions.inc({ direction }, 0);
    new Gauge({ name: 'ladder_autoscaler_target_utilisation', help: 'The CPU utilisation the autoscaler holds the tier at', registers }).set(config.targetCpu);
    new Gauge({ name: 'ladder_autoscaler_min_servers', help: 'Fewest web servers', registers }).set(config.min);
    new Gauge({ name: 'ladder_autoscaler_max_servers', help: 'Most web servers', registers }).set(config.max);
  }

  /** Serves /metrics on a loopback port and starts the loop; returns its state-file entry. */
  async start(): Promise<AutoscalerState> {
    this.server = http.createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/metrics') {
        this.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
          () => res.writeHead(500).end(),
        );
      } else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = this.server.address() as AddressInfo;
    this.sample();
    this.currentGauge.set(this.tier.servingWebs().length);
    this.desired = this.tier.servingWebs().length;
    this.desiredGauge.set(this.desired);
    this.timer = setInterval(() => {
      if (this.stopped) return;
      // One scaling at a time. While one runs (a new server takes seconds to start at a small
      // CPU cap) the syncs still measure and recommend, so the scale-in window holds what
      // the load asked for meanwhile; they only do not act.
      const act = this.busy === undefined;
      const sync = this.sync(act).catch((err: unknown) => this.log(`autoscaler: sync failed: ${(err as Error).message}`));
      if (act) this.busy = sync.finally(() => (this.busy = undefined));
    }, this.config.syncMs);
    this.timer.unref();
    const c = this.config;
    this.log(`autoscaler: ${c.min}..${c.max} web servers at ${Math.round(c.targetCpu * 100)}% CPU, sync ${c.syncMs / 1000} s, scale-in window ${c.scaleInWindowMs / 1000} s`);
    return {
      url: `http://127.0.0.1:${port}/metrics`,
      min: c.min,
      max: c.max,
      targetCpu: c.targetCpu,
      syncSeconds: c.syncMs / 1000,
      scaleInWindowSeconds: c.scaleInWindowMs / 1000,
    };
  }

  /** CPU seconds of every serving server now; returns the utilisation since the last sample. */
  private sample(): number {
    const now = performance.now();
    const webs = this.tier.servingWebs();
    const next = new Map<string, number>();
    for (const w of webs) {
      const cpu = treeCpuSeconds(w.pid);
      if (cpu !== undefined) next.set(w.name, cpu);
    }
    const caps = new Map(webs.map((w) => [w.name, w.cpu ?? 1]));
    const u = meanUtilisation(this.samples, next, (now - this.sampledAt) / 1000, (name) => caps.get(name) ?? 1);
    this.samples = next;
    this.sampledAt = now;
    return u;
  }

  private async sync(act: boolean): Promise<void> {
    // A window much shorter than a sync period measures nothing: /proc counts CPU in 10 ms
    // ticks, so the 50 ms between the sample taken after a scaling and the next tick reads a
    // 0.1-core server as 0% or 200% (a spurious scale-out right after a scale-in was seen).
    // Such a tick leaves the baseline as it is, and the next one measures a whole period.
    if (performance.now() - this.sampledAt < this.config.syncMs / 2) return;
    const utilisation = this.sample();
    const current = this.tier.servingWebs().length;
    const d = decide(this.config, { now: Date.now(), current, utilisation, history: this.history });
    if (!act) {
      d.direction = 'none';
      d.reason += `; not acting: a scaling is still under way`;
      d.desired = this.desired;
    }
    this.history = d.history;
    this.utilisationGauge.set(Number.isFinite(utilisation) ? utilisation : 0);
    this.currentGauge.set(current);
    this.desiredGauge.set(d.desired);
    this.desired = d.desired;
    this.decisions.inc({ direction: d.direction });
    this.log(`autoscaler: ${new Date().toISOString()} utilisation ${Number.isFinite(utilisation) ? `${(utilisation * 100).toFixed(0)}%` : '-'} ${current} -> ${d.desired} (${d.direction}): ${d.reason}`);
    if (act && d.desired !== current && !this.stopped) {
      await this.tier.scale(d.desired);
      // The servers changed: their CPU is measured afresh from here.
      this.sample();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.busy;
    const server = this.server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections(); // a scraper's keep-alive connection would hold close() open
    await closed;
  }
}
