// Scenario `redirect --rung N [--web K] [--cpu C]`: GET /:code against a topology that
// `ladder up` launched, driven at its entry (HAProxy from rung 3, else the first web
// server): saturation rounds and a fixed arrival rate, with the CPU of every component.
// There is no reference here: the figure to compare with is another rung's run of the same
// command (or the rung 1 scenario, without --rung).
// Also the primary's share of plain reads over the measured phases (ladder_db_reads_total of
// every web server, before the first phase and after the last), with a target from rung 4
// (or --replicas R >= 1): the replicas take the reads. The click counter's flushes are
// transactions on the primary, not reads, and are not in it.
import { mediansOf } from '../measure/measurement.ts';
import { fixedRate, saturationRounds } from '../measure/phases.ts';
import { warmUp } from '../measure/warm-up.ts';
import { target, type BenchReport } from '../report/bench-report.ts';
import {
  checkRedirects,
  fixedRateNotes,
  healthCheckNotes,
  pinForFixedRate,
  primaryShare,
  readsBetween,
  seedRedirectLinks,
  startTopologyRun,
  upFlags,
} from '../targets/topology-run.ts';
import { requestErrors, topologyParts, type ScenarioContext } from './scaffold.ts';

/** The app's pool size per web server (PgDatabase's default). */
const POOL_SIZE = 10;
/** Rung 4's target: with replicas, the primary serves at most this share of plain reads. */
export const MAX_PRIMARY_SHARE = 0.1;

export async function redirectRung(ctx: ScenarioContext): Promise<BenchReport> {
  const { o, session, log } = ctx;
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
  const fixedPlan = ctx.fixedRatePlan(m.throughput, 'the');
  const fixedPinning = pinForFixedRate(topology, m, fixedPlan.rate);
  log(fixedPinning.note);
  const fixed = await fixedRate(driver, [entry], o, fixedPlan.rate, log);

  const reads = readsBetween(readsBefore, await topology.databaseReads());
  const share = primaryShare(reads);
  const replicaNodes = topology.nodes('postgres-replica').length;
  log(`plain reads over the measured phases: ${reads.primary} on the primary, ${reads.replica} on replicas (primary share ${(share * 100).toFixed(1)}%)`);
  const downs = (await topology.healthCheckDowns()) - downsBefore;
  const parts = topologyParts(run, fixedPinning.note);
  const topo = parts.topology;
  const errors = requestErrors([...saturation, ...fixed]);
  const targets = [target('failed or non-302 requests', errors, '==', 0)];
  if (replicaNodes > 0) targets.unshift(target('primary share of reads, %', share * 100, '<=', MAX_PRIMARY_SHARE * 100));
  const entryNode = topology.status().nodes.find((n) => n.url.replace(/\/$/, '') === topology.entry.href.replace(/\/$/, ''));
  const webs = topology.webs();
  return ctx.report({
    // Its own name, so that its reports do not replace rung 1's redirect-latest.json.
    name: `redirect-rung${up.rung}`,
    resolved: { rung: up.rung },
    poolSize: POOL_SIZE,
    pinning: parts.pinning,
    databases: parts.databases,
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
    fixedRate: { ...fixedPlan, measurements: fixed },
    memory: parts.memory,
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
    notes: [...parts.notes, ...ctx.measurementNotes([...saturation, ...fixed]), ...fixedRateNotes(fixed, run.pinning, fixedPinning.moved), ...healthCheckNotes(downs, 'the run')],
  });
}
