// The report of one bench run: what ran, on what machine, every measurement, the ratios and
// whether each target was met. Written as JSON to bench/results/<scenario>-<time>.json and
// to <scenario>-latest.json (a stable name for docs and scripts).
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BenchOptions } from '../options/bench-options.ts';
import type { PinningPlan } from '../machine/cpu-pinning.ts';
import type { MachineInfo } from '../machine/machine-info.ts';
import type { Measurement, Medians } from '../measure/measurement.ts';
import type { MemoryUse } from '../machine/proc-stats.ts';

export interface Target {
  name: string;
  value: number;
  comparison: '>=' | '<' | '<=' | '==';
  threshold: number;
  unit: string;
  pass: boolean;
}

export function target(name: string, value: number, comparison: Target['comparison'], threshold: number, unit = ''): Target {
  const pass =
    comparison === '>=' ? value >= threshold : comparison === '<' ? value < threshold : comparison === '<=' ? value <= threshold : value === threshold;
  return { name, value, comparison, threshold, unit, pass };
}

/** A topology launched with `ladder up` for the run. */
export interface TopologyReport {
  /** The `ladder up` command the run used. */
  command: string;
  rung: number;
  entry: string | null;
  /** Cores each web server was to be capped at; null: uncapped by request. */
  cpu: number | null;
  /** Whether the caps were applied (the cgroup cpu controller was writable). */
  capped: boolean;
  nodes: { name: string; role: string; pid: number | null; cpu?: number }[];
  /** What the launcher said (rungs it ran without, caps it could not apply). */
  launcherNotes: string[];
}

export interface BenchReport {
  scenario: string;
  /** The command that reproduces this run. */
  command: string;
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo & { loadAverageAtEnd: number[] };
  pinning: PinningPlan;
  parameters: BenchOptions & { poolSize: number; zipfTop1PercentShare: number };
  databases: { engine: string; version: string; pid: number | undefined }[];
  servers: { name: string; label: string; pid: number }[];
  saturation: { measurements: Measurement[]; medians: Medians[] };
  fixedRate: { rate: number; rateSource: string; measurements: Measurement[] };
  /** Resident memory of the servers' node processes after the run (MiB). */
  memory: Record<string, MemoryUse>;
  ratios: Record<string, number>;
  /** Other figures the scenario reports, with their unit in the name. */
  figures?: Record<string, number>;
  /** Scenarios against a launched topology: what ran. */
  topology?: TopologyReport;
  /** Scenarios with several topologies side by side (replicas): each of them; `topology` is the one under test. */
  topologies?: TopologyReport[];
  targets: Target[];
  notes: string[];
  pass: boolean;
  /** Scenarios that follow a run second by second (autoscale): one row per second. */
  timeSeries?: TimeSeriesRow[];
}

/** One second of a run: what served, what was sent, how fast it was answered. */
export interface TimeSeriesRow {
  /** Seconds from the start of the load. */
  t: number;
  /** Web servers serving (in HAProxy's rotation) at the end of the second. */
  servers: number;
  /** Arrival rate asked, req/s. */
  rate: number;
  sent: number;
  ok: number;
  failed: number;
  /** Latency from when each request was due, ms. */
  p50: number;
  p99: number;
}

/** Writes the report; returns the timestamped file's path. */
export function writeReport(report: BenchReport, resultsDir: string): string {
  mkdirSync(resultsDir, { recursive: true });
  const stamp = report.startedAt.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
  const file = path.join(resultsDir, `${report.scenario}-${stamp}.json`);
  const text = JSON.stringify(report, null, 2) + '\n';
  writeFileSync(file, text);
  // Via a temporary file and a rename, so a reader never sees half a "latest" report.
  const latest = path.join(resultsDir, `${report.scenario}-latest.json`);
  writeFileSync(`${latest}.tmp`, text);
  renameSync(`${latest}.tmp`, latest);
  return file;
}
