// The two ways a scenario loads its servers: saturation rounds (closed loop) alternating
// between servers, so slow drift of a shared machine hits them all alike, and one
// fixed-rate phase per server at the same arrival rate.
import type { BenchOptions } from '../options/bench-options.ts';
import type { LoadDriverProcess } from '../driver/load-driver-process.ts';
import { measure, type MeasureTarget, type Measurement, type PhasePlan } from './measurement.ts';

/** What a scenario sends, when not redirects (see PhaseSpec.session). */
export type Workload = Pick<PhasePlan, 'session' | 'expectStatus'>;

export function plan(o: BenchOptions, mode: 'closed' | 'open', rate?: number, workload: Workload = {}): PhasePlan {
  return {
    mode,
    connections: o.connections,
    warmupMs: o.warmup * 1000,
    durationMs: o.duration * 1000,
    rate,
    links: o.links,
    zipfS: o.zipf,
    seed: o.seed,
    ...workload,
  };
}

const f0 = (n: number) => Math.round(n).toLocaleString('en-US');
const f2 = (n: number) => n.toFixed(2);

export async function saturationRounds(
  driver: LoadDriverProcess,
  servers: MeasureTarget[],
  o: BenchOptions,
  log: (m: string) => void,
  workload: Workload = {},
): Promise<Measurement[]> {
  const all: Measurement[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    for (const sut of servers) {
      const m = await measure(driver, sut, plan(o, 'closed', undefined, workload), round);
      log(
        `saturation ${round}/${o.rounds} ${sut.name}: ${f0(m.throughput)} req/s, p50 ${f2(m.latency.p50)} ms, ` +
          `p99 ${f2(m.latency.p99)} ms, errors ${m.non302 + m.failed}`,
      );
      all.push(m);
    }
  }
  return all;
}

export async function fixedRate(
  driver: LoadDriverProcess,
  servers: MeasureTarget[],
  o: BenchOptions,
  rate: number,
  log: (m: string) => void,
  workload: Workload = {},
  round?: number,
): Promise<Measurement[]> {
  const all: Measurement[] = [];
  for (const sut of servers) {
    const m = await measure(driver, sut, plan(o, 'open', rate, workload), round);
    log(
      `fixed rate ${f0(rate)} req/s ${sut.name}: p50 ${f2(m.latency.p50)} ms, p99 ${f2(m.latency.p99)} ms, ` +
        `max ${f2(m.latency.max)} ms, late ${m.late ?? 0}, unsent ${m.unsent ?? 0}, errors ${m.non302 + m.failed}`,
    );
    all.push(m);
  }
  return all;
}

/** Notes the reader needs to trust (or distrust) the figures. */
export function measurementNotes(ms: Measurement[], loadAverage: number[]): string[] {
  const notes: string[] = [];
  const driverBound = [...new Set(ms.filter((m) => m.mode === 'closed' && m.driverCpu > 0.9).map((m) => m.server))];
  if (driverBound.length > 0) {
    notes.push(
      `the load driver used over 90% of its core while saturating ${driverBound.join(', ')}: ` +
        'those throughputs are partly the driver\'s limit, i.e. lower bounds',
    );
  }
  if ((loadAverage[0] ?? 0) > 0.5) {
    notes.push(`the machine was busy when the run started (load average ${loadAverage.join(' ')}): expect noise`);
  }
  const overloaded = ms.filter((m) => m.mode === 'open' && ((m.unsent ?? 0) > 0 || m.failed > 0));
  for (const m of overloaded) {
    notes.push(`${m.server} could not keep up with the fixed rate: ${m.unsent ?? 0} requests never sent, ${m.failed} failed`);
  }
  return notes;
}
