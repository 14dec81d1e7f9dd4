// The typed topology: what runs, how many, where. Rungs are cumulative presets; every
// feature can also be switched on by itself. Validated once, with messages that name the
// field and the fix, then frozen.
import { buildAutoscale, type AutoscaleConfig, type AutoscaleInput } from './autoscale-config.ts';
import { ConfigError } from './config-error.ts';

export interface Features {
  loadBalancer: boolean; // rung 3
  replicas: boolean; // rung 4
  cache: boolean; // rung 5
  cdn: boolean; // rung 6
  sharedSessions: boolean; // rung 7
  regions: boolean; // rung 8
  queue: boolean; // rung 9
  shards: boolean; // rung 10
  monitoring: boolean; // the "+" rung
}

export interface Topology {
  rung: number;
  web: { count: number; host: string; port: number; cpu: number | undefined };
  database: {
    kind: 'embedded' | 'external';
    url: string | undefined;
    /** Streaming replicas of the primary (rung 4 and up: 2 unless set; 0 switches them off). */
    replicas: number;
    /** recovery_min_apply_delay of the replicas: lag on demand, for tests and demos. */
    replicaDelayMs: number;
    /** Cores each database node (primary and replicas) is capped at. */
    cpu: number | undefined;
    /** max_connections of the primary (--max-connections; Postgres' 200 unless told). */
    maxConnections: number;
  };
  features: Features;
  /** Folder for data, logs and state (default .ladder). */
  stateDir: string;
  /** How the balancer spreads requests (rung 3 and up). */
  balance: 'roundrobin' | 'leastconn';
  /** Lower rungs' features this topology runs without, because they are not built yet. */
  skipped: string[];
  /** The web tier sizes itself (`--autoscale MIN:MAX`, rung 3 and up). */
  autoscale?: AutoscaleConfig;
  /** Rung 9: worker processes consuming the broker (`--workers W`); 0 without the queue feature. */
  workers: number;
  /**
   * --ha (rung 4 and up): the database nodes pg1..pgN run under Patroni with a 3-member etcd,
   * so a lost primary is replaced automatically. `sync`: Patroni's synchronous_mode.
   */
  ha: { enabled: boolean; sync: boolean };
  /** --pgbouncer: PgBouncer (transaction mode) between the web tier and Postgres. */
  pgbouncer: boolean;
  /** Rung 10: shard clusters (--shards S), each a primary with `database.replicas` replicas; 0 below rung 10. */
  shards: number;
}

export interface RungPreset {
  rung: number;
  title: string;
  /** Built and runnable today; a rung that is not is refused, never faked. */
  built: boolean;
  /** The `ladder synth` targets that have artefacts for it (absent: every target); synth refuses the others. */
  deployable?: readonly ('aws' | 'k8s')[];
  features: Partial<Features>;
}

const NONE: Features = {
  loadBalancer: false, replicas: false, cache: false, cdn: false, sharedSessions: false,
  regions: false, queue: false, shards: false, monitoring: false,
};

export const RUNGS: readonly RungPreset[] = [
  { rung: 1, title: 'one server with an embedded Postgres', built: true, features: {} },
  { rung: 2, title: 'several web servers', built: true, features: {} },
  { rung: 3, title: 'a load balancer (HAProxy)', built: true, features: { loadBalancer: true } },
  { rung: 4, title: 'a Postgres primary with read replicas', built: true, features: { replicas: true } },
  { rung: 5, title: 'a cache tier (Redis + in-process L1)', built: true, features: { cache: true } },
  { rung: 6, title: 'a CDN edge (Varnish)', built: true, features: { cdn: true } },
  { rung: 7, title: 'a stateless web tier (sessions in Redis)', built: true, features: { sharedSessions: true } },
  { rung: 8, title: 'several regions', built: false, features: { regions: true } },
  { rung: 9, title: 'message queues and workers', built: true, features: { queue: true } },
  { rung: 10, title: 'sharded databases', built: true, deployable: ['aws'], features: { shards: true } },
];

export const MAX_RUNG = RUNGS.length;

/** Web servers a topology may run: one process each, on one machine. */
export const MAX_WEB = 64;
/** Behind the balancer: HAProxy's pre-declared server slots (scaling adds servers into them without a reload). */
export const MAX_WEB_BALANCED = 16;

/**
 * Checks a web server count (`--web K` of `up` and `scale`) and returns it, or throws a
 * ConfigError naming the range and why.
 */
