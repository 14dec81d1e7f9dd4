// Flags of `ladder bench`: defaults in one commented table, checked once with messages that
// name the flag and the fix, then frozen.
import { parseArgs } from 'node:util';
import { ConfigError } from '../kit/errors.ts';
import { MAX_LINKS } from './bench-links.ts';

export interface BenchOptions {
  links: number;
  /** Measured seconds per phase. */
  duration: number;
  /** Seconds of load before each measured phase, not counted (JIT, pools, caches). */
  warmup: number;
  connections: number;
  /** Fixed arrival rate in req/s; undefined: half the measured saturation throughput. */
  rate: number | undefined;
  rounds: number;
  /** Zipf exponent of link popularity. */
  zipf: number;
  seed: number;
  /** Print the JSON report instead of the table. */
  json: boolean;
}

/** The defaults, in one commented table. */
export const BENCH_DEFAULTS = {
  links: 100_000, // the size the memory target is stated for
  duration: 10, // long enough for GC and the click flush (every 1 s) to show in the tail
  warmup: 3,
  connections: 32, // several per server core, like a busy balancer's pool
  rounds: 3, // saturation rounds alternate between servers; medians are reported
  zipf: 1.0,
  seed: 1,
} as const;

/** --quick: a short run to try things out; its figures are rough. */
export const QUICK = { links: 10_000, duration: 3, warmup: 1, rounds: 1 } as const;

function num(raw: string | undefined, flag: string, fallback: number, min: number, max: number, integer: boolean): number {
  if (raw === undefined) return fallback;
  const n = Number(raw.replace(/_/g, ''));
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new ConfigError(`--${flag}`, `"${raw}" is not ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`, `pass --${flag} within that range`);
  }
  return n;
}

export function parseBenchOptions(argv: string[]): Readonly<BenchOptions> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        links: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        connections: { type: 'string' },
        rate: { type: 'string' },
        rounds: { type: 'string' },
        zipf: { type: 'string' },
        seed: { type: 'string' },
        quick: { type: 'boolean' },
        json: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new ConfigError('flags', (err as Error).message, 'see `ladder bench --help` for the flags');
  }
  const v = parsed.values;
  const base = v.quick ? { ...BENCH_DEFAULTS, ...QUICK } : BENCH_DEFAULTS;
  return Object.freeze({
    links: num(v.links, 'links', base.links, 100, MAX_LINKS, true),
    duration: num(v.duration, 'duration', base.duration, 0.5, 600, false),
    warmup: num(v.warmup, 'warmup', base.warmup, 0, 120, false),
    connections: num(v.connections, 'connections', base.connections, 1, 1024, true),
    rate: v.rate === undefined ? undefined : num(v.rate, 'rate', 0, 1, 1_000_000, false),
    rounds: num(v.rounds, 'rounds', base.rounds, 1, 20, true),
    zipf: num(v.zipf, 'zipf', base.zipf, 0, 3, false),
    seed: num(v.seed, 'seed', base.seed, 0, 2 ** 32 - 1, true),
    json: v.json ?? false,
  });
}

/** The flags that reproduce a run, for the report. */
export function commandLine(scenario: string, o: BenchOptions): string {
  const rate = o.rate === undefined ? '' : ` --rate ${o.rate}`;
  return (
    `ladder bench ${scenario} --links ${o.links} --duration ${o.duration} --warmup ${o.warmup} ` +
    `--connections ${o.connections}${rate} --rounds ${o.rounds} --zipf ${o.zipf} --seed ${o.seed}`
  );
}
