// Scenario `session`: logged-in users reading their own data, against a topology that
// `ladder up` launched (rung 7 unless --rung): every request carries one user's session
// cookie and asks for GET /api/me or GET /api/links?limit=20 (the dashboard's first page),
// so each one loads a session from the store (Redis at rung 7) and queries Postgres.
// The users sign up through POST /api/signup before the run, as people do; each then owns
// LINKS_PER_USER links, inserted in SQL (the API would add nothing but time).
import type pg from 'pg';
import { mediansOf } from '../measure/measurement.ts';
import { fixedRate, saturationRounds, type Workload } from '../measure/phases.ts';
import { warmUp } from '../measure/warm-up.ts';
import { target, type BenchReport } from '../report/bench-report.ts';
import { fixedRateNotes, healthCheckNotes, pinForFixedRate, startTopologyRun, upFlags, withDatabase } from '../targets/topology-run.ts';
import { requestErrors, topologyParts, type Scenario, type ScenarioContext } from './scaffold.ts';

const DEFAULT_RUNG = 7;
const LINKS_PER_USER = 20;
const PATHS = ['/api/me', `/api/links?limit=${LINKS_PER_USER}`];
/** Signups in flight at once: each hashes a password (argon2), which is the slow part. */
const SIGNUP_CONCURRENCY = 8;
/**
 * The per-IP limits on signup and login would stop the setup (every user signs up from
 * 127.0.0.1); the web servers inherit this from the launcher's environment.
 */
const RATE_LIMITS = 'signup=100000/60,login=100000/60';
const POOL_SIZE = 10;

/** Signs up `count` users at the entry; returns each one's Cookie header (every cookie it was given). */
async function signUpUsers(entry: string, count: number, log: (m: string) => void): Promise<string[]> {
  const cookies: string[] = new Array<string>(count);
  let next = 0;
  const started = Date.now();
  const password = `bench-${Date.now().toString(36)}-password`;
  await Promise.all(
    Array.from({ length: Math.min(SIGNUP_CONCURRENCY, count) }, async () => {
      for (let i = next++; i < count; i = next++) {
        const res = await fetch(`${entry}/api/signup`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: `bench-user-${i}@example.invalid`, password }),
        });
        const body = await res.text();
        if (res.status !== 201) throw new Error(`signup of user ${i} answered ${res.status}: ${body.slice(0, 200)}`);
        // Session cookie, and whatever else the entry sets (HAProxy's stickiness cookie at rung 3).
        cookies[i] = res.headers
          .getSetCookie()
          .map((c) => c.split(';')[0]!.trim())
          .join('; ');
      }
    }),
  );
  log(`${count} users signed up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return cookies;
}

/** Every user's cookie opens their own session: GET /api/me answers 200 with their account. */
async function checkSessions(entry: string, cookies: string[]): Promise<void> {
  for (const [i, cookie] of cookies.entries()) {
    const res = await fetch(`${entry}/api/me`, { headers: { cookie } });
    const body = (await res.json().catch(() => null)) as { user?: { email?: string } } | null;
    if (res.status !== 200 || body?.user?.email !== `bench-user-${i}@example.invalid`) {
      throw new Error(`user ${i}: GET /api/me answered ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
    }
  }
}

async function seedUserLinks(db: pg.Client): Promise<void> {
  await db.query(
    `insert into links (code, url, owner_id)
       select 'u' || u.id || 'n' || g, 'https://example.com/users/' || u.id || '/' || g, u.id
       from users u cross join generate_series(1, $1::int) g`,
    [LINKS_PER_USER],
  );
  await db.query('vacuum analyze links');
  await db.query('vacuum analyze users');
}

export const sessionScenario: Scenario = {
  name: 'session',
  summary: 'logged-in users reading /api/me and /api/links with their cookie, on `ladder up` (rung 7 unless --rung)',
  options: [{ flag: '--rung', default: String(DEFAULT_RUNG) }, { flag: '--web' }, { flag: '--cpu' }, { flag: '--users' }, { flag: '--replicas' }, { flag: '--db-cpu' }],
  run: sessionRun,
};

async function sessionRun(ctx: ScenarioContext): Promise<BenchReport> {
  const { o, session, log } = ctx;
  const up = upFlags(o, { rung: DEFAULT_RUNG });
  // Users are created through the API once the topology is up, so the seed here is empty.
  const run = await startTopologyRun(session, { ...up, env: { LADDER_RATE_LIMITS: RATE_LIMITS } }, async () => undefined);
  const { topology, driver } = run;
  const entry = topology.entry.href.replace(/\/$/, '');
  log(`signing up ${o.users} users at ${entry}…`);
  const cookies = await signUpUsers(entry, o.users, log);
  await withDatabase(topology, seedUserLinks);
  await checkSessions(entry, cookies);

  const name = `rung${up.rung}`;
  const workload: Workload = { session: { cookies, paths: PATHS }, expectStatus: 200 };
  const target0 = topology.target(name);
  log('warming up the web servers until their throughput is flat…');
  const warmup = await warmUp(driver, target0, o, log, workload);
  const downsBefore = await topology.healthCheckDowns();
  const saturation = await saturationRounds(driver, [target0], o, log, workload);
  const m = mediansOf(saturation, name);
  const fixedPlan = ctx.fixedRatePlan(m.throughput, 'the');
  const fixedPinning = pinForFixedRate(topology, m, fixedPlan.rate);
  log(fixedPinning.note);
  const fixed = await fixedRate(driver, [target0], o, fixedPlan.rate, log, workload);

  const downs = (await topology.healthCheckDowns()) - downsBefore;
  const parts = topologyParts(run, fixedPinning.note);
  const topo = parts.topology;
  const errors = requestErrors([...saturation, ...fixed]);
  const targets = [target('failed or non-200 requests', errors, '==', 0)];
  const webs = topology.webs();
  const entryNode = topology.status().nodes.find((n) => n.url.replace(/\/$/, '') === entry);
  const sessions = topology.nodes('redis').length > 0 ? 'sessions in Redis' : 'sessions in each web process (sticky cookie)';
  return ctx.report({
    resolved: { rung: up.rung },
    poolSize: POOL_SIZE,
    zipfTop1PercentShare: 0,
    pinning: parts.pinning,
    databases: parts.databases,
    servers: [
      {
        name,
        label:
          `${topo.command}: ${webs.length} web server(s)${up.cpu !== undefined ? ` at ${up.cpu} core` : ''}, ${sessions}; ` +
          `${o.users} users, each GET ${PATHS.join(' or ')} (uniform), own ${LINKS_PER_USER} links; at ${entryNode?.name ?? 'the entry'}`,
        pid: entryNode?.pid ?? 0,
      },
    ],
    saturation: { measurements: saturation, medians: [m] },
    fixedRate: { ...fixedPlan, measurements: fixed },
    memory: parts.memory,
    ratios: {},
    figures: {
      'initial warm-up, s': warmup.seconds,
      ...(topology.nodes('haproxy').length > 0 ? { 'web servers taken out of rotation by a failed health check': downs } : {}),
    },
    topology: topo,
    targets,
    notes: [...parts.notes, ...ctx.measurementNotes([...saturation, ...fixed]), ...fixedRateNotes(fixed, run.pinning, fixedPinning.moved), ...healthCheckNotes(downs, 'the run')],
  });
}
