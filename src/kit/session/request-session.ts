// `req.session`: the caller's session, loaded lazily so that routes which do not need it
// (the redirect) never touch the store. The cookie holds a random id signed with the
// server secret; the data lives server-side in a SessionStore.
//
// Two promises hold for every response: one that read or wrote the session says
// `Cache-Control: private, no-store` (it depends on who asked, so no shared cache, CDN
// edge included, may keep it; the one exception is a page that found no credentials at all
// in the request, which `req.edge.publicPage` may mark public), and the cookie's lifetime is
// the server's: when the idle expiry slides (at most once a minute), the cookie is
// re-issued with the same value and the remaining lifetime, min(idle, what is left of the
// absolute expiry), so a browser neither drops an active session early nor keeps one the
// server has ended.
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LadderError } from '../errors.ts';
import { decodeCookieValue, parseCookies, serializeCookie, sign, unsign } from '../http/cookies.ts';
import type { SessionData, SessionStore } from './session-store.ts';

export const SESSION_COOKIE = 'ladder_sid';
const TOUCH_EVERY_MS = 60_000;

export interface SessionSettings {
  store: SessionStore;
  secret: string;
  /** Idle expiry: a session unused this long is gone. */
  idleSeconds: number;
  /** Absolute expiry: no session lives longer, used or not. */
  absoluteSeconds: number;
  /** The clock (ms since the epoch); tests inject one. */
  now?: () => number;
}

/** What every response that depends on the session says to caches. */
export const SESSION_CACHE_CONTROL = 'private, no-store';

export class RequestSession {
  private loaded = false;
  private id: string | undefined;
  private data: SessionData | undefined;
  /** The session Set-Cookie this response carries, if any (a later one replaces it). */
  private written: string | undefined;

  constructor(
    private readonly req: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly settings: SessionSettings,
  ) {}

  /** The session, or undefined when the caller has none (or it expired). */
  async get(): Promise<SessionData | undefined> {
    if (this.loaded) return this.data;
    this.loaded = true;
    this.noStore();
    const raw = parseCookies(this.req.headers.cookie).get(SESSION_COOKIE);
    const decoded = raw === undefined ? undefined : decodeCookieValue(raw);
    const id = decoded ? unsign(decoded, this.settings.secret) : undefined;
    if (!id || !/^[A-Za-z0-9_-]{32,64}$/.test(id)) return undefined;
    const data = await this.store(() => this.settings.store.get(id));
    if (!data) return undefined;
    const now = this.now();
    if (this.lifetimeSeconds(data, now) <= 0) {
      await this.store(() => this.settings.store.destroy(id));
      return undefined;
    }
    this.id = id;
    this.data = data;
    // Sliding idle expiry: an active user's session is pushed back, at most once a minute
    // (a store write per request would double the session store's load for nothing), and
    // the cookie with it.
    if (now - (data.touchedAt ?? data.createdAt) > TOUCH_EVERY_MS) {
      data.touchedAt = now;
      const ttl = this.lifetimeSeconds(data, now);
      await this.store(() => this.settings.store.set(id, data, ttl));
      this.setCookie(encodeURIComponent(sign(id, this.settings.secret)), ttl);
    }
    return data;
  }

  /** The session if this request has already loaded it; never touches the store. */
  peek(): SessionData | undefined {
    return this.data;
  }

  /**
   * Keeps a consistency token (by shard) in the loaded session, if any. Best effort: the
   * caller's cookie holds it too, so a store failure here must not fail a committed write.
   */
  async setToken(shard: string, token: string): Promise<void> {
    if (!this.id || !this.data) return;
    this.data.tokens = { ...this.data.tokens, [shard]: token };
    try {
      await this.save();
    } catch (err) {
      // The cookie still carries it; the store's outage is logged once by its client.
      this.req.log.debug({ err }, 'could not keep the consistency token in the session');
    }
  }

  /** The logged-in user's id, or a 401. */
  async requireUser(): Promise<number> {
    const data = await this.get();
    if (!data) throw new LadderError('UNAUTHENTICATED');
    return data.userId;
  }

  /** Starts a session for userId under a new id (rotation: the old id stops working). */
  async start(userId: number): Promise<void> {
    await this.get();
    if (this.id) await this.store(() => this.settings.store.destroy(this.id!));
    const id = randomBytes(24).toString('base64url');
    const now = this.now();
    const data: SessionData = { userId, createdAt: now };
    const ttl = this.lifetimeSeconds(data, now);
    await this.store(() => this.settings.store.set(id, data, ttl));
    this.id = id;
    this.data = data;
    this.setCookie(encodeURIComponent(sign(id, this.settings.secret)), ttl);
  }

  /** Saves changed session data (for example a new consistency token). */
  async save(): Promise<void> {
    if (this.id && this.data) {
      const { id, data } = this;
      const ttl = Math.max(1, this.lifetimeSeconds(data, this.now()));
      await this.store(() => this.settings.store.set(id, data, ttl));
    }
  }

  /** Destroys the session server-side and clears the cookie. */
  async destroy(): Promise<void> {
    await this.get();
    if (this.id) await this.store(() => this.settings.store.destroy(this.id!));
    this.id = undefined;
    this.data = undefined;
    this.setCookie('', 0);
  }

  /**
   * Seconds the session has left: the idle expiry from its last touch, never past the
   * absolute expiry from its creation. Zero or less: it is over.
   */
  private lifetimeSeconds(data: SessionData, now: number): number {
    const { idleSeconds, absoluteSeconds } = this.settings;
    const idleEnds = (data.touchedAt ?? data.createdAt) + idleSeconds * 1000;
    const absoluteEnds = data.createdAt + absoluteSeconds * 1000;
    // Rounded up: a session with any time left keeps at least a second (a cookie or store TTL
    // of 0 would end it at once; with a 1-s idle expiry, at its very start).
    return Math.ceil((Math.min(idleEnds, absoluteEnds) - now) / 1000);
  }

  private now(): number {
    return this.settings.now ? this.settings.now() : Date.now();
  }

  private noStore(): void {
    this.reply.header('cache-control', SESSION_CACHE_CONTROL);
  }

  private setCookie(value: string, maxAgeSeconds: number): void {
    this.noStore();
    const cookie = serializeCookie(SESSION_COOKIE, value, {
      maxAgeSeconds,
      httpOnly: true,
      sameSite: 'Lax',
      secure: this.req.protocol === 'https',
    });
    if (this.written !== undefined) {
      // A later session cookie in the same response (a slide, then a login) replaces the
      // earlier one, keeping the others (the consistency token's).
      const prev = this.reply.getHeader('set-cookie');
      const others = (Array.isArray(prev) ? prev : prev === undefined ? [] : [String(prev)]).filter((c) => c !== this.written);
      this.reply.removeHeader('set-cookie');
      for (const c of others) this.reply.header('set-cookie', c);
    }
    this.reply.header('set-cookie', cookie);
    this.written = cookie;
  }

  /** A store that fails (Redis down, rung 7) is a clear 503, not a hang or a 500. */
  private async store<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (cause) {
      throw new LadderError('SERVICE_UNAVAILABLE', 'The session store is unavailable; retry shortly.', { cause });
    }
  }
}
