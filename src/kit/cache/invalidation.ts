// What a process remembers of invalidations, so that its L1 never keeps a value an
// invalidation has overtaken. An invalidation's pub/sub message can arrive before the reply
// of a read that began earlier (the read may return the old value), so every read notes
// the sequence number current when it began, and its value may go into L1 only if no
// invalidation of its key (and no flush of L1: an outage, a new generation) came in since.
//
// Also the invalidation message's format: 'k <gen> <epoch ms> <id> <key>' (invalidate-4.lua)
// and 'g <gen>' for a new generation (bump-generation-1.lua).

/** Recently invalidated keys remembered for L1 fills in flight. */
const RECENT_MAX = 10_000;

export class InvalidationLog {
  /** Counts invalidations this process learns of. */
  private seqNo = 0;
  /** Seq of the last flush: reads that began before it may not fill. */
  private flushSeq = 0;
  /** Recently invalidated keys and the seq of their invalidation (pruned by age and count). */
  private readonly recent = new Map<string, { seq: number; at: number }>();

  /** keepMs: how long a read may be in flight (a lease's life and a margin). */
  constructor(private readonly keepMs: number) {}

  /** The sequence number a read notes when it begins. */
  get seq(): number {
    return this.seqNo;
  }

  /** An invalidation of `key` came in. */
  invalidated(key: string): void {
    const seq = ++this.seqNo;
    const now = Date.now();
    this.recent.delete(key);
    this.recent.set(key, { seq, at: now });
    // A fill in flight lasts at most a lease; older entries can go.
    for (const [k, v] of this.recent) {
      if (this.recent.size <= RECENT_MAX && now - v.at < this.keepMs) break;
      this.recent.delete(k);
      if (this.flushSeq < v.seq) this.flushSeq = v.seq; // forgotten: treat as a flush
    }
  }

  /** L1 was emptied: no read that began before now may fill it. */
  flushed(): void {
    this.flushSeq = ++this.seqNo;
    this.recent.clear();
  }

  /** Whether a value of `key` read by a read that began at `seq` may go into L1. */
  mayKeep(key: string, seq: number): boolean {
    if (this.flushSeq > seq) return false;
    const inv = this.recent.get(key);
    return !(inv && inv.seq > seq);
  }
}

export type InvalidationMessage =
  | { kind: 'key'; key: string; id: string; sentAt: number }
  | { kind: 'generation'; gen: string };

/** Parses a message of the invalidation channel; undefined for anything else. */
export function parseInvalidationMessage(message: string): InvalidationMessage | undefined {
  if (message.startsWith('k ')) {
    const a = message.indexOf(' ', 2);
    const b = message.indexOf(' ', a + 1);
    const c = message.indexOf(' ', b + 1);
    if (a < 0 || b < 0 || c < 0) return undefined;
    return { kind: 'key', sentAt: Number(message.slice(a + 1, b)), id: message.slice(b + 1, c), key: message.slice(c + 1) };
  }
  if (message.startsWith('g ')) return { kind: 'generation', gen: message.slice(2) };
  return undefined;
}
