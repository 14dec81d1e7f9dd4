// What every scenario shares. A scenario is declared once (its name, a one-line summary, the
// flags it reads and its run function) and listed in registry.ts. Each run gets a
// ScenarioContext: the session, the flags, the machine as it was at the start, and the
// steps every scenario repeats (planning the CPU pinning, a seeded bench database, the
// servers' memory, the fixed rate). The context also assembles the report from the parts
// only the scenario knows, so the header (scenario, command, times, machine, parameters)
// and the verdict are written in one place and read the same in every report.
import type { PinningPlan } from '../machine/cpu-pinning.ts';
import { planPinning } from '../machine/cpu-pinning.ts';
import type { BenchSession } from '../machine/bench-session.ts';
import { machineInfo, type MachineInfo } from '../machine/machine-info.ts';
import { memoryUse, type MemoryUse, servingPid } from '../machine/proc-stats.ts';
import { ZipfSampler } from '../driver/zipf.ts';
import type { Measurement } from '../measure/measurement.ts';
import { measurementNotes } from '../measure/phases.ts';
import { favour, priorityNote } from '../machine/priority.ts';
import type { BenchOptions, ScenarioFlag } from '../options/bench-options.ts';
import { commandLine } from '../options/bench-options.ts';
import type { BenchReport, TopologyReport } from '../report/bench-report.ts';
import { startBenchDatabase, type BenchDatabase, type Engine } from '../targets/bench-database.ts';
import type { ServerUnderTest } from '../targets/bench-servers.ts';
import type { TopologyRun } from '../targets/topology-run.ts';
import { describeTopology, webMemory } from '../targets/topology-run.ts';

/** A flag a scenario reads beyond the phase flags, and its own default for it. */
export interface ScenarioOption {
  flag: ScenarioFlag;
  /** This scenario's default, as `--help` shows it; absent: the flag's own. */
  default?: string;
}

export interface Scenario {
  /** As typed after `ladder bench`. */
  name: string;
  /** One line for `ladder bench --help`. */
  summary: string;
  options: readonly ScenarioOption[];
  run: (ctx: ScenarioContext) => Promise<BenchReport>;
}

/** What a scenario's report holds that only the scenario knows; ScenarioContext.report adds the rest. */
export interface ReportParts {
  /** The report's name when it is not the scenario's (see redirect-rung.ts). */
  name?: string;
  /** Flags the scenario resolved to its own defaults (e.g. rung, cpu), for the command and the parameters. */
  resolved?: Partial<BenchOptions>;
  /** The app's pool size per web server, reported with the parameters. */
  poolSize: number;
  /** Default: what the Zipf sampler gives the top 1% of links. */
  zipfTop1PercentShare?: number;
  pinning: PinningPlan;
  databases: BenchReport['databases'];
  servers: BenchReport['servers'];
  saturation: BenchReport['saturation'];
  fixedRate: BenchReport['fixedRate'];
  memory: BenchReport['memory'];
  ratios: BenchReport['ratios'];
  figures?: BenchReport['figures'];
  topology?: BenchReport['topology'];
  topologies?: BenchReport['topologies'];
  targets: BenchReport['targets'];
  notes: string[];
  timeSeries?: BenchReport['timeSeries'];
}

export class ScenarioContext {
  readonly startedAt = new Date().toISOString();
  /** The machine at the start; its load average is the baseline of the notes. */
  readonly machine: MachineInfo = machineInfo();
  readonly log: (msg: string) => void;

  constructor(
    readonly scenario: Scenario,
    readonly session: BenchSession,
    readonly o: Readonly<BenchOptions>,
  ) {
    this.log = session.log;
    // Before any server or driver starts: they are born in this session and inherit it.
    this.favoured = favour('self');
  }

  /** Whether the bench's processes run before the machine's other work (machine/priority.ts). */
  readonly favoured: boolean;

  /** The CPU plan of a scenario that runs its servers on this machine itself (no topology), logged. */
  planPinning(): PinningPlan {
    const pinning = planPinning();
    this.log(pinning.note);
    return pinning;
  }