export function checkWebCount(web: number, loadBalancer: boolean): number {
  const max = loadBalancer ? MAX_WEB_BALANCED : MAX_WEB;
  const why = loadBalancer ? `HAProxy has ${MAX_WEB_BALANCED} server slots` : `each is a process on this machine`;
  if (!Number.isInteger(web)) throw new ConfigError('web', `"${web}" is not a whole number of web servers`, `use 1 to ${max}`);
  if (web < 1) throw new ConfigError('web', `"${web}" web servers would serve nothing`, `use 1 to ${max} (\`ladder down\` stops a topology)`);
  if (web > max) throw new ConfigError('web', `"${web}" web servers is more than ${max}`, `use 1 to ${max} (${why})`);
  return web;
}

/** A host to bind: an IPv4 or IPv6 address or a host name (what HAProxy and the web servers accept). */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|[0-9A-Fa-f:.]{2,45})$/;

/** The first rung that runs Prometheus, Alertmanager and the dashboard unless --no-monitor. */
export const MONITOR_FROM_RUNG = 3;

/** Workers of rung 9 unless told (--workers W), and the most a topology may run. */
export const DEFAULT_WORKERS = 2;
export const MAX_WORKERS = 16;

/** Replicas a topology with the replicas feature starts unless told (--replicas R). */
export const DEFAULT_REPLICAS = 2;
export const MAX_REPLICAS = 8;

/** Rung 10: shard clusters unless told (--shards S), and the most a topology may run. */
export const DEFAULT_SHARDS = 2;
export const MAX_SHARDS = 8;

/** Features of rung N: everything of the rungs below it, cumulatively. */
export function featuresOf(rung: number): Features {
  const f = { ...NONE };
  for (const p of RUNGS) if (p.rung <= rung) Object.assign(f, p.features);
  return f;
}

/** Like featuresOf, but only what is built; the rest is named in `skipped`. */
function builtFeaturesOf(rung: number): { features: Features; skipped: string[] } {
  const features = { ...NONE };
  const skipped: string[] = [];
  for (const p of RUNGS) {
    if (p.rung > rung) continue;
    if (p.built) Object.assign(features, p.features);
    else skipped.push(`rung ${p.rung} (${p.title})`);
  }
  return { features, skipped };
}

export interface TopologyInput {
  rung?: number;
  web?: number;
  host?: string;
  port?: number;
  cpu?: number;
  databaseUrl?: string;
  replicas?: number;
  replicaDelayMs?: number;
  dbCpu?: number;
  /** false: run without the cache tier (rung 5 and up include it unless told). */
  cache?: boolean;
  /** Prometheus, Alertmanager and the dashboard: on from rung 3 unless false (--no-monitor); true (--monitor) below. */
  monitor?: boolean;
  stateDir?: string;
  balance?: string;
  autoscale?: AutoscaleInput;
  /** Rung 9: worker processes (--workers W). */
  workers?: number;
  /** --ha: Patroni + etcd failover (rung 4 and up). */
  ha?: boolean;
  /** --sync: Patroni synchronous_mode (with --ha). */
  sync?: boolean;
  /** --pgbouncer: PgBouncer between the web tier and Postgres. */
  pgbouncer?: boolean;
  /** --max-connections: the primary's max_connections. */
  maxConnections?: number;
  /** Rung 10: shard clusters (--shards S). */
  shards?: number;
}

/**
 * Connections one web server may hold on the primary: its pool (POOL_DEFAULTS.max in
 * src/kit/db/pool.ts, 10) and the replica monitor's one. PgBouncer goes in front of the
 * primary by itself once the web tier's total would pass its max_connections.
 */
export const PRIMARY_CONNECTIONS_PER_WEB = 11;
export const DEFAULT_MAX_CONNECTIONS = 200;

