// redis-server's command line and a PING probe, shared by the launcher's Redis component
// (components/redis.ts), the cache bench and the tests: its own loopback port and folder,
// nothing persisted (the data it holds, sessions and rate-limit counts, may be lost with it),
// except the broker's (rung 9), which keeps an append-only file.
import net from 'node:net';

export interface RedisServerOptions {
  dir: string;
  port: number;
  maxMemoryMb?: number;
  /** When full, evict keys that have an expiry, least recently used first. */
  evict?: boolean;
  /**
   * Persist every write to an append-only file, fsynced every second, and refuse writes
   * when full rather than evict (the broker of rung 9: BullMQ's production settings).
   */
  durable?: boolean;
}

/** The broker's Redis (rung 9): AOF fsynced every second, never evicting. */
export const BROKER_REDIS = { durable: true } as const;

/** The cache tier's Redis (rung 5, and the cache bench): 256 MB, evicting. */
export const CACHE_REDIS = { maxMemoryMb: 256, evict: true } as const;

/** redis-server's command line: loopback only, its own port and folder, nothing persisted. */
export function redisServerArgs(o: RedisServerOptions): string[] {
  return [
    ...[
      '--port',
      String(o.port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      o.durable ? 'yes' : 'no',
      '--dir',
      o.dir,
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
    ],
    // A cache evicts the least recently used keys that have an expiry when full (values,
    // leases, tombstones), never the ones without (the generation, membership filters).
    ...(o.maxMemoryMb !== undefined ? ['--maxmemory', `${o.maxMemoryMb}mb`] : []),
    ...(o.evict ? ['--maxmemory-policy', 'volatile-lru'] : []),
    ...(o.durable ? ['--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction'] : []),
  ];
}

/** PING over a raw connection: true on +PONG. */
export function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      conn.destroy();
      resolve(ok);
    };
    conn.setTimeout(1000, () => done(false));
    conn.on('connect', () => conn.write('PING\r\n'));
    conn.on('data', (d) => done(d.toString().startsWith('+PONG')));
    conn.on('error', () => done(false));
  });
}
