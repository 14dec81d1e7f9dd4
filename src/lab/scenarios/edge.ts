// Scenario `edge`: what the CDN edge (rung 6, Varnish) saves the origin, in one run against
// one launched topology (`ladder up --rung 6` unless --rung):
//  1. Origin requests per 1,000 anonymous page views, without the edge (the views go to
//     HAProxy, as at rung 5) and with it (the same views at the edge). A page view is what
//     a browser with an empty cache fetches: the page (/) and the three assets it links.
//     Counted at the web servers (http_request_duration_seconds_count of every route but
//     the health checks and /metrics). The edge is purged first, so "with" includes its
//     first fetch of each page and asset: the origin serves each asset once per edge.
//  2. The edge's asset rate against the origin's page rate on the same core: saturation
//     rounds, alternating, of GET on the hashed assets at the edge, of anonymous GET / at
//     one web server directly, and of anonymous GET / and GET /preview/:code (a heavier
//     public page: a link looked up and rendered) at HAProxy, the origin the edge stands in
//     front of. The edge and each web server are capped at the same share of a core (--cpu,
//     0.2 unless set: the web servers by the launcher, the edge's manager and cacher here),
//     so that neither is held back by the load driver. Rates are compared per core: requests
//     per CPU-second of the edge, against pages per CPU-second of the web servers plus
//     HAProxy (the target; docs/decisions.md says why) and of the web server alone (the
//     first comparison, kept). Without the cgroup cpu controller the edge and the web servers
//     run uncapped on the web servers' CPU, and the report says so.
import { createHmac } from 'node:crypto';
import { request } from 'node:http';
import path from 'node:path';
import { edgeStatsSync, varnishWorkDir } from '../../launcher/components/varnish.ts';
import { benchCode, seedLinks } from '../dataset/bench-links.ts';
import { capProcessTree, cgroupAvailable, releaseGroupDir } from '../../launcher/cgroup-cpu.ts';
import { loadSecret } from '../../launcher/state-dir.ts';
import { pinTree } from '../machine/cpu-pinning.ts';
import { treeCpuSeconds } from '../machine/proc-stats.ts';
import { median, mediansOf, type MeasureTarget, type Measurement } from '../measure/measurement.ts';
import { saturationRounds, type Workload } from '../measure/phases.ts';
import { target, type BenchReport } from '../report/bench-report.ts';
import { startTopologyRun, upFlags } from '../targets/topology-run.ts';
import type { BenchTopology } from '../targets/bench-topology.ts';
import { requestErrors, topologyParts, type Scenario, type ScenarioContext } from './scaffold.ts';

const DEFAULT_RUNG = 6;
/** Cores the edge and each web server are capped at, unless --cpu says. */
const DEFAULT_CPU = 0.2;
const PAGE_VIEWS = 1000;
/** Page views in flight at once (browsers). */
const BROWSERS = 8;
/** The target: the edge serves assets at least this many times the origin's page rate. */
export const MIN_ASSET_VS_PAGE = 5;
const POOL_SIZE = 10;
/** Links seeded for the preview pages, each previewed alike. */
const PREVIEW_LINKS = 100;

/**
 * CPU microseconds per request of one saturation round, counting the processes named: the
 * edge (`server`), or the origin's web servers (`server`) plus HAProxy when `haproxy`.
 */
function usPerRequest(m: Measurement, haproxy: boolean): number {
  const cpu = m.serverCpu + (haproxy ? (m.componentCpu?.haproxy ?? NaN) : 0);
  return m.throughput > 0 ? (cpu / m.throughput) * 1e6 : NaN;
}

/** Median over the rounds of `server` of its CPU microseconds per request. */
function medianUs(all: Measurement[], server: string, haproxy: boolean): number {
  return median(all.filter((m) => m.server === server).map((m) => usPerRequest(m, haproxy)));
}

