// Scenario `cache` (rung 5): GET /:code on the Links app with its cache tier (an in-process
// L1 in front of a redis-server of the run's own, CACHE_REDIS_URL) against the same app
// without it and a bare Fastify constant 302 (the ceiling: no database, no app), on the same
// machine, Postgres, data and driver, alternating over the rounds. Zipf(--zipf) over --links.
// Targets: the cached app's saturation throughput is at least 80% of the constant
// reference's, and in steady state (the fixed-rate phase, after the saturation rounds) it
// sends at most 0.02 database queries per redirect, counted by the app itself
// (ladder_db_queries_total over http_request_duration_seconds_count of the redirect route).
import path from 'node:path';
import { requireBinary } from '../../launcher/binaries.ts';
import { CACHE_REDIS, ping, redisServerArgs } from '../../launcher/redis-server.ts';
import { ensureDir, freePort } from '../../launcher/state-dir.ts';
import { LoadDriverProcess } from '../driver/load-driver-process.ts';
import { pin } from '../machine/cpu-pinning.ts';
import { cpuSeconds } from '../machine/proc-stats.ts';
import { mediansOf } from '../measure/measurement.ts';
import { fixedRate, saturationRounds } from '../measure/phases.ts';
import { warmWholePhases } from '../measure/warm-up.ts';
import { sumSeries } from '../measure/prom-text.ts';
import { target, type BenchReport } from '../report/bench-report.ts';
import { startApp, startReference, type ServerUnderTest } from '../targets/bench-servers.ts';
import { databaseRow, requestErrors, serverMemory, serverRows, type Scenario, type ScenarioContext } from './scaffold.ts';

const MIN_CACHED_VS_CONSTANT = 0.8;
const MAX_QUERIES_PER_REDIRECT = 0.02;

async function counters(sut: ServerUnderTest) {
  const text = await (await fetch(`http://${sut.host}:${sut.port}/metrics`)).text();
  return {
    queries: sumSeries(text, 'ladder_db_queries_total'),
    redirects: sumSeries(text, 'http_request_duration_seconds_count', 'route="/:code"'),
    l1Hits: sumSeries(text, 'ladder_cache_requests_total', 'tier="l1",result="hit"'),
    l1Misses: sumSeries(text, 'ladder_cache_requests_total', 'tier="l1",result="miss"'),
    redisHits: sumSeries(text, 'ladder_cache_requests_total', 'tier="redis",result="hit"'),
    redisMisses: sumSeries(text, 'ladder_cache_requests_total', 'tier="redis",result="miss"'),
    l1Bytes: sumSeries(text, 'ladder_cache_l1_bytes'),
  };
}

export const cacheScenario: Scenario = {
  name: 'cache',
  summary: 'rung 5: GET /:code on the app with its cache tier vs without it vs a constant 302; queries per redirect',
  options: [],
  run: cache,
};

