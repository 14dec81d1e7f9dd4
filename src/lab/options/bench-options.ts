// Flags of `ladder bench`: defaults in one commented table, checked once with messages that
// name the flag and the fix, then frozen.
import { parseArgs } from 'node:util';
import { ConfigError } from '../../kit/errors.ts';
import { MAX_LINKS } from '../dataset/bench-links.ts';

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
  /** Run against a topology that `ladder up --rung N` launches; undefined: the scenario's
   *  default (redirect: none, rung 1 in-process against the references). */
  rung: number | undefined;
  /** Web servers of the topology (`ladder up --web K`); undefined: the rung's default. */
  web: number | undefined;
  /** Cores each web server is capped at (`ladder up --cpu C`); undefined: the scenario's default. */
  cpu: number | undefined;
  /** session: logged-in users, each signed up through /api/signup before the run. */
  users: number;
  /** scaling: the numbers of web servers compared, in the order each round runs them. */
  sizes: number[];
  /** Streaming replicas (`ladder up --replicas R`); undefined: the scenario's default (replicas: 2). */
  replicas: number | undefined;
  /** Cores each database node is capped at (`ladder up --db-cpu C`); undefined: the scenario's
   *  default (replicas: 0.15, else uncapped). */
  dbCpu: number | undefined;
  /** autoscale: seconds between the autoscaler's decisions (`ladder up --autoscale-sync S`). */
  sync: number;
  /** autoscale: its scale-in stabilization window, seconds (`ladder up --scale-in-window S`). */
  window: number;
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
  users: 100, // enough that sessions do not all sit in one hot Redis key or cache line
  sizes: [1, 2, 4], // 4 x 0.2 core and the rest still fit on two cores (docs/performance.md)
  sync: 5, // autoscale: a third of the HPA's 15 s, so that a step is seen within the 15 s target
  window: 60, // autoscale: a fifth of the HPA's 300 s, to keep a run to a few minutes
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
        rung: { type: 'string' },
        web: { type: 'string' },
        cpu: { type: 'string' },
        users: { type: 'string' },
        sizes: { type: 'string' },
        replicas: { type: 'string' },
        'db-cpu': { type: 'string' },
        sync: { type: 'string' },
        window: { type: 'string' },
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
    rung: rungFlag(v.rung),
    web: v.web === undefined ? undefined : num(v.web, 'web', 0, 1, MAX_WEB_SERVERS, true),
    cpu: v.cpu === undefined ? undefined : num(v.cpu, 'cpu', 0, 0.01, 64, false),
    users: num(v.users, 'users', base.users, 1, 10_000, true),
    sizes: sizesFlag(v.sizes),
    // MAX_REPLICAS of src/topology/topology.ts; the launcher checks again.
    replicas: v.replicas === undefined ? undefined : num(v.replicas, 'replicas', 0, 0, 8, true),
    dbCpu: v['db-cpu'] === undefined ? undefined : num(v['db-cpu'], 'db-cpu', 0, 0.01, 64, false),
    sync: num(v.sync, 'sync', BENCH_DEFAULTS.sync, 0.5, 600, false),
    window: num(v.window, 'window', BENCH_DEFAULTS.window, 0, 3600, false),
  });
}

/** HAProxy's server slots in the launcher (MAX_WEB in src/launcher/supervisor.ts). */
const MAX_WEB_SERVERS = 16;

function rungFlag(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (raw.trim() === '1') {
    throw new ConfigError('--rung', 'rung 1 is what the scenario runs without --rung', 'leave out --rung, or pass 2 or more for a launched topology');
  }
  return num(raw, 'rung', 0, 2, 10, true);
}

function sizesFlag(raw: string | undefined): number[] {
  if (raw === undefined) return [...BENCH_DEFAULTS.sizes];
  const parts = raw.split(',');
  const sizes = parts.map((p) => Number(p.trim()));
  if (parts.length > 8 || sizes.some((n) => !Number.isInteger(n) || n < 1 || n > MAX_WEB_SERVERS) || new Set(sizes).size !== sizes.length) {
    throw new ConfigError('--sizes', `"${raw}" is not a list of distinct whole numbers from 1 to ${MAX_WEB_SERVERS}`, 'pass e.g. --sizes 1,2,4');
  }
  return sizes;
}

/**
 * The flags that only some scenarios read (the others are the phase flags every scenario
 * reads). A scenario declares which of these it reads, with its own default when it has one
 * (scenarios/registry.ts); `ladder bench --help` lists them from those declarations.
 */
export const SCENARIO_FLAGS = {
  '--rung': { arg: 'N', about: 'run against a topology launched with `ladder up --rung N`' },
  '--web': { arg: 'K', about: "web servers of that topology [the rung's default]" },
  '--cpu': { arg: 'C', about: 'cap each web server at C cores (cgroup cpu controller) [uncapped]' },
  '--users': { arg: 'N', about: `logged-in users signed up before the run [${BENCH_DEFAULTS.users}]` },
  '--sizes': { arg: 'A,B,...', about: `numbers of web servers compared [${BENCH_DEFAULTS.sizes.join(',')}]` },
  '--replicas': { arg: 'R', about: "streaming replicas of the topology (`ladder up --replicas R`) [the rung's]" },
  '--db-cpu': { arg: 'C', about: 'cap every database node at C cores (`ladder up --db-cpu C`) [uncapped]' },
  '--sync': { arg: 'S', about: `seconds between autoscaler decisions (\`ladder up --autoscale-sync S\`) [${BENCH_DEFAULTS.sync}]` },
  '--window': { arg: 'S', about: `the autoscaler's scale-in stabilization window, seconds [${BENCH_DEFAULTS.window}]` },
} as const;

export type ScenarioFlag = keyof typeof SCENARIO_FLAGS;

/**
 * The flags that reproduce a run, for the report. The topology flags appear when set; the
 * flags with a default of their own (--users, --sizes) when the scenario reads them (`own`).
 */
export function commandLine(scenario: string, o: BenchOptions, own: readonly ScenarioFlag[] = []): string {
  const rate = o.rate === undefined ? '' : ` --rate ${o.rate}`;
  const topology = [
    o.rung === undefined ? '' : ` --rung ${o.rung}`,
    o.web === undefined ? '' : ` --web ${o.web}`,
    o.cpu === undefined ? '' : ` --cpu ${o.cpu}`,
    o.replicas === undefined ? '' : ` --replicas ${o.replicas}`,
    o.dbCpu === undefined ? '' : ` --db-cpu ${o.dbCpu}`,
    own.includes('--users') ? ` --users ${o.users}` : '',
    own.includes('--sizes') ? ` --sizes ${o.sizes.join(',')}` : '',
    own.includes('--sync') ? ` --sync ${o.sync}` : '',
    own.includes('--window') ? ` --window ${o.window}` : '',
  ].join('');
  return (
    `ladder bench ${scenario}${topology} --links ${o.links} --duration ${o.duration} --warmup ${o.warmup} ` +
    `--connections ${o.connections}${rate} --rounds ${o.rounds} --zipf ${o.zipf} --seed ${o.seed}`
  );
}
