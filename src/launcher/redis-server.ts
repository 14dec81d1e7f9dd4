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

/** `redis` when the server on port is a primary, `redis-replica` when a replica; undefined when it does not answer. */
export async function redisRole(port: number): Promise<'redis' | 'redis-replica' | undefined> {
  const info = await replicationInfo(port);
  const m = info === undefined ? null : /role:(master|slave)/.exec(info);
  return m ? (m[1] === 'master' ? 'redis' : 'redis-replica') : undefined;
}

/** True once the replica on port has its primary's data set and streams from it. */
export async function replicaInSync(port: number): Promise<boolean> {
  return /master_link_status:up/.test((await replicationInfo(port)) ?? '');
}

/** INFO replication's text (a bulk reply, read whole), or undefined when the server does not answer. */
function replicationInfo(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const conn = net.createConnection({ host: '127.0.0.1', port });
    let text = '';
    const done = (info: string | undefined) => {
      conn.destroy();
      resolve(info);
    };
    conn.setTimeout(1000, () => done(undefined));
    conn.on('connect', () => conn.write('INFO replication\r\n'));
    conn.on('data', (d) => {
      text += d.toString();
      const m = /^\$(\d+)\r\n/.exec(text);
      if (m && Buffer.byteLength(text) >= m[0].length + Number(m[1])) done(text);
      else if (text.startsWith('-')) done(undefined);
    });
    conn.on('error', () => done(undefined));
  });
}
