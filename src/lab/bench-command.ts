// `ladder bench SCENARIO [flags]`: runs a load scenario, prints the report and saves it
// under bench/results/. Exit status: 0 when every target is met, 2 when the run completed
// but a target was missed, 1 when the run itself failed. The scenarios, their summaries and
// the flags each reads come from the registry (scenarios/registry.ts).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, LadderFailure, failureCode } from '../kit/errors.ts';
import { withBenchSession } from './machine/bench-session.ts';
import { BENCH_DEFAULTS, parseBenchOptions, QUICK, SCENARIO_FLAGS, type BenchOptions, type ScenarioFlag } from './options/bench-options.ts';
import { writeReport, type BenchReport } from './report/bench-report.ts';
import { formatReport } from './report/report-table.ts';
import { findScenario, SCENARIOS } from './scenarios/registry.ts';
import { ScenarioContext, type Scenario } from './scenarios/scaffold.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const flagLine = (flag: string, arg: string, about: string) => `  ${`${flag} ${arg}`.padEnd(17)} ${about}`;

/** A scenario flag's line: what it does, then which scenarios read it, with their defaults. */
function scenarioFlagLine(flag: ScenarioFlag): string {
  const readers = SCENARIOS.flatMap((s) => s.options.filter((x) => x.flag === flag).map((x) => (x.default === undefined ? s.name : `${s.name} [${x.default}]`)));
  return flagLine(flag, SCENARIO_FLAGS[flag].arg, `${SCENARIO_FLAGS[flag].about} (${readers.join('; ')})`);
}

/** The one-line list of the scenarios, for `ladder --help` too. */
export function scenarioList(indent = '  '): string {
  return SCENARIOS.map((s) => `${indent}${s.name.padEnd(10)} ${s.summary}`).join('\n');
}

function help(): string {
  return `ladder bench SCENARIO [flags]: run a load scenario, print and save the report

scenarios:
${scenarioList()}

flags of every scenario (defaults in brackets):
  --links N         links seeded [${BENCH_DEFAULTS.links}]
  --duration S      measured seconds per phase [${BENCH_DEFAULTS.duration}]
  --warmup S        unmeasured seconds before each phase [${BENCH_DEFAULTS.warmup}]
  --connections C   keep-alive connections of the driver [${BENCH_DEFAULTS.connections}]; scaling: per web server in rotation
  --rate R          fixed arrival rate, req/s [half the measured saturation throughput]
  --rounds K        saturation rounds, alternating servers; medians reported [${BENCH_DEFAULTS.rounds}]
  --zipf S          Zipf exponent of link popularity [${BENCH_DEFAULTS.zipf}]
  --seed N          seed of the request sequence [${BENCH_DEFAULTS.seed}]
  --quick           ${QUICK.links} links, ${QUICK.duration} s phases, ${QUICK.warmup} s warm-up, ${QUICK.rounds} round (rough figures)
  --json            print the JSON report instead of the table

flags of some scenarios (which, and their defaults there):
${(Object.keys(SCENARIO_FLAGS) as ScenarioFlag[]).map(scenarioFlagLine).join('\n')}

\`ladder bench SCENARIO --help\` shows one scenario's flags.
The report is saved to bench/results/SCENARIO-<time>.json and SCENARIO-latest.json.
Exit status: 0 all targets met, 2 a target missed, 1 the run failed.
`;
}

function scenarioHelp(s: Scenario): string {
  const own = s.options.map((x) => flagLine(x.flag, SCENARIO_FLAGS[x.flag].arg, `${SCENARIO_FLAGS[x.flag].about}${x.default === undefined ? '' : `; here [${x.default}]`}`));
  return `ladder bench ${s.name} [flags]: ${s.summary}

${own.length > 0 ? `its own flags:\n${own.join('\n')}` : 'no flags of its own'}

and the flags of every scenario (\`ladder bench --help\`).
`;
}

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
  const s = findScenario(scenario);
  if (!s) throw new ConfigError('scenario', `"${scenario}" is not a scenario`, `use one of: ${SCENARIOS.map((x) => x.name).join(', ')}`);
  const log = opts.log ?? ((m: string) => process.stderr.write(`ladder bench: ${m}\n`));
  let report: BenchReport;
  try {
    report = await withBenchSession({ dir: opts.stateDir ?? path.join(ROOT, '.ladder', 'bench'), log }, (session) =>
      s.run(new ScenarioContext(s, session, options)),
    );
  } catch (cause) {
    // A failure that already has its catalogue code (a flag, a missing binary) keeps it.
    if (failureCode(cause)) throw cause;
    throw new LadderFailure('BENCH_FAILED', `${scenario}: ${(cause as Error).message ?? String(cause)}`, { cause });
  }
  const file = writeReport(report, opts.resultsDir ?? path.join(ROOT, 'bench', 'results'));
  return { report, file };
}

const isHelp = (arg: string | undefined) => arg === '--help' || arg === '-h' || arg === 'help';

export async function benchCommand(argv: string[]): Promise<number> {
  const [scenario, ...flags] = argv;
  if (scenario === undefined || isHelp(scenario)) {
    process.stdout.write(help());
    return scenario === undefined ? 1 : 0;
  }
  const s = findScenario(scenario);
  if (!s) {
    process.stderr.write(`ladder: unknown bench scenario "${scenario}"\n\n${help()}`);
    return 1;
  }
  if (flags.some((f) => f === '--help' || f === '-h')) {
    process.stdout.write(scenarioHelp(s));
    return 0;
  }
  const options = parseBenchOptions(flags);
  const { report, file } = await runBench(scenario, options);
  process.stdout.write(options.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
  process.stderr.write(`ladder bench: report saved to ${path.relative(process.cwd(), file)}\n`);
  return report.pass ? 0 : 2;
}
