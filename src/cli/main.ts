// The `ladder` command. `--json` output is for scripts and stays stable.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, failureCode } from '../kit/errors.ts';
import { untilSignal } from '../kit/process/signals.ts';
import { buildTopology, RUNGS } from '../topology/topology.ts';

const HELP_TEMPLATE = `ladder: Links on every rung of the scaling ladder

  ladder start                 rung 1 in the foreground (what npm start runs)
                               PORT, HOST, DATABASE_URL, LOG_LEVEL, LADDER_STATE_DIR override the defaults
  ladder migrate               apply pending database migrations and exit
  ladder bench SCENARIO [flags] run a load scenario, print and save the report; \`ladder bench --help\`
                               lists the scenarios: @SCENARIOS@
  ladder rungs [--json]        the rungs and which are built
  ladder up --rung N [--web K] [--cpu C] [--port P] [--balance roundrobin|leastconn] [--json]
           [--replicas R] [--replica-delay MS] [--db-cpu C] [--no-cache] [--monitor|--no-monitor] [--workers W]
           [--autoscale MIN:MAX [--target-cpu 0.6] [--autoscale-sync S] [--scale-in-window S]]
           [--ha [--sync]] [--pgbouncer] [--max-connections N]
                               start a topology in the background; prints the entry URL when ready
                               (rung 4 and up: a primary and R streaming replicas, 2 unless told;
                               rung 5 and up: the cache tier, unless --no-cache;
                               rung 3 and up: Prometheus, Alertmanager and the dashboard, unless --no-monitor;
                               rung 9 and up: a broker, the relay and W workers, 2 unless told;
                               rung 10: --shards S clusters (2 unless told) of a primary and R
                               replicas each, and the catalog; without the cache tier and rung 9's queue;
                               --autoscale, rung 3 and up: the web tier sizes itself to the target CPU,
                               see docs/operations.md;
                               --ha: pg1..pgN under Patroni with etcd1..3, automatic failover,
                               --sync for synchronous replication; --pgbouncer: PgBouncer in front,
                               also by itself when the web tier's pools would pass --max-connections)
  ladder status [--json]       {entry, rung, nodes:[{name,role,pid,port,url,state}]} (rung 10: database nodes carry \`shard\`)
  ladder shards [--json]       rung 10's shard map: {version, logicalShards, clusters:[{name, logical:[ranges], rows}]}
  ladder reshard --to S [--json]  rung 10: moves logical shards onto S clusters while traffic runs
                               (resumable; last --json line {from, to, rowsMoved, rowsTotal, pauses})
  ladder queue stats [--json]  the broker's queues: {queues:[{name, depth, oldestAgeSeconds, deadLetters}]}
  ladder queue dlq list|retry [--json]
                               the dead letters (messages that failed every attempt); retry sends them back
  ladder alerts [--json]       the alerts firing now (from the topology's Alertmanager)
  ladder dashboard             the monitoring dashboard's URL (a live picture of the topology)
  ladder down                  stop everything \`up\` started
  ladder chaos kill|stop|cont|term NODE [--down S]   fault injection on a node (NODE \`primary\`:
                               the current leader; a killed node stays down S seconds, 5 unless
                               told, then is restarted)
  ladder logs NODE [--lines N] a node's log
  ladder scale --web K         add or remove web servers at runtime (HAProxy runtime API)
  ladder synth --rung N [--target aws|k8s] [--out DIR] [--web K] [--replicas R] [--cpu C]
           [--no-cache] [--ha] [--region R] [--certificate-arn ARN] [--validate] [--image IMG] [--database cnpg|external] [--json]
           [--autoscale MIN:MAX [--target-cpu 0.6] [--scale-in-window S]]
                               the rung's deployable artefacts, offline: a CDK cloud assembly with
                               CloudFormation (aws, the default) or Kubernetes manifests (k8s);
                               see docs/deploy.md
`;

/** The help, with the bench scenarios as the lab's registry lists them (loaded only for the help). */
async function help(): Promise<string> {
  const { SCENARIOS } = await import('../lab/scenarios/registry.ts');
  return HELP_TEMPLATE.replace('@SCENARIOS@', SCENARIOS.map((s) => s.name).join(', '));
}

function say(msg: string): void {
  process.stderr.write(`ladder: ${msg}\n`);
}

function fail(err: unknown): number {
  const code = failureCode(err);
  if (code && err instanceof Error) say(`${code}: ${err.message}`);
  else if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') say(`the port is already in use (${err.message}). Set PORT to a free port.`);
    else say(err.message);
  } else say(String(err));
  return 1;
}

