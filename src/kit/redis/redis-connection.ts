// A Redis connection for the web tier (rung 7: sessions and rate limits), set up so that a
// Redis outage never hangs a request. While Redis is unreachable every command fails at
// once or within the command deadline, the client reconnects by itself forever with a
// capped backoff, and the outage is logged once when it starts and once when it ends,
// never once per retry or per request.
import { Redis, type RedisOptions } from 'ioredis';

/** The settings, in one commented table. */
export const REDIS_DEFAULTS = {
  // A command that has no reply by then fails, so a route waits at most this per Redis call.
  // Replies on loopback or in one AZ take well under a millisecond; 400 ms is a dead server.
  commandTimeoutMs: 400,
  // No byte from Redis for this long while replies are due: the socket is dead (a stopped or
  // cut-off server keeps TCP open). Equal to the command deadline, so that once one command
  // has timed out the next ones fail at once instead of each waiting its own 400 ms.
  socketTimeoutMs: 400,
  // TCP connect deadline; a refused connection fails sooner.
  connectTimeoutMs: 1000,
  // Reconnect backoff: 50 ms doubling up to 1 s (plus jitter so that a fleet of web servers
  // does not reconnect in step). Capped low so sessions come back within ~1 s of Redis.
  retryBaseMs: 50,
  retryMaxMs: 1000,
  retryJitterMs: 100,
  // Bound on QUIT at shutdown before the socket is just closed.
  quitTimeoutMs: 500,
  // How long a web process waits for Redis before it starts serving anyway: redirects need
  // no Redis, and session routes answer 503 until it is there.
  startupWaitMs: 3000,
} as const;

/** The log lines this module writes: pino's shape, so Fastify's logger fits. */
export interface RedisLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface RedisConnectionOptions {
  /** redis://[[user]:password@]host[:port][/db] (or rediss:// for TLS). Never logged whole. */
  url: string;
  /** What the connection is for, in logs and in the ladder_redis_up metric. */
  role: string;
  log?: RedisLog;
  /** Deadline of a command (and of socket silence while replies are due); default commandTimeoutMs above. */
  commandTimeoutMs?: number;
  /** The log line when it is lost (what the process does meanwhile). */
  downMessage?: string;
  /** Told true when the connection becomes ready, false when it is lost. */
  onStateChange?: (up: boolean) => void;
  /**
   * Sentinels to ask for the primary (--ha): the client connects to whichever Redis they name
   * `sentinelName`, and after a failover asks again when it reconnects. The URL's password
   * and db still apply; its host and port are not used.
   */
  sentinels?: readonly { host: string; port: number }[];
  sentinelName?: string;
}

export interface RedisConnection {
  readonly client: Redis;
  /** host:port, safe to log (no password). */
  readonly target: string;
  /** True while commands can be sent. */
  isUp(): boolean;
  /** Resolves true once ready, or false after timeoutMs (Redis down at start is not fatal). */
  waitReady(timeoutMs: number): Promise<boolean>;
  /** Starts connecting (and reconnecting for ever); until then every command fails. */
  connect(): void;
  /** QUITs (bounded), then closes the socket and stops reconnecting. Idempotent. */
  close(): Promise<void>;
}

