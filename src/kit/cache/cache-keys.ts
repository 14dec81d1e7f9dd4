// Where the cache's data lives in Redis. `<prefix>gen` holds the current generation, and
// everything else is `<prefix><gen>:<kind>:<key>`, so that bumping the generation (after an
// outage in which invalidations were lost) drops the whole cache at once. Kinds: v (value),
// l (lease: who may fill), t (tombstone: the WAL position a fill must have reached since the
// last invalidation), f (membership filter bitmap; `:ready` once it holds every member,
// `:lock` while one process builds it); ack:<id> counts acknowledgements of an invalidation.
//
// The prefix carries a hash tag ({lc} by default), so every key is in one Redis Cluster
// slot: the scripts take several keys at once, and Cluster refuses a call whose keys are in
// two slots. The price is that the cache lives on one node of a cluster; it is one logical
// cache with one generation, so it could not be split by key anyway without one generation
// per slot.

export class CacheKeys {
  /** The generation counter. */
  readonly gen: string;
  /** The pub/sub channel of invalidations and new generations (a channel, not a key). */
  readonly channel: string;

  constructor(readonly prefix: string) {
    if (!hasHashTag(prefix)) {
      throw new Error(
        `cache key prefix "${prefix}" has no Redis Cluster hash tag. Fix: start it with a non-empty {tag}, e.g. "{lc}:"`,
      );
    }
    this.gen = `${prefix}gen`;
    this.channel = `${prefix}invalidate`;
  }

  value(gen: string, key: string): string {
    return `${this.prefix}${gen}:v:${key}`;
  }

  lease(gen: string, key: string): string {
    return `${this.prefix}${gen}:l:${key}`;
  }

  tombstone(gen: string, key: string): string {
    return `${this.prefix}${gen}:t:${key}`;
  }

  filter(gen: string, name: string): string {
    return `${this.prefix}${gen}:f:${name}`;
  }

  filterReady(gen: string, name: string): string {
    return `${this.filter(gen, name)}:ready`;
  }

  filterLock(gen: string, name: string): string {
    return `${this.filter(gen, name)}:lock`;
  }

  ack(id: string): string {
    return `${this.prefix}ack:${id}`;
  }
}

/**
 * Whether every key starting with `prefix` hashes by the same tag: Redis Cluster hashes the
 * part between the first `{` and the next `}`, when that part is not empty.
 */
export function hasHashTag(prefix: string): boolean {
  const open = prefix.indexOf('{');
  if (open < 0) return false;
  const close = prefix.indexOf('}', open + 1);
  return close > open + 1;
}
