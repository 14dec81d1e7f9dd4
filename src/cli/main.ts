// The `ladder` command. `--json` output is for scripts and stays stable.
import { parseArgs } from 'node:util';
import { ConfigError } from '../kit/errors.ts';
import { buildTopology, RUNGS } from '../topology/topology.ts';

const HELP = `ladder: Links on every rung of the scaling ladder

  ladder start                 rung 1 in the foreground (what npm start runs)
                               PORT, HOST, DATABASE_URL, LOG_LEVEL, LADDER_STATE_DIR override the defaults
  ladder migrate               apply pending database migrations and exit
  ladder bench SCENARIO        run a load scenario (redirect), print and save the report
  ladder rungs [--json]        the rungs and which are built
  ladder up|status|down|chaos  the background launcher (rungs 2 and up; not built yet)
`;

function say(msg: string): void {
  process.stderr.write(`ladder: ${msg}\n`);
}

function fail(err: unknown): number {
  if (err instanceof ConfigError) say(err.message);
  else if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') say(`the port is already in use (${err.message}). Set PORT to a free port.`);
    else say(err.message);
  } else say(String(err));
  return 1;
}

function envPort(): number | undefined {
  const raw = process.env.PORT;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError('PORT', `"${raw}" is not a port`, 'set PORT to 0..65535');
  return n;
}

async function start(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { rung: { type: 'string' } }, strict: true });
  const topology = buildTopology({
    rung: values.rung === undefined ? 1 : Number(values.rung),
    port: envPort(),
    host: process.env.HOST,
    databaseUrl: process.env.DATABASE_URL || undefined,
    stateDir: process.env.LADDER_STATE_DIR || undefined,
  });
  if (topology.rung !== 1) throw new ConfigError('rung', '`ladder start` runs rung 1', 'use `ladder up --rung N` for higher rungs');
  const { startRung1 } = await import('../launcher/rung1.ts');
  say(topology.database.kind === 'embedded' ? 'starting the embedded Postgres…' : 'connecting to DATABASE_URL…');
  const rung = await startRung1(topology, {}, (m) => say(m));
  say(`Links is serving at ${rung.url}`);
  process.stdout.write(`${rung.url}\n`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) {
        say(`${sig} again: exiting now`);
        process.exit(1);
      }
      stopping = true;
      say(`${sig}: finishing in-flight requests, flushing clicks…`);
      rung.stop().then(resolve, (err: unknown) => {
        fail(err);
        resolve();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  say('stopped');
  return 0;
}

async function migrateCmd(): Promise<number> {
  const topology = buildTopology({
    rung: 1,
    databaseUrl: process.env.DATABASE_URL || undefined,
    stateDir: process.env.LADDER_STATE_DIR || undefined,
  });
  const { startDatabase } = await import('../launcher/rung1.ts');
  const { acquireLock } = await import('../launcher/state-dir.ts');
  const release = topology.database.kind === 'embedded' ? acquireLock(`${topology.stateDir}/rung1`, 'Ladder rung 1') : () => undefined;
  try {
    const db = await startDatabase(topology, (m) => say(m));
    await db.postgres?.stop();
    say('migrations are up to date');
  } finally {
    release();
  }
  return 0;
}

function rungs(argv: string[]): number {
  const json = argv.includes('--json');
  if (json) process.stdout.write(JSON.stringify(RUNGS.map(({ rung, title, built }) => ({ rung, title, built }))) + '\n');
  else for (const r of RUNGS) process.stdout.write(`${String(r.rung).padStart(2)}  ${r.built ? 'built    ' : 'not built'}  ${r.title}\n`);
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
        const { values } = parseArgs({ args: rest, options: { rung: { type: 'string' } }, strict: false });
        buildTopology({ rung: values.rung === undefined ? 1 : Number(values.rung) }); // refuses rungs not built
        say('the background launcher (`ladder up`) is not built yet; run rung 1 in the foreground with `ladder start`.');
        return 1;
      }
      case 'status':
      case 'down':
      case 'chaos':
      case 'logs':
        say(`\`ladder ${cmd}\` belongs to the background launcher, which is not built yet (rung 1 runs with \`ladder start\`).`);
        return 1;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return cmd === undefined ? 1 : 0;
      default:
        say(`unknown command "${cmd}"`);
        process.stdout.write(HELP);
        return 1;
    }
  } catch (err) {
    return fail(err);
  }
}