function stateDir(): string {
  return process.env.LADDER_STATE_DIR || '.ladder';
}

/** A numeric flag, or a ConfigError naming it. */
function num(raw: string | undefined, field: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n))
    throw new ConfigError(field, `"${raw}" is not a number`, `pass a number to --${field}`);
  return n;
}

/** --autoscale MIN:MAX and the flags that tune it (which mean nothing without it). */
function autoscaleFlags(values: Record<string, string | boolean | undefined>) {
  const str = (k: string) => (typeof values[k] === 'string' ? values[k] : undefined);
  const range = str('autoscale');
  const tuning = ['target-cpu', 'autoscale-sync', 'scale-in-window'].filter((k) => values[k] !== undefined);
  if (range === undefined) {
    if (tuning.length > 0) throw new ConfigError(tuning[0]!, 'tunes the autoscaler, which is off', 'add --autoscale MIN:MAX');
    return undefined;
  }
  return {
    range,
    targetCpu: num(str('target-cpu'), 'target-cpu'),
    syncSeconds: num(str('autoscale-sync'), 'autoscale-sync'),
    scaleInWindowSeconds: num(str('scale-in-window'), 'scale-in-window'),
  };
}

function envPort(): number | undefined {
  const raw = process.env.PORT;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new ConfigError('PORT', `"${raw}" is not a port`, 'set PORT to 0..65535');
  return n;
}

async function start(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { rung: { type: 'string' } }, strict: true });
  const topology = buildTopology({
    rung: num(values.rung, 'rung') ?? 1,
    port: envPort(),
    host: process.env.HOST,
    databaseUrl: process.env.DATABASE_URL || undefined,
    stateDir: process.env.LADDER_STATE_DIR || undefined,
  });
  if (topology.rung !== 1)
    throw new ConfigError('rung', '`ladder start` runs rung 1', 'use `ladder up --rung N` for higher rungs');
  const { startRung1 } = await import('../launcher/rung1.ts');
  say(
    topology.database.kind === 'embedded' ? 'starting the embedded Postgres…' : 'connecting to DATABASE_URL…',
  );
  const rung = await startRung1(topology, (m) => say(m));
  say(`Links is serving at ${rung.url}`);
  process.stdout.write(`${rung.url}\n`);
  const crashed = await Promise.race([
    untilSignal(() => rung.stop(), say).then(() => undefined),
    rung.webExited,
  ]);
  if (crashed) {
    // The web server died by itself: nothing is left to serve, so Postgres stops too.
    say(`the web server exited (${crashed.code ?? crashed.signal}); stopping`);
    await rung.stop();
    return 1;
  }
  say('stopped');
  return 0;
}

async function migrateCmd(): Promise<number> {
  const topology = buildTopology({
    rung: 1,
    databaseUrl: process.env.DATABASE_URL || undefined,
    stateDir: process.env.LADDER_STATE_DIR || undefined,
  });
  if (topology.database.kind === 'external') {
    // The one place that runs the app's migrations in-process: the launcher runs this
    // command (with DATABASE_URL) instead of importing the app.
    const { migrateDatabase } = await import('../server/migrate.ts');
    await migrateDatabase(topology.database.url!, (m) => say(m));
  } else {
    // The embedded Postgres of rung 1: started, migrated (by this command, with its URL), stopped.
    const { startDatabase } = await import('../launcher/rung1.ts');
    const { acquireLock } = await import('../launcher/state-dir.ts');
    const release = acquireLock(`${topology.stateDir}/rung1`, 'Ladder rung 1');
    try {
      const db = await startDatabase(topology, (m) => say(m));
      await db.stop();
    } finally {
      release();
    }
  }
  say('migrations are up to date');
  return 0;
}

