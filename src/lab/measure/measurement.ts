// One measured phase against one server: the driver's figures plus the CPU the server and
// its Postgres used meanwhile, which tells who the bottleneck was. And medians over rounds.
import type { PhaseResult, PhaseSpec } from '../driver/driver-protocol.ts';
import type { LoadDriverProcess } from '../driver/load-driver-process.ts';

export interface Measurement extends PhaseResult {
  server: string;
  /** Round (1-based); undefined for a fixed-rate phase that runs once. */
  round: number | undefined;
  /** CPU of the server's own process(es) over the window, as a fraction of one core. */
  serverCpu: number;
  /** CPU of the Postgres it queries (postmaster and backends); null when none. */
  databaseCpu: number | null;
  /** Topologies: CPU of each other component (haproxy, redis), fractions of one core. */
  componentCpu?: Record<string, number>;
  /** Topologies with capped web servers: share of the cgroup's CFS periods in which the
   *  web servers were throttled (near 1: they were held at their cap the whole time). */
  throttled?: number;
  /** Topologies: CPU of each database node (primary, replica1, …), fractions of one core. */
  databaseNodeCpu?: Record<string, number>;
  /** Topologies with capped database nodes (`--db-cpu`): share of each node's CFS periods
   *  in which it was throttled (near 1: held at its cap, the database was the bottleneck). */
  databaseThrottled?: Record<string, number>;
}

/** Counters read when a measured window opens and closes. */
export interface CpuSample {
  /** CPU seconds of the server process(es). */
  server: number;
  /** CPU seconds of its Postgres tree(s); null when it has none. */
  database: number | null;
  /** CPU seconds of other components, by name. */
  components?: Record<string, number>;
  /** CFS periods and throttled periods of the servers' cgroups, summed. */
  throttling?: { periods: number; throttled: number };
  /** CPU seconds of each database node's process tree, by node name. */
  databaseNodes?: Record<string, number>;
  /** CFS periods and throttled periods of each capped database node's cgroup. */
  databaseThrottling?: Record<string, { periods: number; throttled: number }>;
}

/** What a phase is aimed at: where to send, and how to read the CPU it costs. */
export interface MeasureTarget {
  /** Stable key used in the report. */
  name: string;
  host: string;
  port: number;
  sampleCpu(): CpuSample;
}

export type PhasePlan = Omit<PhaseSpec, 'host' | 'port'>;

export async function measure(driver: LoadDriverProcess, sut: MeasureTarget, plan: PhasePlan, round?: number): Promise<Measurement> {
  const sample = () => ({ at: performance.now(), cpu: sut.sampleCpu() });
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
    const [a, b] = [first.cpu, last.cpu];
    const m: Measurement = {
      ...result,
      server: sut.name,
      round,
      serverCpu: share(a.server, b.server),
      databaseCpu: a.database === null || b.database === null ? null : share(a.database, b.database),
    };
    if (a.components && b.components) {
      const before = a.components;
      m.componentCpu = Object.fromEntries(Object.entries(b.components).map(([k, v]) => [k, share(before[k] ?? v, v)]));
    }
    if (a.throttling && b.throttling) {
      const periods = b.throttling.periods - a.throttling.periods;
      m.throttled = periods > 0 ? (b.throttling.throttled - a.throttling.throttled) / periods : 0;
    }
    if (a.databaseNodes && b.databaseNodes) {
      const before = a.databaseNodes;
      m.databaseNodeCpu = Object.fromEntries(Object.entries(b.databaseNodes).map(([k, v]) => [k, share(before[k] ?? v, v)]));
    }
    if (a.databaseThrottling && b.databaseThrottling) {
      const before = a.databaseThrottling;
      m.databaseThrottled = Object.fromEntries(
        Object.entries(b.databaseThrottling).map(([k, t]) => {
          const periods = t.periods - (before[k]?.periods ?? t.periods);
          return [k, periods > 0 ? (t.throttled - before[k]!.throttled) / periods : 0];
        }),
      );
    }
    return m;
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
  /** Topologies: medians of Measurement.componentCpu, .throttled, .databaseNodeCpu and .databaseThrottled. */
  componentCpu?: Record<string, number>;
  throttled?: number;
  databaseNodeCpu?: Record<string, number>;
  databaseThrottled?: Record<string, number>;
}

export function mediansOf(all: Measurement[], server: string): Medians {
  const ms = all.filter((m) => m.server === server);
  const dbs = ms.map((m) => m.databaseCpu).filter((x): x is number => x !== null);
  const perRequest = ms.map((m) => (m.throughput > 0 ? ((m.serverCpu + (m.databaseCpu ?? 0)) / m.throughput) * 1e6 : NaN));
  const medians: Medians = {
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
  const names = [...new Set(ms.flatMap((m) => Object.keys(m.componentCpu ?? {})))];
  if (names.length > 0) {
    medians.componentCpu = Object.fromEntries(names.map((n) => [n, median(ms.map((m) => m.componentCpu?.[n] ?? 0))]));
  }
  const throttled = ms.map((m) => m.throttled).filter((x): x is number => x !== undefined);
  if (throttled.length > 0) medians.throttled = median(throttled);
  const perNode = (pick: (m: Measurement) => Record<string, number> | undefined) => {
    const keys = [...new Set(ms.flatMap((m) => Object.keys(pick(m) ?? {})))];
    return keys.length > 0 ? Object.fromEntries(keys.map((k) => [k, median(ms.map((m) => pick(m)?.[k] ?? 0))])) : undefined;
  };
  const nodeCpu = perNode((m) => m.databaseNodeCpu);
  if (nodeCpu) medians.databaseNodeCpu = nodeCpu;
  const nodeThrottled = perNode((m) => m.databaseThrottled);
  if (nodeThrottled) medians.databaseThrottled = nodeThrottled;
  return medians;
}
