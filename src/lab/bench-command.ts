// `ladder bench SCENARIO [flags]`: runs a load scenario, prints the report and saves it
// under bench/results/. Exit status: 0 when every target is met, 2 when the run completed
// but a target was missed, 1 when the run itself failed.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../kit/errors.ts';
import { BENCH_DEFAULTS, parseBenchOptions, QUICK, type BenchOptions } from './options/bench-options.ts';
import type { BenchReport } from './report/bench-report.ts';
import { writeReport } from './report/bench-report.ts';
import { withBenchSession, type BenchSession } from './machine/bench-session.ts';
import { cacheScenario } from './scenarios/cache.ts';
import { enginesScenario } from './scenarios/engines.ts';
import { redirectScenario } from './scenarios/redirect.ts';
import { DEFAULT_DB_CPU, DEFAULT_REPLICAS, replicasScenario } from './scenarios/replicas.ts';
import { formatReport } from './report/report-table.ts';
import { scalingScenario } from './scenarios/scaling.ts';
import { sessionScenario } from './scenarios/session.ts';
import { topologyRedirectScenario } from './scenarios/redirect-rung.ts';

export const SCENARIOS: Readonly<Record<string, { about: string; run: (s: BenchSession, o: BenchOptions) => Promise<BenchReport> }>> = {
  redirect: {
    about:
      'GET /:code on the Links app vs bare Fastify references (constant 302; same lookup via pg.Pool);\n' +
      '             with --rung N: against `ladder up --rung N [--web K] [--cpu C]`, at its entry',
    // Without --rung, rung 1 in-process against the references, as it always was.
    run: (session, o) => (o.rung === undefined ? redirectScenario(session, o) : topologyRedirectScenario(session, o)),
  },
  engines: {
    about: 'the lookup handler on the embedded Postgres vs the system PostgreSQL 15 vs PGlite',
    run: enginesScenario,
  },
  session: {
    about: 'logged-in users (--users) reading /api/me and /api/links with their cookie, on `ladder up` (rung 7 unless --rung)',
    run: sessionScenario,
  },
  cache: {
    about: 'rung 5: GET /:code on the app with its cache tier (L1 + Redis) vs the app without it vs a constant 302;\n' +
      '             database queries per redirect in steady state',
    run: cacheScenario,
  },
  scaling: {
    about: 'redirects with 1, 2, 4 web servers (--sizes) at 0.2 core (--cpu) behind HAProxy (rung 3 unless --rung),\n' +
      '             alternating over the rounds; ratio to 1 server; what HAProxy adds to p50',
    run: scalingScenario,
  },
  replicas: {
    about: 'redirects on rung 3 (primary alone) vs rung 4 (--replicas, 2) launched side by side, every database node\n' +
      '             at --db-cpu (0.15) core, alternating over the rounds; ratio rung 4 / rung 3; primary share of reads',
    run: replicasScenario,
  },
};

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const HELP = `ladder bench SCENARIO [flags]: run a load scenario, print and save the report

scenarios:
${Object.entries(SCENARIOS)
  .map(([name, s]) => `  ${name.padEnd(10)} ${s.about}`)
  .join('\n')}

flags (defaults in brackets):
  --links N         links seeded [${BENCH_DEFAULTS.links}]
  --duration S      measured seconds per phase [${BENCH_DEFAULTS.duration}]
  --warmup S        unmeasured seconds before each phase [${BENCH_DEFAULTS.warmup}]
  --connections C   keep-alive connections of the driver [${BENCH_DEFAULTS.connections}]; scaling: per web server in rotation
  --rate R          fixed arrival rate, req/s [half the measured saturation throughput]
  --rounds K        saturation rounds, alternating servers; medians reported [${BENCH_DEFAULTS.rounds}]
  --zipf S          Zipf exponent of link popularity [${BENCH_DEFAULTS.zipf}]
  --seed N          seed of the request sequence [${BENCH_DEFAULTS.seed}]
  --rung N          run against a topology launched with \`ladder up --rung N\` (redirect; session [7]; scaling [3])
  --web K           web servers of that topology [the rung's default]
  --cpu C           cap each web server at C cores (cgroup cpu controller) [uncapped; scaling: 0.2]
  --users N         session: users signed up before the run [${BENCH_DEFAULTS.users}]
  --sizes A,B,...   scaling: numbers of web servers compared [${BENCH_DEFAULTS.sizes.join(',')}]
  --replicas R      streaming replicas of the topology (\`ladder up --replicas R\`) [the rung's; replicas: ${DEFAULT_REPLICAS}]
  --db-cpu C        cap every database node at C cores (\`ladder up --db-cpu C\`) [uncapped; replicas: ${DEFAULT_DB_CPU}]
  --quick           ${QUICK.links} links, ${QUICK.duration} s phases, ${QUICK.warmup} s warm-up, ${QUICK.rounds} round (rough figures)
  --json            print the JSON report instead of the table

The report is saved to bench/results/SCENARIO-<time>.json and SCENARIO-latest.json.
Exit status: 0 all targets met, 2 a target missed, 1 the run failed.
`;

export interface RunBenchOptions {
  /** State folder (Postgres clusters, logs). Default .ladder/bench in the checkout. */
  stateDir?: string;
  /** Where reports go. Default bench/results in the checkout. */
  resultsDir?: string;
  log?: (msg: string) => void;
}

/** Runs a scenario and saves its report; the programmatic form of `ladder bench`. */
export async function runBench(
  scenario: string,
  options: BenchOptions,
  opts: RunBenchOptions = {},
): Promise<{ report: BenchReport; file: string }> {
  const s = SCENARIOS[scenario];
  if (!s) throw new ConfigError('scenario', `"${scenario}" is not a scenario`, `use one of: ${Object.keys(SCENARIOS).join(', ')}`);
  const log = opts.log ?? ((m: string) => process.stderr.write(`ladder bench: ${m}\n`));
  const report = await withBenchSession({ dir: opts.stateDir ?? path.join(ROOT, '.ladder', 'bench'), log }, (session) =>
    s.run(session, options),
  );
  const file = writeReport(report, opts.resultsDir ?? path.join(ROOT, 'bench', 'results'));
  return { report, file };
}

export async function benchCommand(argv: string[]): Promise<number> {
  const [scenario, ...flags] = argv;
  if (scenario === undefined || scenario === '--help' || scenario === '-h' || scenario === 'help') {
    process.stdout.write(HELP);
    return scenario === undefined ? 1 : 0;
  }
  if (!SCENARIOS[scenario]) {
    process.stderr.write(`ladder: unknown bench scenario "${scenario}"\n\n${HELP}`);
    return 1;
  }
  const options = parseBenchOptions(flags);
  const { report, file } = await runBench(scenario, options);
  process.stdout.write(options.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
  process.stderr.write(`ladder bench: report saved to ${path.relative(process.cwd(), file)}\n`);
  return report.pass ? 0 : 2;
}
