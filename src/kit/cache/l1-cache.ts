// The in-process tier (L1): a map bounded by bytes, least recently used out first, each
// entry with its own expiry. Map keeps insertion order, so moving a key to the end on
// every hit makes the first key the least recently used one.

export interface L1Entry<V = unknown> {
  value: V;
  /** Epoch ms after which the entry is gone. */
  expiresAt: number;
  /** Epoch ms after which a hit also refreshes it in the background (hot keys stay warm). */
  refreshAt: number;
  /** What the entry costs, counted against the bound. */
  bytes: number;
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
    this.map.delete(key);
    this.map.set(key, e);
    return e;
  }

  /** Stores the entry; `size` is the length of its serialized value. Too big for the bound: not kept. */
  set(key: string, value: unknown, size: number, ttlMs: number, refreshAt: number, now = Date.now()): void {
    const bytes = ENTRY_OVERHEAD + 2 * key.length + size;
    const old = this.map.get(key);
    if (old) this.remove(key, old);
    if (bytes > this.maxBytes || ttlMs <= 0) return;
    this.map.set(key, { value, expiresAt: now + ttlMs, refreshAt, bytes });
    this.used += bytes;
    let evicted = 0;
    while (this.used > this.maxBytes) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.remove(oldest.value, this.map.get(oldest.value)!);
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
