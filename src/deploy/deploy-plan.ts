// What a topology becomes on a cloud: the sizes, counts and app settings both targets
// (AWS and Kubernetes) deploy. Derived from the same typed topology `ladder up` runs, so a
// rung means the same thing locally and in the cloud; the targets only spell it.
import { DEFAULTS } from '../kit/config.ts';
import { AUTOSCALE_DEFAULT_SCALE_IN_WINDOW_S, AUTOSCALE_DEFAULT_TARGET_CPU } from '../topology/autoscale-config.ts';
import { MAX_WEB_BALANCED, type Topology } from '../topology/topology.ts';

/** The port the app listens on inside its container (the app's default). */
export const APP_PORT = 3000;

/**
 * How long a web server takes to leave without dropping a request, the same sequence as
 * behind HAProxy (kit/http/server.ts `shutdown`): report not-ready for drainDelayMs so the
 * balancer takes it out, then let in-flight requests finish within shutdownTimeoutMs.
 * The balancers' settings are derived from these, never chosen apart from them.
 */
export interface Drain {
  drainDelayMs: number;
  shutdownTimeoutMs: number;
  /** ALB target group: keep in-flight requests to a deregistered target this long. */
  deregistrationDelaySeconds: number;
  /** Kubernetes: preStop sleeps this long so the endpoints stop routing before SIGTERM. */
  preStopSeconds: number;
  /** ECS stopTimeout / Kubernetes terminationGracePeriodSeconds: SIGTERM to SIGKILL. */
  stopGraceSeconds: number;
}

/**
 * A cloud balancer notices a not-ready target within one health check interval (ALB 5 s at
 * the least, Kubernetes readiness 5 s here); HAProxy's is 500 ms, hence the launcher's 1.5 s.
 */
const CLOUD_DRAIN_DELAY_MS = 5_000;
const PRE_STOP_SECONDS = 5;

export function drainOf(): Drain {
  const drainDelayMs = CLOUD_DRAIN_DELAY_MS;
  const shutdownTimeoutMs = DEFAULTS.shutdownTimeoutMs;
  const leaveSeconds = Math.ceil((drainDelayMs + shutdownTimeoutMs) / 1000);
  return {
    drainDelayMs,
    shutdownTimeoutMs,
    deregistrationDelaySeconds: leaveSeconds,
    preStopSeconds: PRE_STOP_SECONDS,
    // Room for the whole sequence plus a margin before the hard kill.
    stopGraceSeconds: PRE_STOP_SECONDS + leaveSeconds + 5,
  };
}

/** A container size: Fargate's valid CPU units and a memory that goes with them. */
export interface WebSize {
  /** vCPU in 1/1024 (256 = 0.25 vCPU). */
  cpuUnits: number;
  memoryMiB: number;
}

const SIZES: readonly WebSize[] = [
  { cpuUnits: 256, memoryMiB: 512 },
  { cpuUnits: 512, memoryMiB: 1024 },
  { cpuUnits: 1024, memoryMiB: 2048 },
  { cpuUnits: 2048, memoryMiB: 4096 },
  { cpuUnits: 4096, memoryMiB: 8192 },
  { cpuUnits: 8192, memoryMiB: 16384 },
  { cpuUnits: 16384, memoryMiB: 32768 },
];

/** `--cpu C` as a size hint: the smallest size with at least C cores (default 0.25). */
export function webSizeOf(cpu: number | undefined): WebSize {
  const units = Math.ceil((cpu ?? 0.25) * 1024);
  return SIZES.find((s) => s.cpuUnits >= units) ?? SIZES[SIZES.length - 1]!;
}

/** Database and cache node sizes at the default (small, burstable, Graviton). */
export const DB_INSTANCE = { cls: 't4g', size: 'micro', name: 'db.t4g.micro', storageGiB: 20 } as const;
export const CACHE_NODE = 'cache.t4g.micro';

