// What the rest of the code sees of the cache: `req.cache` (RequestCache) for handlers, and
// the process-wide CacheTier the server hands requests to. Handlers say what to cache and
// what invalidates it; where it lives is the tier's business:
//
//   const link = await req.cache.getOrLoad(`link:${code}`, (db) => findTarget(db, code),
//                                          { filter: { name: 'codes', member: code } });
//   ... after a committed write:  await req.cache.invalidate(`link:${code}`);
//
// Below rung 5 the tier is NoCache (no-cache.ts); from rung 5 TwoTierCache (two-tier-cache.ts).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ReadDb } from '../db/database.ts';

export interface CacheOptions {
  /** Life of a cached value in Redis (jittered by ±10%). */
  ttlMs?: number;
  /** Life of a cached "does not exist". */
  negativeTtlMs?: number;
  /** A set whose membership filter may answer "absent" for this key without the database. */
  filter?: { name: string; member: string };
}

/** Loads the value from the database; null means "does not exist" (cached too). */
export type Loader<V> = (db: ReadDb) => Promise<V | null>;

/** What handlers see as `req.cache`. */
export interface RequestCache {
  getOrLoad<V>(key: string, loader: Loader<V>, options?: CacheOptions): Promise<V | null>;
  /** After a committed write that changes what `key` loads. Never throws. */
  invalidate(key: string): Promise<void>;
  /** Before inserting a member of a filtered set, so lookups never miss it. Never throws. */
  addMember(filter: string, member: string): Promise<void>;
}

/** The process-wide cache: hands out per-request handles. */
export interface CacheTier {
  forRequest(req: FastifyRequest, reply: FastifyReply): RequestCache;
  /**
   * The value from L1 only, synchronously, for a request that carries `cookieHeader`; undefined
   * when L1 cannot answer (not there, due for a refresh, L1 off, or the caller wrote recently),
   * so the caller takes the ordinary path. For the kit's fast path (http/server.ts).
   */
  peek(key: string, cookieHeader: string | undefined): { value: unknown } | undefined;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Pages of a filtered set's members, in order, after `after` (undefined: from the start). */
export type MemberSource = (db: ReadDb, after: string | undefined, limit: number) => Promise<string[]>;