function rungs(argv: string[]): number {
  const json = argv.includes('--json');
  if (json)
    process.stdout.write(
      JSON.stringify(RUNGS.map(({ rung, title, built }) => ({ rung, title, built }))) + '\n',
    );
  else
    for (const r of RUNGS)
      process.stdout.write(
        `${String(r.rung).padStart(2)}  ${r.built ? 'built    ' : 'not built'}  ${r.title}\n`,
      );
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'start':
        return await start(rest);
      case 'migrate':
        return await migrateCmd();
      case 'bench': {
        const { benchCommand } = await import('../lab/bench-command.ts');
        return await benchCommand(rest);
      }
      case 'rungs':
        return rungs(rest);
      case 'up': {
        const { values } = parseArgs({
          args: rest,
          options: {
            rung: { type: 'string' },
            web: { type: 'string' },
            cpu: { type: 'string' },
            port: { type: 'string' },
            host: { type: 'string' },
            balance: { type: 'string' },
            replicas: { type: 'string' },
            'replica-delay': { type: 'string' },
            'db-cpu': { type: 'string' },
            workers: { type: 'string' },
            'no-cache': { type: 'boolean' },
            monitor: { type: 'boolean' },
            'no-monitor': { type: 'boolean' },
            autoscale: { type: 'string' },
            'target-cpu': { type: 'string' },
            'autoscale-sync': { type: 'string' },
            'scale-in-window': { type: 'string' },
            ha: { type: 'boolean' },
            sync: { type: 'boolean' },
            pgbouncer: { type: 'boolean' },
            'max-connections': { type: 'string' },
            shards: { type: 'string' },
            json: { type: 'boolean' },
          },
          strict: true,
        });
        if (values.monitor && values['no-monitor'])
          throw new ConfigError('monitor', '--monitor and --no-monitor contradict each other', 'pass one of them');
        const autoscale = autoscaleFlags(values);
        const { up } = await import('../launcher/up-commands.ts');
        return await up(
          {
            rung: num(values.rung, 'rung'),
            web: num(values.web, 'web'),
            cpu: num(values.cpu, 'cpu'),
            port: num(values.port, 'port'),
            host: values.host,
            balance: values.balance,
            replicas: num(values.replicas, 'replicas'),
            replicaDelayMs: num(values['replica-delay'], 'replica-delay'),
            dbCpu: num(values['db-cpu'], 'db-cpu'),
            workers: num(values.workers, 'workers'),
            ...(values['no-cache'] ? { cache: false } : {}),
            ...(values.monitor ? { monitor: true } : values['no-monitor'] ? { monitor: false } : {}),
            ...(autoscale ? { autoscale } : {}),
            ...(values.ha ? { ha: true } : {}),
            ...(values.sync ? { sync: true } : {}),
            ...(values.pgbouncer ? { pgbouncer: true } : {}),
            maxConnections: num(values['max-connections'], 'max-connections'),
            shards: num(values.shards, 'shards'),
            stateDir: stateDir(),
            json: values.json,
          },
          say,
        );
      }
      case 'shards': {
        const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, strict: true });
        const { shardsCommand } = await import('../launcher/shards-command.ts');
        return await shardsCommand(stateDir(), values.json ?? false);
      }
      case 'reshard': {
        const { values } = parseArgs({ args: rest, options: { to: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
        const to = num(values.to, 'to');
        if (to === undefined) throw new ConfigError('to', 'is required', 'use ladder reshard --to S');
        const { reshardCommand } = await import('../launcher/reshard-command.ts');
        return await reshardCommand(stateDir(), to, values.json ?? false);
      }
      case 'status': {
        const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, strict: true });
        const { status } = await import('../launcher/up-commands.ts');
        return status(stateDir(), values.json ?? false);
      }
      case 'alerts': {
        const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, strict: true });
        const { alertsCommand } = await import('../launcher/monitoring/alerts-command.ts');
        return await alertsCommand(stateDir(), values.json ?? false);
      }
      case 'dashboard': {
        parseArgs({ args: rest, options: {}, strict: true });
        const { dashboardCommand } = await import('../launcher/monitoring/alerts-command.ts');
        return dashboardCommand(stateDir());
      }
      case 'down': {
        parseArgs({ args: rest, options: {}, strict: true });
        const { down } = await import('../launcher/up-commands.ts');
        return await down(stateDir(), say);
      }
      case 'chaos': {
        const { values, positionals } = parseArgs({
          args: rest,
          options: { down: { type: 'string' } },
          allowPositionals: true,
          strict: true,
        });
        if (positionals.length > 2)
          throw new ConfigError(
            'chaos',
            `one action and one node, not ${positionals.length} arguments`,
            'use ladder chaos kill|stop|cont|term NODE',
          );
        const { DEFAULT_CHAOS_DOWN_S, MAX_CHAOS_DOWN_S } = await import('../launcher/chaos-hold.ts');
        const down = num(values.down, 'down') ?? DEFAULT_CHAOS_DOWN_S;
        if (!(down >= 0 && down <= MAX_CHAOS_DOWN_S))
          throw new ConfigError('down', `"${down}" seconds`, `use 0 to ${MAX_CHAOS_DOWN_S} (0: restarted at once)`);
        if (values.down !== undefined && positionals[0] !== 'kill')
          throw new ConfigError('down', 'applies to kill only', 'use ladder chaos kill NODE --down S');
        const { chaos } = await import('../launcher/up-commands.ts');
        return await chaos(stateDir(), positionals[0], positionals[1], say, down);
      }
      case 'logs': {
        const { values, positionals } = parseArgs({
          args: rest,
          options: { lines: { type: 'string' } },
          allowPositionals: true,
          strict: true,
        });
        const { logs } = await import('../launcher/up-commands.ts');
        const lines = num(values.lines, 'lines') ?? 200;
        if (!Number.isInteger(lines) || lines < 1 || lines > 100_000) {
          throw new ConfigError('lines', `"${lines}" lines`, 'use a whole number from 1 to 100000');
        }
        if (positionals.length > 1)
          throw new ConfigError(
            'logs',
            `one node at a time, not ${positionals.length}`,
            'use ladder logs NODE [--lines N]',
          );
        return logs(stateDir(), positionals[0], lines, say);
      }
      case 'scale': {
        const { values } = parseArgs({ args: rest, options: { web: { type: 'string' } }, strict: true });
        const web = num(values.web, 'web');
        if (web === undefined) throw new ConfigError('web', 'is required', 'use ladder scale --web K');
        // The range is checked against the running topology (with or without a balancer) in scale().
        const { scale } = await import('../launcher/up-commands.ts');
        return await scale(stateDir(), web, say);
      }
      case 'synth': {
        const { values } = parseArgs({
          args: rest,
          options: {
            rung: { type: 'string' },
            target: { type: 'string' },
            out: { type: 'string' },
            web: { type: 'string' },
            replicas: { type: 'string' },
            cpu: { type: 'string' },
            'no-cache': { type: 'boolean' },
            ha: { type: 'boolean' },
            region: { type: 'string' },
            'certificate-arn': { type: 'string' },
            image: { type: 'string' },
            database: { type: 'string' },
            validate: { type: 'boolean' },
            autoscale: { type: 'string' },
            'target-cpu': { type: 'string' },
            'scale-in-window': { type: 'string' },
            json: { type: 'boolean' },
          },
          strict: true,
        });
        const autoscale = autoscaleFlags(values);
        const rung = num(values.rung, 'rung');
        if (rung === undefined) throw new ConfigError('rung', 'is required', 'use ladder synth --rung N');
        const target = values.target ?? 'aws';
        const { synth } = await import('../deploy/synth.ts');
        const result = await synth({
          rung,
          web: num(values.web, 'web'),
          replicas: num(values.replicas, 'replicas'),
          cpu: num(values.cpu, 'cpu'),
          ...(values['no-cache'] ? { cache: false } : {}),
          ...(autoscale ? { autoscale } : {}),
          ...(values.ha ? { ha: true } : {}),
          target,
          outDir: values.out ?? `synth.out/rung-${rung}-${target}`,
          region: values.region,
          certificateArn: values['certificate-arn'],
          image: values.image,
          database: values.database,
          validate: values.validate,
        });
        // The same note `ladder up` gives for a rung built above unbuilt ones.
        for (const s of result.skipped) say(`${s} is not built yet: this topology runs without it`);
        if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
        else {
          say(`rung ${result.rung} (${result.target}) synthesized into ${result.out} in ${result.ms} ms`);
          const cost = result.monthlyUsd;
          if (cost)
            say(
              `roughly $${cost.total.toFixed(0)}/month at the default sizes (${cost.region} on-demand prices of ${cost.pricesDate}, docs/deploy.md)`,
            );
          for (const f of result.files) process.stdout.write(`${path.join(result.out, f)}\n`);
        }
        return 0;
      }
      case '__supervise': {
        const { runSupervisor } = await import('../launcher/supervisor-main.ts');
        return await runSupervisor();
      }
      case '__web': {
        const { runWeb } = await import('../server/web-main.ts');
        return await runWeb();
      }
      case '__worker': {
        const { runWorker } = await import('../server/worker-main.ts');
        return await runWorker();
      }
      case '__relay': {
        const { runRelay } = await import('../server/relay-main.ts');
        return await runRelay();
      }
      case 'queue': {
        const { values, positionals } = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, allowPositionals: true, strict: true });
        const { queueCommand } = await import('../launcher/queue-command.ts');
        return await queueCommand(stateDir(), positionals, values.json ?? false, say);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(await help());
        return cmd === undefined ? 1 : 0;
      default:
        say(`unknown command "${cmd}"`);
        process.stdout.write(await help());
        return 1;
    }
  } catch (err) {
    return fail(err);
  }
}