export function buildTopology(input: TopologyInput): Readonly<Topology> {
  const rung = input.rung ?? 1;
  if (!Number.isInteger(rung) || rung < 1 || rung > MAX_RUNG) {
    throw new ConfigError('rung', `"${String(input.rung)}" is not a rung`, `use a whole number from 1 to ${MAX_RUNG}`);
  }
  const preset = RUNGS[rung - 1]!;
  if (!preset.built) {
    const built = RUNGS.filter((r) => r.built).map((r) => r.rung).join(', ');
    throw new ConfigError(
      'rung',
      `rung ${rung} (${preset.title}) is not built yet`,
      `use a rung that is built (${built}); see docs/rungs.md for what each adds and when`,
    );
  }
  const { features, skipped } = builtFeaturesOf(rung);
  // Rung 10 runs rungs 3-7 beneath its shards; the cache tier and rung 9's relay and workers
  // read and write one database, and are left out until they route by shard (docs/rungs.md).
  if (features.shards) {
    features.cache = false;
    features.queue = false;
    skipped.push('rung 5 (the cache tier) and rung 9 (queues and workers) with shards');
  }
  const shards = input.shards ?? (features.shards ? DEFAULT_SHARDS : 0);
  if (input.shards !== undefined && !features.shards) throw new ConfigError('shards', `rung ${rung} has one database`, 'use --rung 10 for shards, or drop --shards');
  if (!Number.isInteger(shards) || (features.shards && (shards < 1 || shards > MAX_SHARDS))) {
    throw new ConfigError('shards', `"${shards}" shards`, `use 1 to ${MAX_SHARDS}`);
  }
  const web = checkWebCount(input.web ?? (rung >= 2 ? 2 : 1), features.loadBalancer);
  // --web of an autoscaled tier defaults to its MIN: the autoscaler adds what the load asks for.
  const autoscale = input.autoscale
    ? buildAutoscale(input.autoscale, { loadBalancer: features.loadBalancer, web: input.web, maxWeb: MAX_WEB_BALANCED })
    : undefined;
  const webCount = autoscale && input.web === undefined ? autoscale.min : web;
  if (rung < 2 && web !== 1) throw new ConfigError('web', `rung ${rung} runs one web server`, 'use --rung 2 or more for several, or drop --web');
  const host = input.host ?? '127.0.0.1';
  if (host.length > 253 || !HOST.test(host)) throw new ConfigError('host', `"${host.slice(0, 100)}" is not a host`, 'use an address such as 127.0.0.1 or ::1, or a host name');
  const port = input.port ?? 3000;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError('port', `"${port}" is not a port`, 'use 0 to 65535 (0 picks a free one)');
  const cpu = input.cpu;
  if (cpu !== undefined && !(cpu >= 0.01 && cpu <= 64)) throw new ConfigError('cpu', `"${cpu}" cores`, 'use a number of cores from 0.01 to 64, such as 0.5');
  const replicas = input.replicas ?? (features.replicas ? DEFAULT_REPLICAS : 0);
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > MAX_REPLICAS) {
    throw new ConfigError('replicas', `"${replicas}" replicas`, `use 0 to ${MAX_REPLICAS}`);
  }
  if (rung < 2 && replicas > 0) {
    throw new ConfigError('replicas', 'rung 1 runs one embedded Postgres', 'use `ladder up --rung 4` (or --rung 2 or 3 with --replicas R)');
  }
  // The flag switches the feature on below rung 4, and off (0) from rung 4 up.
  features.replicas = replicas > 0;
  const replicaDelayMs = input.replicaDelayMs ?? 0;
  if (!Number.isInteger(replicaDelayMs) || replicaDelayMs < 0 || replicaDelayMs > 600_000) {
    throw new ConfigError('replica-delay', `"${replicaDelayMs}" ms`, 'use a whole number of milliseconds from 0 to 600000');
  }
  if (replicaDelayMs > 0 && replicas === 0) {
    throw new ConfigError('replica-delay', 'there are no replicas to delay', 'add --replicas R (rung 4 and up start 2 unless told otherwise)');
  }
  const dbCpu = input.dbCpu;
  if (dbCpu !== undefined && !(dbCpu >= 0.01 && dbCpu <= 64)) throw new ConfigError('db-cpu', `"${dbCpu}" cores`, 'use a number of cores from 0.01 to 64, such as 0.25');
  if (dbCpu !== undefined && rung < 2) throw new ConfigError('db-cpu', 'rung 1 runs in the foreground without caps', 'use `ladder up --rung 2` or more');
  if (input.databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(input.databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'is not a postgres:// URL', 'use postgres://user:password@host:port/database');
  }
  if (input.cache === false) features.cache = false;
  // Monitoring is the "+" rung, beside the ladder rather than on it: on by default once there
  // is a tier to watch (the balancer, rung 3), and a flag either way.
  features.monitoring = input.monitor ?? rung >= MONITOR_FROM_RUNG;
  const workers = input.workers ?? (features.queue ? DEFAULT_WORKERS : 0);
  if (input.workers !== undefined && !features.queue) {
    throw new ConfigError('workers', `rung ${rung} has no queue to work on`, 'use --rung 9 or more for workers, or drop --workers');
  }
  if (!Number.isInteger(workers) || (features.queue && (workers < 1 || workers > MAX_WORKERS))) {
    throw new ConfigError('workers', `"${workers}" workers`, `use 1 to ${MAX_WORKERS}`);
  }
  const balance = input.balance ?? 'roundrobin';
  if (balance !== 'roundrobin' && balance !== 'leastconn') {
    throw new ConfigError('balance', `"${balance}" is not a balancing algorithm`, 'use roundrobin or leastconn');
  }
  const ha = input.ha === true;
  if (ha && rung < 4) throw new ConfigError('ha', `rung ${rung} has no replicas to fail over to`, 'use --ha with --rung 4 or more');
  if (ha && replicas < 1) throw new ConfigError('replicas', 'with --ha at least one replica must be there to take over', 'use --replicas 1 or more (2 unless told)');
  if (ha && replicaDelayMs > 0) throw new ConfigError('replica-delay', 'Patroni manages the replicas of --ha', 'drop --replica-delay with --ha');
  if (ha && input.databaseUrl !== undefined) throw new ConfigError('DATABASE_URL', 'an external database cannot be run under Patroni', 'unset DATABASE_URL with --ha');
  if (input.sync === true && !ha) throw new ConfigError('sync', 'synchronous mode is a Patroni setting', 'add --ha (rung 4 and up)');
  const maxConnections = input.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  if (!Number.isInteger(maxConnections) || maxConnections < 20 || maxConnections > 10_000) {
    throw new ConfigError('max-connections', `"${maxConnections}" connections`, 'use a whole number from 20 to 10000');
  }
  if (features.shards && ha) throw new ConfigError('ha', 'Patroni clusters per shard are not built yet', 'drop --ha at rung 10');
  if (features.shards && input.pgbouncer === true) throw new ConfigError('pgbouncer', 'PgBouncer per shard is not built yet', 'drop --pgbouncer at rung 10');
  if (features.shards && input.databaseUrl !== undefined) throw new ConfigError('DATABASE_URL', 'rung 10 starts its own shard clusters and catalog', 'unset DATABASE_URL at rung 10');
  // Asked for, or needed: the web tier's pools would not fit in max_connections.
  const pgbouncer = input.pgbouncer === true || (rung >= 2 && !ha && !features.shards && web * PRIMARY_CONNECTIONS_PER_WEB > maxConnections);
  if (input.pgbouncer === true && ha) {
    throw new ConfigError('pgbouncer', 'PgBouncer in front of a Patroni cluster (following its leader) is not built yet', 'use --pgbouncer without --ha');
  }
  if (ha && web * PRIMARY_CONNECTIONS_PER_WEB > maxConnections) {
    throw new ConfigError('max-connections', `${web} web servers may open ${web * PRIMARY_CONNECTIONS_PER_WEB} connections, over max_connections ${maxConnections}`, 'raise --max-connections or run fewer web servers with --ha');
  }
  // The relay and the workers connect to the primary they are given; they do not follow a
  // Patroni failover yet (the web servers do, through the leader's API).
  if (ha && features.queue) throw new ConfigError('ha', 'the relay and workers of rung 9 do not follow a Patroni failover yet', 'drop --ha at rung 9, or use --rung 7 with --ha');
  if (pgbouncer && rung < 2) throw new ConfigError('pgbouncer', 'rung 1 runs one embedded Postgres in the foreground', 'use --pgbouncer with `ladder up --rung 2` or more');
  return Object.freeze({
    rung,
    web: { count: webCount, host, port, cpu },
    database: {
      kind: input.databaseUrl ? 'external' : 'embedded',
      url: input.databaseUrl,
      replicas,
      replicaDelayMs,
      cpu: dbCpu,
      maxConnections,
    },
    features,
    stateDir: input.stateDir ?? '.ladder',
    balance,
    skipped,
    workers,
    ...(autoscale ? { autoscale } : {}),
    ha: { enabled: ha, sync: ha && input.sync === true },
    pgbouncer,
    shards,
  } satisfies Topology);
}
