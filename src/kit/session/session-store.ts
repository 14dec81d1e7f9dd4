// Where sessions live. Rung 1 keeps them in the process (MemorySessionStore); rung 7
// backs the same interface with Redis so that any web server can serve any user.

export interface SessionData {
  userId: number;
  createdAt: number;
  /** Last time the idle expiry was pushed back (ms). */
  touchedAt?: number;
  /** Consistency tokens by shard (commit LSN of the user's last write), used from rung 4. */
  tokens?: Record<string, string>;
}

export interface SessionStore {
  get(id: string): Promise<SessionData | undefined>;
  /** Stores the session for ttlSeconds (the idle timeout); refreshes on every set. */
  set(id: string, data: SessionData, ttlSeconds: number): Promise<void>;
  destroy(id: string): Promise<void>;
}

export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, { data: SessionData; expiresAt: number }>();
  private lastSweep = Date.now();

  constructor(private readonly maxSessions = 100_000) {}

  async get(id: string): Promise<SessionData | undefined> {
    const entry = this.sessions.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return entry.data;
  }

  async set(id: string, data: SessionData, ttlSeconds: number): Promise<void> {
    this.sweep();
    // Bounded: the oldest session goes first when full (Map keeps insertion order).
    if (this.sessions.size >= this.maxSessions && !this.sessions.has(id)) {
      const oldest = this.sessions.keys().next();
      if (!oldest.done) this.sessions.delete(oldest.value);
    }
    this.sessions.delete(id);
    this.sessions.set(id, { data, expiresAt: Date.now() + ttlSeconds * 1000 });
  }

  async destroy(id: string): Promise<void> {
    this.sessions.delete(id);
  }

  private sweep(): void {
    const now = Date.now();
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [id, entry] of this.sessions) if (entry.expiresAt <= now) this.sessions.delete(id);
  }
}
