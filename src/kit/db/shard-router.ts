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
// Writes are fenced (migrations-shard/1002_fence.sql): each runs in a transaction that first
// calls ladder_fence(its logical shards) on the cluster, which waits while a move has frozen
// one of them and fails with LD001 when the cluster no longer owns it. Such a write wrote
// nothing: the router reloads the map at once and runs it again on the new owner. So a write
// routed by a stale map is never applied to the wrong cluster, and a frozen shard's writes
// wait rather than fail.
//
// Consistency across shards: tokens are per cluster (the cookie holds one per shard name,
// consistency-cookie.ts), and each cluster's router applies rung 4's rules to its own: every
// row lives on exactly one cluster for a map version, and what a caller has seen of it is
// bounded by that cluster's token alone (docs/consistency.md, "Shards").
import { hostname } from 'node:os';
import pg from 'pg';
import { LadderError } from '../errors.ts';
import type { Database, Db, ReadDb, Row, ScatterOptions, ScatterResult, ShardKey, TokenCarrier, TxDb } from './database.ts';
import type { DbLog } from './pool.ts';
import { errorText } from './pool.ts';
import { logicalsOfKey } from './shard-key.ts';
import type { ClusterEntry, ShardMap } from './shard-map.ts';

/** How often each process asks the catalog for the map's version (a change reloads it). */
export const SHARD_MAP_POLL_MS = 50;
/** A process that has seen no new version says it is alive this often (shard_map_seen). */
const SEEN_HEARTBEAT_MS = 1000;
const SCATTER_TIMEOUT_MS = 2000;
/** A fenced write that found its shard moved is sent again this many times at most. */
const MOVED_RETRIES = 5;

export interface ShardRouterOptions {
  /** The catalog database: users and sessions' accounts live there, and the shard map. */
  directory: Database;
  /** Each cluster's database known at start, by the name the map uses (shard1, shard2, ...). */
  clusters: ReadonlyMap<string, Database>;
  /** Loads the map's version (cheap) and the whole map, from the catalog. */
  loadVersion: () => Promise<number | undefined>;
  loadMap: () => Promise<ShardMap | undefined>;
  /** Clusters the catalog knows, for one the map names that this process has no pool for yet. */
  loadClusters?: () => Promise<ClusterEntry[]>;
  /** Opens a cluster's database (with replicas or not). */
  openCluster?: (c: ClusterEntry) => Database;
  /** Records the version this process routes by (shard_map_seen). */
  reportSeen?: (process: string, version: number) => Promise<void>;
  /** Calls back on every change the catalog announces (LISTEN); returns how to stop listening. */
  listen?: (onChange: () => void) => Promise<() => Promise<void>>;
  pollMs?: number;
  log?: DbLog;
}

function keyRequired(what: string): LadderError {
  return new LadderError('INTERNAL', `SHARD_KEY_REQUIRED: ${what} without a shard key at rung 10; say what it is about (db.on(key)) or use scatter()`);
}

/** SQLSTATE LD001 (ladder_fence): the cluster no longer owns the logical shard; nothing was written. */
function moved(err: unknown): boolean {
  return err instanceof pg.DatabaseError && err.code === 'LD001';
}

export class ShardRouter implements Database {
  readonly sharded = true;
  private map: ShardMap | undefined;
  private readonly clusters: Map<string, Database>;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  /** A poll queued behind the running one: callers that ask meanwhile share it. */
  private queued: Promise<void> | undefined;
  private lastSeenReport = 0;
  private unlisten: (() => Promise<void>) | undefined;
  private readonly process = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;

  constructor(private readonly opts: ShardRouterOptions) {
    this.clusters = new Map(opts.clusters);
  }

  get version(): number | undefined {
    return this.map?.version;
  }

  async start(): Promise<void> {
    for (const db of [this.opts.directory, ...this.clusters.values()]) {
      const s = db as { start?: () => Promise<void> };
      if (typeof s.start === 'function') await s.start();
    }
    const map = await this.opts.loadMap();
    if (!map) throw new Error('the catalog holds no shard map (ladder up --rung 10 creates it)');
    await this.adopt(map);
    this.timer = setInterval(() => void this.poll(), this.opts.pollMs ?? SHARD_MAP_POLL_MS);
    this.timer.unref();
    this.unlisten = await this.opts.listen?.(() => void this.poll());
  }

  /**
   * Reloads the map when the catalog's version moved (or `force`); a failed poll keeps the
   * cached map. One poll at a time; asking while one runs queues one more, shared by everyone
   * who asks meanwhile (writes that found their shard moved all ask at once).
   */
  poll(force = false): Promise<void> {
    if (this.queued) return this.queued;
    const run = async () => {
      this.queued = undefined;
      try {
        const v = await this.opts.loadVersion();
        if (v !== undefined && (force || v !== this.map?.version)) {
          const map = await this.opts.loadMap();
          if (map && map.version !== this.map?.version) {
            this.opts.log?.info({ from: this.map?.version, to: map.version }, 'shard map changed');
            await this.adopt(map);
          }
        }
        if (this.map && Date.now() - this.lastSeenReport >= SEEN_HEARTBEAT_MS) await this.reportSeen();
      } catch (err) {
        this.opts.log?.warn({ error: errorText(err) }, 'shard map poll failed; keeping the cached map');
      }
    };
    const next = (this.polling ?? Promise.resolve()).then(run);
    if (this.polling) this.queued = next;
    this.polling = next;
    return next;
  }

