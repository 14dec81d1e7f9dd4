// Scenario `redirect --rung N [--web K] [--cpu C]`: GET /:code against a topology that
// `ladder up` launched, driven at its entry (HAProxy from rung 3, else the first web
// server): saturation rounds and a fixed arrival rate, with the CPU of every component.
// There is no reference here: the figure to compare with is another rung's run of the same
// command (or the rung 1 scenario, without --rung).
// Also the primary's share of plain reads over the measured phases (ladder_db_reads_total of
// every web server, before the first phase and after the last), with a target from rung 4
// (or --replicas R >= 1): the replicas take the reads. The click counter's flushes are
// transactions on the primary, not reads, and are not in it.
import type { BenchOptions } from '../options/bench-options.ts';
import { commandLine } from '../options/bench-options.ts';
import type { BenchReport } from '../report/bench-report.ts';
import { target } from '../report/bench-report.ts';
import type { BenchSession } from '../machine/bench-session.ts';
import { machineInfo } from '../machine/machine-info.ts';
import { mediansOf } from '../measure/measurement.ts';
import { fixedRate, measurementNotes, saturationRounds } from '../measure/phases.ts';
import { checkRedirects, describeTopology, fixedRateNotes, healthCheckNotes, pinForFixedRate, primaryShare, readsBetween, warmUp, seedRedirectLinks, startTopologyRun, upFlags, webMemory } from '../targets/topology-run.ts';
import { ZipfSampler } from '../driver/zipf.ts';

/** The app's pool size per web server (PgDatabase's default). */
const POOL_SIZE = 10;
/** Rung 4's target: with replicas, the primary serves at most this share of plain reads. */
export const MAX_PRIMARY_SHARE = 0.1;

export async function topologyRedirectScenario(session: BenchSession, o: BenchOptions): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const log = session.log;
  const up = upFlags(o, { rung: o.rung ?? 2 });
  const run = await startTopologyRun(session, up, seedRedirectLinks(session, o.links));
  const { topology, driver } = run;
  await checkRedirects(topology, o.links);

  const name = `rung${up.rung}`;
  const entry = topology.target(name);
  log('warming up the web servers until their throughput is flat…');
  const warmup = await warmUp(driver, entry, o, log);
  const downsBefore = await topology.healthCheckDowns();
  const readsBefore = await topology.databaseReads();
  const saturation = await saturationRounds(driver, [entry], o, log);
  const m = mediansOf(saturation, name);
  const rate = o.rate ?? Math.max(1, Math.round(m.throughput / 2));
  const fixedPinning = pinForFixedRate(topology, m, rate);
  log(fixedPinning.note);
  const fixed = await fixedRate(driver, [entry], o, rate, log);

  const reads = readsBetween(readsBefore, await topology.databaseReads());
  const share = primaryShare(reads);
  const replicaNodes = topology.nodes('postgres-replica').length;
  log(`plain reads over the measured phases: ${reads.primary} on the primary, ${reads.replica} on replicas (primary share ${(share * 100).toFixed(1)}%)`);
  const downs = (await topology.healthCheckDowns()) - downsBefore;
  const { report: topo, notes: topoNotes } = describeTopology(run);
  const errors = [...saturation, ...fixed].reduce((n, x) => n + x.non302 + x.failed, 0);
  const targets = [target('failed or non-302 requests', errors, '==', 0)];
  if (replicaNodes > 0) targets.unshift(target('primary share of reads, %', share * 100, '<=', MAX_PRIMARY_SHARE * 100));
  const entryNode = topology.status().nodes.find((n) => n.url.replace(/\/$/, '') === topology.entry.href.replace(/\/$/, ''));
  const webs = topology.webs();
  return {
    // Its own name, so that its reports do not replace rung 1's redirect-latest.json.
    scenario: `redirect-rung${up.rung}`,
    command: commandLine('redirect', { ...o, rung: up.rung }),
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: { ...machine, loadAverageAtEnd: machineInfo().loadAverage },
    pinning: { ...run.pinning, note: `${run.pinning.note.split('. Fixed rate')[0]}. ${fixedPinning.note}` },
    parameters: { ...o, rung: up.rung, poolSize: POOL_SIZE, zipfTop1PercentShare: new ZipfSampler(o.links, o.zipf).share(o.links / 100) },
    databases: [{ engine: `topology's Postgres (rung ${up.rung})`, version: run.postgresVersion, pid: topology.nodes('postgres')[0]?.pid ?? undefined }],
    servers: [
      {
        name,
        label:
          `${topo.command}: ${webs.length} web server(s)${up.cpu !== undefined ? ` at ${up.cpu} core${topo.capped ? '' : ' (NOT capped)'}` : ''}, ` +
          `driven at ${entryNode?.name ?? 'the entry'} ${topo.entry ?? ''}`,
        pid: entryNode?.pid ?? 0,
      },
    ],
    saturation: { measurements: saturation, medians: [m] },
    fixedRate: { rate, rateSource: o.rate === undefined ? 'half the median saturation throughput' : 'set with --rate', measurements: fixed },
    memory: webMemory(topology),
    ratios: {},
    figures: {
      'initial warm-up, s': warmup.seconds,
      'reads served by the primary': reads.primary,
      'reads served by replicas': reads.replica,
      'primary share of reads, %': share * 100,
      ...(topology.nodes('haproxy').length > 0 ? { 'web servers taken out of rotation by a failed health check': downs } : {}),
    },
    topology: topo,
    targets,
    notes: [...topoNotes, ...measurementNotes([...saturation, ...fixed], machine.loadAverage), ...fixedRateNotes(fixed, run.pinning, fixedPinning.moved), ...healthCheckNotes(downs, 'the run')],
    pass: targets.every((t) => t.pass),
  };
}
