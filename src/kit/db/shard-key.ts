// Rung 10: where a row lives. A fixed number of logical shards (LOGICAL_SHARDS); a link's is
// hash(code) (a custom code carries no shard bits, so the code itself is hashed), an owner's
// (for the "my links" index) hash(owner id). The hash is md5's first 32 bits, which Postgres
// computes too (LOGICAL_SHARD_SQL), so a row's stored `logical_shard` can be checked in SQL.
//
// Ids are globally unique without a shared sequence, in the manner of Instagram's: 40 bits of
// milliseconds since ID_EPOCH_MS, 10 bits of logical shard, 13 bits of a per-database
// sequence (8,192 ids per millisecond per database). A link id names its logical shard,
// so a click (which carries only the id) finds its shard without a lookup.
import { createHash } from 'node:crypto';

export const LOGICAL_SHARDS = 1024;
export const SHARD_BITS = 10;
export const SEQUENCE_BITS = 13;
/** 2026-01-01T00:00:00Z: 40 bits of milliseconds from it last about 34 years. */
export const ID_EPOCH_MS = 1_767_225_600_000;

/** What a statement is about: the key that picks its shard. */
export type ShardKey =
  | { link: string } // a link's code
  | { linkId: string | number | bigint } // a link's id (its logical shard is in it)
  | { owner: string | number } // an owner's row in the "my links" index
  | { linkIds: readonly (string | number | bigint)[] } // several links' ids, all on one cluster (a click flush's group)
  | 'directory'; // users and accounts: the catalog database

export function logicalOfText(text: string): number {
  const digest = createHash('md5').update(text, 'utf8').digest();
  return digest.readUInt32BE(0) % LOGICAL_SHARDS;
}

/** The logical shard of a link id (bits 13..22). */
export function logicalOfId(id: string | number | bigint): number {
  return Number((BigInt(id) >> BigInt(SEQUENCE_BITS)) & BigInt(LOGICAL_SHARDS - 1));
}

export function logicalOfKey(key: Exclude<ShardKey, 'directory' | { linkIds: readonly (string | number | bigint)[] }>): number {
  if ('link' in key) return logicalOfText(key.link);
  if ('linkId' in key) return logicalOfId(key.linkId);
  return logicalOfText(`owner:${String(key.owner)}`);
}

/** The same hash in SQL, for checks and backfills: `select ${LOGICAL_SHARD_SQL('code')} from links`. */
export const LOGICAL_SHARD_SQL = (expr: string) => `(('x' || substr(md5(${expr}), 1, 8))::bit(32)::bigint % ${LOGICAL_SHARDS})`;

/** Every logical shard a key touches (one, except a group of link ids). */
export function logicalsOfKey(key: Exclude<ShardKey, 'directory'>): number[] {
  if ('linkIds' in key) return [...new Set(key.linkIds.map(logicalOfId))];
  return [logicalOfKey(key)];
}