export const edgeScenario: Scenario = {
  name: 'edge',
  summary: 'origin requests per 1,000 page views without and with the edge (rung 6), and the edge asset rate vs the origin page rate',
  options: [{ flag: '--rung', default: String(DEFAULT_RUNG) }, { flag: '--web' }, { flag: '--cpu', default: String(DEFAULT_CPU) }, { flag: '--replicas' }, { flag: '--db-cpu' }],
  run: edgeBench,
};

/** Requests the web servers answered, health checks and scrapes aside. */
async function originRequests(topology: BenchTopology): Promise<{ all: number; assets: number }> {
  let all = 0;
  let assets = 0;
  for (const w of topology.webs()) {
    const text = await (await fetch(`${w.url}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (!line.startsWith('http_request_duration_seconds_count{')) continue;
      const route = /route="([^"]*)"/.exec(line)?.[1] ?? '';
      if (['/healthz', '/readyz', '/metrics'].includes(route)) continue;
      const n = Number(line.split(' ').pop());
      all += n;
      if (route === '/static/:name') assets += n;
    }
  }
  return { all, assets };
}

/** PAGE_VIEWS anonymous page views at `base`, BROWSERS at a time: the page and each asset it links. */
async function pageViews(base: string): Promise<{ views: number; requests: number; errors: number }> {
  let next = 0;
  let requests = 0;
  let errors = 0;
  const get = async (p: string): Promise<string> => {
    requests++;
    const res = await fetch(base + p);
    const body = await res.text();
    if (res.status !== 200) errors++;
    return body;
  };
  await Promise.all(
    Array.from({ length: BROWSERS }, async () => {
      while (next++ < PAGE_VIEWS) {
        const html = await get('/');
        for (const m of html.matchAll(/(?:href|src)="(\/static\/[^"]+)"/g)) await get(m[1]!);
      }
    }),
  );
  return { views: PAGE_VIEWS, requests, errors };
}

/** Empties the edge of pages and assets (PURGE by surrogate key, with the topology's token). */
function purgeEdge(edgeUrl: string, stateDir: string): Promise<void> {
  const token = createHmac('sha256', loadSecret(stateDir)).update('edge-purge').digest('base64url');
  const u = new URL(edgeUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: 'PURGE', path: '/', headers: { 'xkey-purge': 'page asset', 'x-purge-token': token } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`the edge answered ${res.statusCode} to PURGE`))));
    });
    req.on('error', reject);
    req.end();
  });
}

async function edgeBench(ctx: ScenarioContext): Promise<BenchReport> {
  const { o, session, log } = ctx;
  const up = upFlags(o, { rung: DEFAULT_RUNG, cpu: DEFAULT_CPU });
  if (up.rung < 6) throw new Error(`the edge runs from rung 6: use --rung 6 or more (not ${up.rung})`);
  const run = await startTopologyRun(session, up, (db) => seedLinks(db, PREVIEW_LINKS));
  const { topology, driver } = run;
  const edge = topology.nodes('varnish')[0];
  const haproxy = topology.nodes('haproxy')[0];
  if (!edge?.pid || !haproxy) throw new Error('the topology has no edge or no HAProxy');
  const stateDir = path.join(session.dir, 'topology');
  // The edge on the web servers' CPU, capped as each of them is: the same share of a core.
  pinTree(edge.pid, run.pinning.servers);
  // The bench's own group, removed at the end with the edge's processes back in the root group.
  const capDir = up.cpu !== undefined && cgroupAvailable() && topology.capped() ? capProcessTree(`edge-bench-${process.pid}`, edge.pid, up.cpu) : undefined;
  const edgeCapped = capDir !== undefined;
  const capNote = edgeCapped
    ? `the edge (manager and cacher) and each web server capped at ${up.cpu} core`
    : 'NOT capped (the cgroup cpu controller is not writable here, or --cpu is unset): the edge and the web servers share the servers\' CPU uncapped, and the load driver may be the limit of the edge\'s rate';
  log(capNote);

  // 1. Origin requests per 1,000 page views.
  const page = await (await fetch(`${edge.url}/`)).text();
  const assets = [...page.matchAll(/(?:href|src)="(\/static\/[^"]+)"/g)].map((m) => m[1]!);
  log(`${PAGE_VIEWS} page views at HAProxy (without the edge)…`);
  const o0 = await originRequests(topology);
  const without = await pageViews(haproxy.url);
  const o1 = await originRequests(topology);
  await purgeEdge(edge.url, stateDir);
  const edgeBefore = edgeStatsSync(varnishWorkDir(path.join(stateDir, 'up')));
  log(`${PAGE_VIEWS} page views at the edge (purged first)…`);
  const withEdge = await pageViews(edge.url);
  const o2 = await originRequests(topology);
  const edgeAfter = edgeStatsSync(varnishWorkDir(path.join(stateDir, 'up')));
  const per1000 = (n: number) => (n * 1000) / PAGE_VIEWS;
  const originWithout = per1000(o1.all - o0.all);
  const originWith = per1000(o2.all - o1.all);
  const assetFetches = o2.assets - o1.assets;
  log(`origin requests per 1,000 page views: ${originWithout} without the edge, ${originWith} with it; assets fetched by the edge: ${assetFetches} of ${assets.length}`);

  // 2. Asset rate at the edge vs page rate at the origin, same core.
  const edgeTarget: MeasureTarget = {
    name: 'edge-assets',
    host: new URL(edge.url).hostname,
    port: Number(new URL(edge.url).port),
    sampleCpu: () => ({ server: treeCpuSeconds(edge.pid!), database: null }),
  };
  // One web server, directly: the origin's page rate at the same cap as the edge.
  const originTarget = topology.target('origin-pages', topology.webs()[0]!.name);
  // HAProxy: the origin as the edge sees it. Its CPU sample covers the web servers and HAProxy.
  const viaHaproxy = (name: string): MeasureTarget => ({
    ...topology.target(name, topology.webs()[0]!.name),
    host: new URL(haproxy.url).hostname,
    port: Number(new URL(haproxy.url).port),
  });
  const haproxyPages = viaHaproxy('origin-pages-haproxy');
  const haproxyPreviews = viaHaproxy('origin-previews-haproxy');
  // Anonymous requests (no Cookie) over the given paths, 200 expected.
  const assetLoad: Workload = { session: { cookies: [''], paths: assets }, expectStatus: 200 };
  const pageLoad: Workload = { session: { cookies: [''], paths: ['/'] }, expectStatus: 200 };
  const previewPaths = Array.from({ length: PREVIEW_LINKS }, (_, i) => `/preview/${benchCode(i)}`);
  const previewLoad: Workload = { session: { cookies: [''], paths: previewPaths }, expectStatus: 200 };
  const phases: [MeasureTarget, Workload][] = [
    [edgeTarget, assetLoad],
    [originTarget, pageLoad],
    [haproxyPages, pageLoad],
    [haproxyPreviews, previewLoad],
  ];
  const measurements: Measurement[] = [];
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const [sut, load] of phases) {
        measurements.push(...(await saturationRounds(driver, [sut], { ...o, rounds: 1 }, log, load)).map((m) => ({ ...m, round })));
      }
    }
  } finally {
    if (capDir) releaseGroupDir(capDir);
  }
  const me = mediansOf(measurements, 'edge-assets');
  const mo = mediansOf(measurements, 'origin-pages');
  const mh = mediansOf(measurements, 'origin-pages-haproxy');
  const mp = mediansOf(measurements, 'origin-previews-haproxy');
  // The first comparison: req/s at the same cap, the edge against one web server directly.
  const ratio = me.throughput / mo.throughput;
  // Per core: CPU µs per request, medians over the rounds.
  const edgeUs = medianUs(measurements, 'edge-assets', false);
  const webUs = medianUs(measurements, 'origin-pages', false);
  const originUs = medianUs(measurements, 'origin-pages-haproxy', true);
  const previewUs = medianUs(measurements, 'origin-previews-haproxy', true);
  const perCore = originUs / edgeUs;
  log(`edge assets ${Math.round(me.throughput)} req/s vs one web server's pages ${Math.round(mo.throughput)} req/s: ${ratio.toFixed(2)}x`);
  log(
    `CPU µs per request: edge asset ${edgeUs.toFixed(1)}, web server page ${webUs.toFixed(1)}, HAProxy + web page ${originUs.toFixed(1)}, ` +
      `HAProxy + web preview ${previewUs.toFixed(1)}: per core ${perCore.toFixed(2)}x (home page), ${(previewUs / edgeUs).toFixed(2)}x (preview)`,
  );

  const parts = topologyParts(run, 'No fixed-rate phase: this scenario compares counts and saturation rates.');
  const hits = (edgeAfter?.hits ?? 0) - (edgeBefore?.hits ?? 0);
  const misses = (edgeAfter?.misses ?? 0) - (edgeBefore?.misses ?? 0);
  return ctx.report({
    resolved: { rung: up.rung },
    poolSize: POOL_SIZE,
    pinning: parts.pinning,
    databases: parts.databases,
    servers: [
      { name: 'edge-assets', label: `the edge (Varnish) ${edge.url}, GET of the ${assets.length} hashed assets, pinned with the web servers`, pid: edge.pid },
      { name: 'origin-pages', label: `the origin: one web server (${topology.webs()[0]!.name}), anonymous GET /`, pid: topology.webs()[0]!.pid ?? 0 },
      { name: 'origin-pages-haproxy', label: `the origin: HAProxy ${haproxy.url} and the web servers, anonymous GET /`, pid: haproxy.pid ?? 0 },
      { name: 'origin-previews-haproxy', label: `the origin: HAProxy and the web servers, anonymous GET /preview/:code over ${PREVIEW_LINKS} links`, pid: haproxy.pid ?? 0 },
    ],
    saturation: { measurements, medians: [me, mo, mh, mp] },
    fixedRate: { rate: 0, rateSource: 'none: this scenario has no fixed-rate phase', measurements: [] },
    memory: parts.memory,
    ratios: {
      'edge asset rate / origin page rate per core (HAProxy + web servers, home page)': perCore,
      'edge asset rate / origin page rate per core (HAProxy + web servers, link preview)': previewUs / edgeUs,
      'edge asset rate / origin page rate per core (one web server, home page)': webUs / edgeUs,
      'edge asset rate / one web server page rate, req/s at the same cap (the first comparison)': ratio,
    },
    figures: {
      'page views per run': PAGE_VIEWS,
      'origin requests per 1,000 page views, without the edge': originWithout,
      'origin requests per 1,000 page views, with the edge': originWith,
      'assets fetched from the origin by the edge': assetFetches,
      'assets a page links': assets.length,
      'edge hit ratio over the page views, %': hits + misses > 0 ? (100 * hits) / (hits + misses) : 0,
      'edge assets, req/s (median)': me.throughput,
      'origin pages, req/s (median)': mo.throughput,
      'origin pages through HAProxy, req/s (median)': mh.throughput,
      'origin previews through HAProxy, req/s (median)': mp.throughput,
      'edge CPU µs per asset': edgeUs,
      'one web server CPU µs per home page': webUs,
      'HAProxy + web servers CPU µs per home page': originUs,
      'HAProxy + web servers CPU µs per preview page': previewUs,
    },
    topology: parts.topology,
    targets: [
      target('assets fetched from the origin by the edge (once each)', assetFetches, '==', assets.length),
      target('edge asset rate / origin page rate per core (HAProxy + web servers, home page)', perCore, '>=', MIN_ASSET_VS_PAGE),
      target('origin requests per 1,000 page views with the edge', originWith, '<', originWithout / 10),
      target('failed or non-200 requests', requestErrors(measurements) + without.errors + withEdge.errors, '==', 0),
    ],
    notes: [...parts.notes, capNote, ...ctx.measurementNotes(measurements)],
  });
}
