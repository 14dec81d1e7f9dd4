// A Bloom filter kept in Redis (a bitmap per set, e.g. every link code), so that a lookup
// of a key that does not exist is answered without the database: a flood of random codes
// costs Redis a few GETBITs each and the database nothing. A filter never answers "absent"
// for a member that was added before the lookup (members are added before they are
// inserted); it may answer "maybe" for a non-member (about 1 in 2,000 at a million
// members, 1 in 50 million at 100,000), which then costs one database read.

/** 2^24 bits: a 2 MiB bitmap. */
export const FILTER_BITS = 1 << 24;
/** Bits per member; near optimal for up to about a million members in 2^24 bits. */
export const FILTER_HASHES = 7;

/** FNV-1a over the UTF-16 code units, 32 bits, from a given offset basis. */
function fnv1a(text: string, basis: number): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The bit positions of a member (double hashing: h1 + i * h2). */
export function filterPositions(member: string): number[] {
  const h1 = fnv1a(member, 0x811c9dc5);
  const h2 = fnv1a(member, 0x050c5d1f) | 1;
  const out: number[] = [];
  for (let i = 0; i < FILTER_HASHES; i++) out.push((h1 + Math.imul(i, h2)) >>> 0 & (FILTER_BITS - 1));
  return out;
}