  /** A Postgres of the run's own with the app's schema and --links links, pinned to `cpus`. */
  startDatabase(engine: Engine, cpus: string | undefined): Promise<BenchDatabase> {
    return startBenchDatabase(this.session, { engine, links: this.o.links, cpus });
  }

  /** The fixed arrival rate: --rate, else half of `throughput`, the median saturation throughput of `whose`. */
  fixedRatePlan(throughput: number, whose: string): { rate: number; rateSource: string } {
    return this.o.rate === undefined
      ? { rate: Math.max(1, Math.round(throughput / 2)), rateSource: `half ${whose} median saturation throughput` }
      : { rate: this.o.rate, rateSource: 'set with --rate' };
  }

  /** Notes on the measurements every report carries (load on the machine, stalls, errors). */
  measurementNotes(ms: Measurement[]): string[] {
    return [...measurementNotes(ms, this.machine.loadAverage), priorityNote(this.favoured)];
  }

  /** The report: the header and the verdict around the scenario's parts. */
  report(parts: ReportParts): BenchReport {
    const { name, resolved, poolSize, zipfTop1PercentShare, ...p } = parts;
    const o = { ...this.o, ...resolved };
    // In the order the reports have always had; an absent optional part stays out of the JSON.
    return {
      scenario: name ?? this.scenario.name,
      command: commandLine(this.scenario.name, o, this.scenario.options.map((x) => x.flag)),
      startedAt: this.startedAt,
      finishedAt: new Date().toISOString(),
      machine: { ...this.machine, loadAverageAtEnd: machineInfo().loadAverage },
      pinning: p.pinning,
      parameters: { ...o, poolSize, zipfTop1PercentShare: zipfTop1PercentShare ?? new ZipfSampler(o.links, o.zipf).share(o.links / 100) },
      databases: p.databases,
      servers: p.servers,
      saturation: p.saturation,
      fixedRate: p.fixedRate,
      memory: p.memory,
      ratios: p.ratios,
      figures: p.figures,
      topology: p.topology,
      topologies: p.topologies,
      targets: p.targets,
      notes: p.notes,
      pass: p.targets.every((t) => t.pass),
      ...(p.timeSeries ? { timeSeries: p.timeSeries } : {}),
    };
  }
}

/** Resident memory of each server after the run, by name. */
export function serverMemory(servers: ServerUnderTest[]): Record<string, MemoryUse> {
  const memory: Record<string, MemoryUse> = {};
  for (const s of servers) {
    const m = memoryUse(servingPid(s.proc.pid));
    if (m) memory[s.name] = m;
  }
  return memory;
}

/** The report's rows for servers this run started itself. */
export function serverRows(servers: ServerUnderTest[]): BenchReport['servers'] {
  return servers.map((s) => ({ name: s.name, label: s.label, pid: s.proc.pid }));
}

/** The report's row for a bench database. */
export function databaseRow(db: BenchDatabase): BenchReport['databases'][number] {
  return { engine: db.engine, version: db.version, pid: db.server.pid };
}

/** Requests that failed or were answered with another status than expected (unsent ones too, if asked). */
export function requestErrors(ms: Measurement[], { unsent = false }: { unsent?: boolean } = {}): number {
  return ms.reduce((n, m) => n + m.non302 + m.failed + (unsent ? (m.unsent ?? 0) : 0), 0);
}

/**
 * The parts of a report on one launched topology: its pinning (for saturation, then what the
 * fixed rate moved), its Postgres, its web servers' memory, what ran, and the notes on it.
 */
export function topologyParts(
  run: TopologyRun,
  fixedPinningNote: string,
): Pick<ReportParts, 'pinning' | 'databases' | 'memory'> & { topology: TopologyReport; notes: string[] } {
  const { report: topology, notes } = describeTopology(run);
  return {
    pinning: { ...run.pinning, note: `${run.pinning.note.split('. Fixed rate')[0]}. ${fixedPinningNote}` },
    databases: [{ engine: `topology's Postgres (rung ${run.up.rung})`, version: run.postgresVersion, pid: run.topology.nodes('postgres')[0]?.pid ?? undefined }],
    memory: webMemory(run.topology),
    topology,
    notes,
  };
}
