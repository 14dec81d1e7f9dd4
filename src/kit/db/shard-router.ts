// Rung 10: the shard router, the Database the app sees as `req.db` when rows live on several
// Postgres clusters. A statement says what it is about (`db.on(key)`, database.ts' dbFor):
// a link by code or id, an owner's row of the "my links" index, or the directory (users, on
// the catalog database). The key's logical shard (shard-key.ts) and the cached shard map
// (shard-map.ts) name the cluster; the cluster's own Database (a PgDatabase, or a
// ReplicaRouter when it has replicas) runs it, with that cluster's consistency token.
//
// A statement without a key is refused (SHARD_KEY_REQUIRED, a bug in the caller, never an
// input error): it would otherwise run on one arbitrary shard and miss the others' rows.
// A read meant for every shard says so: `scatter()`, run in parallel with a timeout, whose
// partial-result policy the caller picks.
//
// Consistency across shards: tokens are per cluster (the cookie holds one per shard name,
// consistency-cookie.ts), and each cluster's router applies rung 4's rules to its own:
// a read on shard B after a write on shard A needs nothing from A's token, and a write on A
// followed by a read on A is served by a replica of A that has replayed it, or by A's
// primary. Read-your-writes and monotonic reads hold per shard, hence across shards: every
// row lives on exactly one shard (for one map version), and what a caller has seen of it is
// bounded by that shard's token alone.
import { LadderError } from '../errors.ts';
import type { Database, Db, ReadDb, Row, ScatterOptions, ScatterResult, ShardKey, TokenCarrier, TxDb } from './database.ts';
import type { DbLog } from './pool.ts';
import { errorText } from './pool.ts';
import { logicalOfKey } from './shard-key.ts';
import type { ShardMap } from './shard-map.ts';

/** How often each process asks the catalog for the map's version (a change reloads it). */
export const SHARD_MAP_POLL_MS = 1000;
const SCATTER_TIMEOUT_MS = 2000;

export interface ShardRouterOptions {
  /** The catalog database: users and sessions' accounts live there, and the shard map. */
  directory: Database;
  /** Each cluster's database, by the name the map uses (shard1, shard2, ...). */
  clusters: ReadonlyMap<string, Database>;
  /** Loads the map's version (cheap) and the whole map, from the catalog. */
  loadVersion: () => Promise<number | undefined>;
  loadMap: () => Promise<ShardMap | undefined>;
  pollMs?: number;
  log?: DbLog;
}

function keyRequired(what: string): LadderError {
  return new LadderError('INTERNAL', `SHARD_KEY_REQUIRED: ${what} without a shard key at rung 10; say what it is about (db.on(key)) or use scatter()`);
}

export class ShardRouter implements Database {
  readonly sharded = true;
  private map: ShardMap | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(private readonly opts: ShardRouterOptions) {}

  get version(): number | undefined {
    return this.map?.version;
  }

  async start(): Promise<void> {
    for (const db of [this.opts.directory, ...this.opts.clusters.values()]) {
      const s = db as { start?: () => Promise<void> };
      if (typeof s.start === 'function') await s.start();
    }
    this.map = await this.opts.loadMap();
    if (!this.map) throw new Error('the catalog holds no shard map (ladder up --rung 10 creates it)');
    this.timer = setInterval(() => void this.poll(), this.opts.pollMs ?? SHARD_MAP_POLL_MS);
    this.timer.unref();
  }

