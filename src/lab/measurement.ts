// One measured phase against one server: the driver's figures plus the CPU the server and
// its Postgres used meanwhile, which tells who the bottleneck was. And medians over rounds.
import type { PhaseResult, PhaseSpec } from './driver-protocol.ts';
import type { LoadDriverProcess } from './load-driver-process.ts';
import { cpuSeconds, treeCpuSeconds } from './proc-stats.ts';
import type { ServerUnderTest } from './bench-servers.ts';

export interface Measurement extends PhaseResult {
  server: string;
  /** Saturation round (1-based); undefined for the fixed-rate phase. */
  round: number | undefined;
  /** CPU of the server's own process over the window, as a fraction of one core. */
  serverCpu: number;
  /** CPU of the Postgres it queries (postmaster and backends); null when none. */
  databaseCpu: number | null;
}

export type PhasePlan = Omit<PhaseSpec, 'host' | 'port'>;

export async function measure(driver: LoadDriverProcess, sut: ServerUnderTest, plan: PhasePlan, round?: number): Promise<Measurement> {
  const sample = () => ({
    at: performance.now(),
    server: cpuSeconds(sut.proc.pid),
    db: sut.databasePid === undefined ? 0 : treeCpuSeconds(sut.databasePid),
  });
  // Sample CPU when the driver's measured window opens and closes (its warm-up comes first).
  let first: ReturnType<typeof sample> | undefined;
  let last: ReturnType<typeof sample> | undefined;
  const t1 = setTimeout(() => (first = sample()), plan.warmupMs);
  const t2 = setTimeout(() => (last = sample()), plan.warmupMs + plan.durationMs);
  try {
    const result = await driver.run({ ...plan, host: sut.host, port: sut.port });
    last ??= sample();
    first ??= last;
    const seconds = (last.at - first.at) / 1000;
    const share = (a: number, b: number) => (seconds > 0 ? (b - a) / seconds : 0);
    return {
      ...result,
      server: sut.name,
      round,
      serverCpu: share(first.server, last.server),
      databaseCpu: sut.databasePid === undefined ? null : share(first.db, last.db),
    };
  } finally {
    clearTimeout(t1);
    clearTimeout(t2);
  }
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Medians {
  server: string;
  rounds: number;
  throughput: number;
  /** Throughput of each round, to show the spread. */
  throughputs: number[];
  p50: number;
  p99: number;
  serverCpu: number;
  databaseCpu: number | null;
  /**
   * CPU microseconds the server and its Postgres spent per request. Unlike throughput, it
   * barely moves when a neighbour takes CPU time from the servers' core, so it is the
   * steadier figure on a shared machine.
   */
  cpuPerRequestUs: number;
  driverCpu: number;
  errors: number;
}

export function mediansOf(all: Measurement[], server: string): Medians {
  const ms = all.filter((m) => m.server === server);
  const dbs = ms.map((m) => m.databaseCpu).filter((x): x is number => x !== null);
  const perRequest = ms.map((m) => (m.throughput > 0 ? ((m.serverCpu + (m.databaseCpu ?? 0)) / m.throughput) * 1e6 : NaN));
  return {
    server,
    rounds: ms.length,
    throughput: median(ms.map((m) => m.throughput)),
    throughputs: ms.map((m) => m.throughput),
    p50: median(ms.map((m) => m.latency.p50)),
    p99: median(ms.map((m) => m.latency.p99)),
    serverCpu: median(ms.map((m) => m.serverCpu)),
    databaseCpu: dbs.length ? median(dbs) : null,
    cpuPerRequestUs: median(perRequest),
    driverCpu: median(ms.map((m) => m.driverCpu)),
    errors: ms.reduce((s, m) => s + m.non302 + m.failed, 0),
  };
}