  /**
   * Uses `map` from now on, first opening every cluster the catalog knows that this process
   * cannot reach yet (a reshard adds the new clusters and bumps the version before it moves
   * anything, so their pools are open before any write needs them).
   */
  private async adopt(map: ShardMap): Promise<void> {
    if (this.opts.loadClusters && this.opts.openCluster) {
      for (const c of await this.opts.loadClusters()) {
        if (this.clusters.has(c.name)) continue;
        const db = this.opts.openCluster(c);
        const s = db as { start?: () => Promise<void> };
        if (typeof s.start === 'function') await s.start();
        this.clusters.set(c.name, db);
      }
    }
    this.map = map;
    await this.reportSeen();
  }

  private async reportSeen(): Promise<void> {
    if (!this.map || !this.opts.reportSeen) return;
    this.lastSeenReport = Date.now();
    await this.opts.reportSeen(this.process, this.map.version);
  }

  /** The cluster that holds `key` now. */
  clusterName(key: Exclude<ShardKey, 'directory'>): string {
    if (!this.map) throw new LadderError('SERVICE_UNAVAILABLE', 'The shard map is not loaded yet.');
    const names = new Set(logicalsOfKey(key).map((l) => this.map!.clusterOf[l]!));
    if (names.size !== 1) throw new LadderError('SERVICE_UNAVAILABLE', 'The keys of one statement live on several clusters.');
    return [...names][0]!;
  }

  /** Every cluster's process-wide database (sweeps, checks). */
  clusterDatabases(): Database[] {
    return [...this.clusters.values()];
  }

  /** The database of key's cluster now. */
  cluster(key: Exclude<ShardKey, 'directory'>): Database {
    const name = this.clusterName(key);
    const db = this.clusters.get(name);
    if (!db) throw new LadderError('SERVICE_UNAVAILABLE', `The shard map names cluster ${name}, which this process has no connection to.`);
    return db;
  }

  /** The process-wide handle of key's shard (no caller token: the click flush, the sweep). */
  on(key: ShardKey): Db {
    if (key === 'directory') return this.opts.directory;
    return new FencedDb(this, key, (k) => this.cluster(k));
  }

  forRequest(carrier?: TokenCarrier): Db {
    return new ShardRequestDb(this, carrier);
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
    return scatterOver([...this.clusters].map(([name, db]) => [name, db] as const), sql, params, opts);
  }

  readFresh<R extends Row = Row>(): Promise<{ rows: R[]; position: bigint }> {
    return Promise.reject(keyRequired('a cache fill'));
  }

  async commitPosition(): Promise<bigint> {
    return 0n;
  }

  async ping(): Promise<boolean> {
    const all = await Promise.all([this.opts.directory, ...this.clusters.values()].map((d) => d.ping()));
    return all.every(Boolean);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.unlisten?.();
    await this.polling;
    await Promise.all([this.opts.directory, ...this.clusters.values()].map((d) => d.close()));
  }
}

/** One request's handle: per cluster, that cluster's request handle (its token state), made once. */
class ShardRequestDb implements Db {
  readonly sharded = true;
  private readonly handles = new Map<Database, Db>();

  constructor(
    private readonly router: ShardRouter,
    private readonly carrier: TokenCarrier | undefined,
  ) {}

  on(key: ShardKey): Db {
    if (key === 'directory') return this.handle(this.router.on('directory') as Database);
    return new FencedDb(this.router, key, (k) => this.handle(this.router.cluster(k)));
  }

  private handle(db: Database): Db {
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

/**
 * The handle of one key: reads go to its cluster's handle as they are (batched with every
 * other caller's there); writes and transactions are fenced, and sent again to the new owner
 * when the fence says the shard moved.
 */
class FencedDb implements Db {
  readonly sharded = true;
  private readonly logicals: number[];

  constructor(
    private readonly router: ShardRouter,
    private readonly key: Exclude<ShardKey, 'directory'>,
    private readonly resolve: (key: Exclude<ShardKey, 'directory'>) => Db,
  ) {
    this.logicals = logicalsOfKey(key);
  }

  /** The cluster this key is on now (to group keys by cluster). */
  get shardName(): string {
    return this.router.clusterName(this.key);
  }

  get batchesInFlight(): number | undefined {
    return this.resolve(this.key).batchesInFlight;
  }

  on(key: ShardKey): Db {
    return this.router.on(key);
  }

  read<R extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<R[]> {
    return this.resolve(this.key).read<R>(sql, params);
  }

  joinBatch<T>(lookup: (shared: ReadDb) => Promise<T>): Promise<T> {
    const db = this.resolve(this.key);
    return db.joinBatch ? db.joinBatch(lookup) : lookup(db);
  }

  write<R extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<R[]> {
    return this.tx((q) => q.query<R>(sql, params));
  }

  async tx<T>(fn: (tx: TxDb) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.resolve(this.key).tx(async (q) => {
          await q.query('select ladder_fence($1::integer[])', [this.logicals]);
          return fn(q);
        });
      } catch (err) {
        if (!moved(err) || attempt >= MOVED_RETRIES) throw err;
        await this.router.poll(true);
      }
    }
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