  /** Reloads the map when the catalog's version moved; a failed poll keeps the cached map. */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const v = await this.opts.loadVersion();
      if (v !== undefined && v !== this.map?.version) {
        const map = await this.opts.loadMap();
        if (map) {
          this.opts.log?.info({ from: this.map?.version, to: map.version }, 'shard map changed');
          this.map = map;
        }
      }
    } catch (err) {
      this.opts.log?.warn({ error: errorText(err) }, 'shard map poll failed; keeping the cached map');
    } finally {
      this.polling = false;
    }
  }

  /** The cluster that holds `key` now. */
  clusterName(key: Exclude<ShardKey, 'directory'>): string {
    if (!this.map) throw new LadderError('SERVICE_UNAVAILABLE', 'The shard map is not loaded yet.');
    return this.map.clusterOf[logicalOfKey(key)]!;
  }

  /** Every cluster's process-wide database (sweeps, checks). */
  clusterDatabases(): Database[] {
    return [...this.opts.clusters.values()];
  }

  /** The process-wide handle of key's shard (no caller token: workers, the click flush). */
  on(key: ShardKey): Database {
    return this.database(key);
  }

  private database(key: ShardKey): Database {
    if (key === 'directory') return this.opts.directory;
    const name = this.clusterName(key);
    const db = this.opts.clusters.get(name);
    if (!db) throw new LadderError('SERVICE_UNAVAILABLE', `The shard map names cluster ${name}, which this process has no connection to.`);
    return db;
  }

  forRequest(carrier?: TokenCarrier): Db {
    return new ShardRequestDb(this, carrier, (key) => this.database(key));
  }

  read<R extends Row = Row>(): Promise<R[]> {
    return Promise.reject(keyRequired('a read'));
  }

  write<R extends Row = Row>(): Promise<R[]> {
    return Promise.reject(keyRequired('a write'));
  }

  tx<T>(): Promise<T> {
    return Promise.reject(keyRequired('a transaction'));
  }

  scatter<R extends Row = Row>(sql: string, params: readonly unknown[] = [], opts: ScatterOptions = {}): Promise<ScatterResult<R>> {
    return scatterOver([...this.opts.clusters].map(([name, db]) => [name, db] as const), sql, params, opts);
  }

  readFresh<R extends Row = Row>(): Promise<{ rows: R[]; position: bigint }> {
    return Promise.reject(keyRequired('a cache fill'));
  }

  async commitPosition(): Promise<bigint> {
    return 0n;
  }

  async ping(): Promise<boolean> {
    const all = await Promise.all([this.opts.directory, ...this.opts.clusters.values()].map((d) => d.ping()));
    return all.every(Boolean);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([this.opts.directory, ...this.opts.clusters.values()].map((d) => d.close()));
  }
}

/** One request's handle: per cluster, that cluster's request handle (its token state), made once. */
class ShardRequestDb implements Db {
  readonly sharded = true;
  private readonly handles = new Map<Database, Db>();

  constructor(
    private readonly router: ShardRouter,
    private readonly carrier: TokenCarrier | undefined,
    private readonly database: (key: ShardKey) => Database,
  ) {}

  on(key: ShardKey): Db {
    const db = this.database(key);
    let h = this.handles.get(db);
    if (!h) this.handles.set(db, (h = db.forRequest(this.carrier)));
    return h;
  }

  read<R extends Row = Row>(): Promise<R[]> {
    return Promise.reject(keyRequired('a read'));
  }

  write<R extends Row = Row>(): Promise<R[]> {
    return Promise.reject(keyRequired('a write'));
  }

  tx<T>(_fn: (tx: TxDb) => Promise<T>): Promise<T> {
    return Promise.reject(keyRequired('a transaction'));
  }

  scatter<R extends Row = Row>(sql: string, params?: readonly unknown[], opts?: ScatterOptions): Promise<ScatterResult<R>> {
    return this.router.scatter<R>(sql, params, opts);
  }
}

/** Runs `sql` on every cluster at once; a cluster that fails or passes the timeout is missing. */
export async function scatterOver<R extends Row>(
  dbs: readonly (readonly [string, ReadDb])[],
  sql: string,
  params: readonly unknown[],
  { timeoutMs = SCATTER_TIMEOUT_MS, partial = false }: ScatterOptions,
): Promise<ScatterResult<R>> {
  const results = await Promise.all(
    dbs.map(async ([name, db]) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
      try {
        const rows = await Promise.race([db.read<R>(sql, params), timeout]);
        return { name, rows };
      } catch {
        return { name, rows: undefined };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const missing = results.filter((r) => r.rows === undefined).map((r) => r.name);
  if (missing.length > 0 && !partial) {
    throw new LadderError('SERVICE_UNAVAILABLE', `Shards ${missing.join(', ')} did not answer within ${timeoutMs} ms.`);
  }
  return { rows: results.flatMap((r) => r.rows ?? []), missing };
}
