// A caller's consistency token for one shard: what the caller's next read must reflect.
// `lsn` is a WAL position the next read must have reached (the commit of the caller's
// last write, or the primary's position after a read served by the primary); `pin` is the
// replica (and its server lifetime, `epoch`) the caller has read from since. The argument
// for why this gives read-your-writes and monotonic reads is in replica-router.ts and
// docs/consistency.md.
//
// Serialized form, kept small and strictly checked because it comes back from clients:
//   <lsn hex>                       e.g. 16b3748
//   <lsn hex>_<replica>_<epoch>     e.g. 16b3748_1_lqz3k0x1c   (replica index from 0, epoch base 36)

export interface Pin {
  /** Index of the replica in the configured list (replica1 is 0). */
  replica: number;
  /** The replica server's start time (base 36 of microseconds): a restarted replica is another. */
  epoch: string;
}

export interface ConsistencyToken {
  lsn: bigint;
  pin: Pin | undefined;
}

export const EMPTY_TOKEN: ConsistencyToken = Object.freeze({ lsn: 0n, pin: undefined });

const TOKEN = /^([0-9a-f]{1,16})(?:_(\d{1,2})_([0-9a-z]{1,14}))?$/;
const MAX_LSN = (1n << 64n) - 1n;

/** A pg_lsn as Postgres prints it (`16/B3748`) → a number; undefined when it is not one. */
export function parseLsn(text: unknown): bigint | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) return undefined;
  return (BigInt(`0x${m[1]!}`) << 32n) | BigInt(`0x${m[2]!}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function encodeToken(t: ConsistencyToken): string {
  const lsn = t.lsn.toString(16);
  return t.pin ? `${lsn}_${t.pin.replica}_${t.pin.epoch}` : lsn;
}

/** The token, or undefined for anything malformed (a client sent it: never trust it). */
export function decodeToken(text: string): ConsistencyToken | undefined {
  const m = TOKEN.exec(text);
  if (!m) return undefined;
  const lsn = BigInt(`0x${m[1]!}`);
  if (lsn > MAX_LSN) return undefined;
  if (m[2] === undefined) return { lsn, pin: undefined };
  return { lsn, pin: { replica: Number(m[2]), epoch: m[3]! } };
}

/**
 * Combines what the caller brought from several places (cookie, session): the highest LSN,
 * and the first pin. Safe because a pinned read also checks that the pinned replica has
 * reached the combined LSN (see replica-router.ts).
 */
export function mergeTokens(tokens: readonly (ConsistencyToken | undefined)[]): ConsistencyToken {
  let lsn = 0n;
  let pin: Pin | undefined;
  for (const t of tokens) {
    if (!t) continue;
    if (t.lsn > lsn) lsn = t.lsn;
    pin ??= t.pin;
  }
  return { lsn, pin };
}

export function samePin(a: Pin | undefined, b: Pin | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.replica === b.replica && a.epoch === b.epoch);
}