export interface DeployPlan {
  rung: number;
  /** Lower rungs this one runs without (not built yet), as `ladder up` names them. */
  skipped: readonly string[];
  web: {
    /** Servers at start (ladder up's --web). */
    count: number;
    /** Autoscaling range (rung 2 and up scale on CPU; rung 1 is one server): --autoscale MIN:MAX, else the count to twice it. */
    min: number;
    max: number;
    /** CPU utilisation autoscaling holds the tier at, 0..1: the local autoscaler's target (--target-cpu). */
    targetCpu: number;
    /** Scale-in stabilization: the local --scale-in-window (HPA behavior, ECS scale-in cooldown). */
    scaleInWindowSeconds: number;
    size: WebSize;
  };
  balancer: boolean;
  /** Read replicas of the primary (passed to the app as DATABASE_REPLICA_URLS); at rung 10, of each shard's primary. */
  replicas: number;
  /** Rung 10: shard clusters (one RDS primary each, with `replicas` replicas) beside the catalog; 0 below. */
  shards: number;
  /** The cache tier's Redis (CACHE_REDIS_URL). */
  cache: boolean;
  /** Sessions and rate limits in a Redis of their own (REDIS_URL). */
  sessions: boolean;
  /** A CDN in front of the balancer (rung 6: CloudFront; locally the Varnish edge). */
  cdn: boolean;
  /**
   * Rung 9: the broker (BullMQ on a Redis of its own, never evicting) and the workers, a
   * service of their own; undefined below rung 9.
   */
  queue: { workers: number; size: WebSize } | undefined;
  /** --ha: RDS Multi-AZ behind RDS Proxy, ElastiCache with a replica and automatic failover (aws/high-availability.ts). */
  ha: boolean;
  drain: Drain;
  /** Settings every web server gets as plain environment (no secret among them). */
  env: Record<string, string>;
}

/** Autoscaling's ceiling: as many as the local balancer has slots for, at least twice the start. */
function maxWeb(count: number): number {
  return Math.max(count, Math.min(MAX_WEB_BALANCED, count * 2));
}

export function planOf(t: Readonly<Topology>): DeployPlan {
  const drain = drainOf();
  const balancer = t.features.loadBalancer;
  const env: Record<string, string> = {
    HOST: '0.0.0.0',
    PORT: String(APP_PORT),
    LOG_LEVEL: 'info',
    LADDER_STATE_DIR: '/tmp/ladder',
    SHUTDOWN_TIMEOUT_MS: String(drain.shutdownTimeoutMs),
  };
  if (balancer) env.DRAIN_DELAY_MS = String(drain.drainDelayMs);
  // Behind RDS Proxy (--ha), as behind PgBouncer locally: unnamed statements, which a
  // connection pool in transaction mode can carry (RDS Proxy would pin each session that
  // prepares a named one to its server connection).
  if (t.ha.enabled) env.DATABASE_STATEMENTS = 'unnamed';
  return {
    rung: t.rung,
    skipped: [...t.skipped],
    web: {
      count: t.web.count,
      min: t.autoscale?.min ?? t.web.count,
      max: t.autoscale?.max ?? (t.rung >= 2 ? maxWeb(t.web.count) : 1),
      targetCpu: t.autoscale?.targetCpu ?? AUTOSCALE_DEFAULT_TARGET_CPU,
      scaleInWindowSeconds: (t.autoscale?.scaleInWindowMs ?? AUTOSCALE_DEFAULT_SCALE_IN_WINDOW_S * 1000) / 1000,
      size: webSizeOf(t.web.cpu),
    },
    balancer,
    replicas: t.database.replicas,
    shards: t.shards,
    cache: t.features.cache,
    sessions: t.features.sharedSessions,
    cdn: t.features.cdn && balancer,
    queue: t.features.queue ? { workers: t.workers, size: webSizeOf(undefined) } : undefined,
    ha: t.ha.enabled,
    drain,
    env,
  };
}