async function cache(ctx: ScenarioContext): Promise<BenchReport> {
  const { o, session, log } = ctx;
  const pinning = ctx.planPinning();

  const db = await ctx.startDatabase('embedded', pinning.servers);
  // The cache's Redis: the run's own, on a free loopback port, nothing persisted; pinned
  // with the servers (it is part of what serves a redirect).
  const redisPort = await freePort();
  const redisDir = ensureDir(path.join(session.dir, 'cache-redis'));
  const redis = session.supervisor.spawn(
    'cache-redis',
    requireBinary('redis-server'),
    redisServerArgs({ port: redisPort, dir: redisDir, ...CACHE_REDIS }),
  );
  for (let i = 0; !(await ping(redisPort)); i++) {
    if (i > 100 || redis.exitStatus !== undefined) throw new Error(`redis-server did not start; see ${redis.logFile}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  pin(redis.pid, pinning.servers);
  const cacheUrl = `redis://127.0.0.1:${redisPort}`;

  const common = { cpus: pinning.servers, links: o.links };
  const [cached, app, refConstant, driver] = await Promise.all([
    startApp(session, {
      ...common,
      name: 'app-cached',
      label: 'Links app with its cache tier (L1 + Redis)',
      databaseUrl: db.url,
      databasePid: db.server.pid,
      env: { CACHE_REDIS_URL: cacheUrl },
    }),
    startApp(session, { ...common, label: 'Links app without a cache', databaseUrl: db.url, databasePid: db.server.pid }),
    startReference(session, { ...common, name: 'ref-constant', label: 'reference: bare Fastify, constant 302, no database', kind: 'constant' }),
    LoadDriverProcess.start(session, pinning.driver),
  ]);
  const servers = [cached, app, refConstant];

  // Steady state is what is measured. Every phase replays the same request sequence from
  // its start, so a warm-up as long as a whole phase (its warm-up and measured seconds),
  // repeated until throughput is flat, has requested every link the rounds will: the
  // rounds then compare a warm cache with the references, as a long-running service has.
  log('warming up the cached app with whole phases until its throughput is flat…');
  const warmup = await warmWholePhases(driver, cached, o, log);
  const redisCpuStart = cpuSeconds(redis.pid);
  const saturation = await saturationRounds(driver, servers, o, log);
  const medians = servers.map((s) => mediansOf(saturation, s.name));
  const [mCached, mApp, mConst] = medians as [(typeof medians)[0], (typeof medians)[0], (typeof medians)[0]];
  const fixedPlan = ctx.fixedRatePlan(mApp.throughput, "the uncached app's");
  // Steady state: the cache is warm after the saturation rounds; count over the fixed-rate phases.
  const before = await counters(cached);
  const fixed = await fixedRate(driver, servers, o, fixedPlan.rate, log);
  const after = await counters(cached);
  const redisCpu = (cpuSeconds(redis.pid) ?? 0) - (redisCpuStart ?? 0);

  const redirects = after.redirects - before.redirects;
  const queriesPerRedirect = redirects > 0 ? (after.queries - before.queries) / redirects : NaN;
  const l1 = after.l1Hits - before.l1Hits + (after.l1Misses - before.l1Misses);
  const errors = requestErrors([...saturation, ...fixed]);
  const ratios = {
    'app-cached / ref-constant': mCached.throughput / mConst.throughput,
    'app-cached / app': mCached.throughput / mApp.throughput,
    'app / ref-constant': mApp.throughput / mConst.throughput,
  };
  const targets = [
    target('saturation throughput app-cached / ref-constant', ratios['app-cached / ref-constant'], '>=', MIN_CACHED_VS_CONSTANT),
    target('database queries per redirect, steady state (app-cached)', queriesPerRedirect, '<=', MAX_QUERIES_PER_REDIRECT),
    target('failed or non-302 requests', errors, '==', 0),
  ];
  const figures: Record<string, number> = {
    'steady state: redirects counted by app-cached': redirects,
    'steady state: database queries by app-cached': after.queries - before.queries,
    'steady state: database queries per redirect': queriesPerRedirect,
    'steady state: L1 hit ratio': l1 > 0 ? (after.l1Hits - before.l1Hits) / l1 : NaN,
    'steady state: Redis hits': after.redisHits - before.redisHits,
    'steady state: Redis misses (loads)': after.redisMisses - before.redisMisses,
    'L1 bytes at the end (app-cached)': after.l1Bytes,
    'cache Redis CPU during the run, s': redisCpu,
    'initial warm-up of app-cached, s': warmup.seconds,
  };
  return ctx.report({
    poolSize: 10,
    pinning,
    databases: [databaseRow(db)],
    servers: serverRows(servers),
    saturation: { measurements: saturation, medians },
    fixedRate: { ...fixedPlan, measurements: fixed },
    memory: serverMemory(servers),
    ratios,
    figures,
    targets,
    notes: [
      ...ctx.measurementNotes([...saturation, ...fixed]),
      ...(warmup.flat ? [] : [`the cached app's throughput was still rising after ${warmup.seconds} s of warm-up: the cache may not be fully warm`]),
    ],
  });
}
