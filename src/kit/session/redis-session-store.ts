// Sessions in Redis (rung 7): every web server sees the same sessions, so a user can be
// served by any of them and no balancer stickiness is needed. One key per session,
// `ladder:sess:<id>`, holding the JSON of SessionData, with Redis expiring it after the
// idle timeout (refreshed on every set). A Redis failure rejects with a RedisStoreError
// (never naming the session id), which RequestSession turns into a 503.
import type { Redis } from 'ioredis';
import { RedisStoreError } from '../redis/redis-store-error.ts';
import type { SessionData, SessionStore } from './session-store.ts';

/** The three commands this store uses: a small interface, not the whole client. */
export type SessionRedis = Pick<Redis, 'get' | 'set' | 'del'>;

export const SESSION_KEY_PREFIX = 'ladder:sess:';

export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly redis: SessionRedis,
    private readonly prefix = SESSION_KEY_PREFIX,
  ) {}

  async get(id: string): Promise<SessionData | undefined> {
    const raw = await this.run('GET', id, () => this.redis.get(this.prefix + id));
    return raw === null ? undefined : parseSession(raw);
  }

  async set(id: string, data: SessionData, ttlSeconds: number): Promise<void> {
    const json = JSON.stringify(data);
    // EX takes whole seconds, at least 1.
    const ttl = Math.max(1, Math.ceil(ttlSeconds));
    await this.run('SET', id, () => this.redis.set(this.prefix + id, json, 'EX', ttl));
  }

  async destroy(id: string): Promise<void> {
    await this.run('DEL', id, () => this.redis.del(this.prefix + id));
  }

  private async run<T>(operation: string, id: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw new RedisStoreError(`session ${operation}`, err, [id]);
    }
  }
}

/** What came back from Redis, checked: anything malformed is no session, never a crash. */
function parseSession(raw: string): SessionData | undefined {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const { userId, createdAt, touchedAt, tokens } = v as Record<string, unknown>;
  if (!Number.isSafeInteger(userId) || (userId as number) <= 0) return undefined;
  if (typeof createdAt !== 'number' || !Number.isFinite(createdAt)) return undefined;
  const data: SessionData = { userId: userId as number, createdAt };
  if (typeof touchedAt === 'number' && Number.isFinite(touchedAt)) data.touchedAt = touchedAt;
  if (tokens !== undefined) {
    if (typeof tokens !== 'object' || tokens === null || Array.isArray(tokens)) return undefined;
    const out: Record<string, string> = {};
    for (const [k, t] of Object.entries(tokens)) {
      if (typeof t !== 'string') return undefined;
      out[k] = t;
    }
    data.tokens = out;
  }
  return data;
}