export function redisTarget(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || '6379'}`;
}

export function createRedisConnection(opts: RedisConnectionOptions): RedisConnection {
  const d = REDIS_DEFAULTS;
  const target = opts.sentinels?.length ? `sentinel ${opts.sentinelName ?? 'sessions'}` : redisTarget(opts.url);
  const options: RedisOptions = {
    // Connect when told (connect() below), once the caller's logger exists, and through
    // client.connect() so that its rejection is handled here.
    lazyConnect: true,
    // Fail fast while disconnected: a queued command would wait for the reconnect, and a
    // request would hang with it.
    enableOfflineQueue: false,
    commandTimeout: opts.commandTimeoutMs ?? d.commandTimeoutMs,
    socketTimeout: opts.commandTimeoutMs ?? d.socketTimeoutMs,
    connectTimeout: d.connectTimeoutMs,
    maxRetriesPerRequest: 1,
    // A command whose caller has already had its timeout must not run later, on the next
    // connection (an INCR counted twice, a session written back after a logout).
    autoResendUnfulfilledCommands: false,
    retryStrategy: (times) =>
      Math.min(d.retryBaseMs * 2 ** Math.min(times - 1, 16), d.retryMaxMs) +
      Math.floor(Math.random() * d.retryJitterMs),
    connectionName: `ladder-${opts.role}`,
  };
  const sentinel = opts.sentinels !== undefined && opts.sentinels.length > 0;
  const client = sentinel ? new Redis(sentinelOptions(opts, options)) : new Redis(opts.url, options);

  let up = false;
  let closing = false;
  let downSince: number | undefined = Date.now(); // not yet connected counts as down, unlogged
  let logged = false;

  const markDown = (err?: Error) => {
    if (closing) return;
    if (up) {
      up = false;
      downSince = Date.now();
      logged = false;
      opts.onStateChange?.(false);
    }
    if (!logged) {
      logged = true;
      // Only message and code: errors of handshake commands carry their arguments, and
      // HELLO's include the password.
      opts.log?.warn(
        {
          redis: target,
          role: opts.role,
          error: err ? { message: err.message, code: (err as NodeJS.ErrnoException).code } : undefined,
        },
        opts.downMessage ?? 'Redis unreachable; routes that need it answer 503 until it is back (reconnecting)',
      );
    }
  };

  client.on('ready', () => {
    const wasDownMs = logged && downSince !== undefined ? Date.now() - downSince : undefined;
    up = true;
    downSince = undefined;
    logged = false;
    opts.onStateChange?.(true);
    if (wasDownMs !== undefined)
      opts.log?.info({ redis: target, role: opts.role, downMs: wasDownMs }, 'Redis reachable again');
  });
  // A listener is required anyway: without one ioredis prints every error to the console.
  client.on('error', (err: Error) => markDown(err));
  client.on('close', () => markDown());

  return {
    client,
    target,
    connect: () => {
      if (closing || client.status !== 'wait') return;
      // A failure also arrives as an 'error' event; either way markDown logs it once per
      // outage, and the client's retries go on.
      client.connect().catch((err: unknown) => markDown(err instanceof Error ? err : new Error(String(err))));
    },
    isUp: () => up,
    waitReady: (timeoutMs) =>
      new Promise<boolean>((resolve) => {
        if (up) return resolve(true);
        const onReady = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          client.off('ready', onReady);
          resolve(false);
        }, timeoutMs);
        client.once('ready', onReady);
      }),
    close: async () => {
      if (closing) return;
      closing = true;
      if (up) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          client.quit().catch((err: unknown) =>
            opts.log?.info(
              { redis: target, role: opts.role, error: err instanceof Error ? err.message : String(err) },
              'Redis QUIT failed at close; closing the socket',
            ),
          ),
          new Promise((r) => (timer = setTimeout(r, d.quitTimeoutMs))),
        ]);
        clearTimeout(timer);
      }
      client.disconnect(); // stops any reconnect timer too
      up = false;
    },
  };
}

/** ioredis' sentinel mode with the URL's password and db, and the same failure settings. */
function sentinelOptions(opts: RedisConnectionOptions, base: RedisOptions): RedisOptions {
  const u = new URL(opts.url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    ...base,
    sentinels: opts.sentinels!.map((s) => ({ host: s.host, port: s.port })),
    name: opts.sentinelName ?? 'sessions',
    role: 'master',
    db,
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    // Asking a sentinel is one more round trip at each reconnect; a dead one is skipped.
    sentinelRetryStrategy: (times) => Math.min(100 * times, 1000),
    // Subscribes to the sentinels' +switch-master: a client still connected to a demoted
    // primary moves at once instead of at its next error.
    failoverDetector: true,
  };
}
