// The in-process tier (L1): a map bounded by bytes, each entry with its own expiry, evicting
// by CLOCK (second chance), an approximation of least-recently-used: a hit only marks the
// entry used; eviction walks from the oldest entry, moving used ones to the end with the
// mark cleared and dropping the first unused one. A strict LRU would move the key to the
// end of the Map on every hit (a delete and an insert), which measured as 7% of the CPU of
// a server answering redirects from 100,000 cached links.


export interface L1Entry<V = unknown> {
  value: V;
  /** Epoch ms after which the entry is gone. */
  expiresAt: number;
  /** Epoch ms after which a hit also refreshes it in the background (hot keys stay warm). */
  refreshAt: number;
  /** What the entry costs, counted against the bound. */
  bytes: number;
  /** Hit since the eviction hand last passed it. */
  used: boolean;
}

/** Fixed cost of an entry beside its key and value (Map slot, the entry object). */
const ENTRY_OVERHEAD = 96;

export class L1Cache {
  private readonly map = new Map<string, L1Entry>();
  private used = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly onEvict: (n: number) => void = () => undefined,
  ) {}

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string, now = Date.now()): L1Entry | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= now) {
      this.remove(key, e);
      return undefined;
    }
    e.used = true;
    return e;
  }

  /** Stores the entry; `size` is the length of its serialized value. Too big for the bound: not kept. */
  set(key: string, value: unknown, size: number, ttlMs: number, refreshAt: number, now = Date.now()): void {
    const bytes = ENTRY_OVERHEAD + 2 * key.length + size;
    const old = this.map.get(key);
    if (old) this.remove(key, old);
    if (bytes > this.maxBytes || ttlMs <= 0) return;
    this.map.set(key, { value, expiresAt: now + ttlMs, refreshAt, bytes, used: false });
    this.used += bytes;
    let evicted = 0;
    while (this.used > this.maxBytes) {
      const oldest = this.map.entries().next();
      if (oldest.done) break;
      const [k, e] = oldest.value;
      if (e.used && k !== key) {
        // Second chance: to the end, unmarked.
        e.used = false;
        this.map.delete(k);
        this.map.set(k, e);
        continue;
      }
      this.remove(k, e);
      evicted++;
    }
    if (evicted > 0) this.onEvict(evicted);
  }

  delete(key: string): boolean {
    const e = this.map.get(key);
    if (!e) return false;
    this.remove(key, e);
    return true;
  }

  clear(): void {
    this.map.clear();
    this.used = 0;
  }

  private remove(key: string, e: L1Entry): void {
    this.map.delete(key);
    this.used -= e.bytes;
  }
}
