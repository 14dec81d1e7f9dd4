// Warm-ups: load before the measured phases, until throughput stops rising, so that the
// rounds compare servers in steady state (V8 has optimized the hot path; a cache is warm).
// Nothing of a warm-up is recorded except how long it took and whether it flattened.
import type { LoadDriverProcess } from '../driver/load-driver-process.ts';
import type { BenchOptions } from '../options/bench-options.ts';
import type { MeasureTarget } from './measurement.ts';
import { plan, type Workload } from './phases.ts';

/**
 * Before the first phase the servers are loaded until their throughput stops rising (a
 * launched topology's web servers are fresh processes): at 0.2 core a fresh server needs about 12 s of saturation (some 2,000 requests) before V8 has
 * optimized its hot path (measured: 205, 218, 480, 697, 713, 770 req/s in successive 4 s
 * phases, then flat). In steps of --warmup seconds (2 at least), until two steps in a row
 * are within WARMUP_STABLE of the one before (a slow rise is not flat), at least
 * WARMUP_MIN_FACTOR x --warmup seconds and at most WARMUP_MAX_FACTOR x --warmup (60 s by default).
 */
const WARMUP_MIN_FACTOR = 4;
const WARMUP_MAX_FACTOR = 20;
const WARMUP_STABLE = 0.1;

/** Loads the target in steps until throughput is flat (see WARMUP_MIN_FACTOR); nothing is recorded. */
export async function warmUp(
  driver: LoadDriverProcess,
  target: MeasureTarget,
  o: BenchOptions,
  log: (m: string) => void,
  workload: Workload = {},
  connections = o.connections,
): Promise<{ seconds: number; flat: boolean }> {
  const step = Math.max(2, o.warmup);
  const min = WARMUP_MIN_FACTOR * o.warmup;
  const max = Math.max(min, WARMUP_MAX_FACTOR * o.warmup, 2 * step);
  const seen: number[] = [];
  const close = (a: number, b: number) => b > 0 && Math.abs(a - b) <= WARMUP_STABLE * b;
  for (let seconds = step; ; seconds += step) {
    const spec = { ...plan(o, 'closed', undefined, workload), connections, warmupMs: 0, durationMs: step * 1000 };
    const r = await driver.run({ ...spec, host: target.host, port: target.port });
    seen.push(r.throughput);
    log(`warm-up ${seconds} s: ${Math.round(r.throughput).toLocaleString('en-US')} req/s`);
    const [a, b, c] = seen.slice(-3);
    const flat = c !== undefined && close(c, b!) && close(b!, a!);
    if ((flat && seconds >= min) || seconds >= max) return { seconds, flat };
  }
}

/** Whole-phase warm-ups of one server until two in a row are within 5% (at most 8). */
export async function warmWholePhases(
  driver: LoadDriverProcess,
  target: MeasureTarget,
  o: BenchOptions,
  log: (m: string) => void,
): Promise<{ seconds: number; flat: boolean }> {
  const seconds = o.warmup + o.duration;
  let last = 0;
  for (let i = 1; i <= 8; i++) {
    const r = await driver.run({ ...plan(o, 'closed'), warmupMs: 0, durationMs: seconds * 1000, host: target.host, port: target.port });
    log(`warm-up ${i} (${seconds} s): ${Math.round(r.throughput).toLocaleString('en-US')} req/s`);
    if (last > 0 && Math.abs(r.throughput - last) <= 0.05 * last) return { seconds: i * seconds, flat: true };
    last = r.throughput;
  }
  return { seconds: 8 * seconds, flat: false };
}
