// RequestSession against a clock: the cookie's Max-Age agrees with the server's sliding idle
// expiry and never outlives the absolute one; session responses are private, no-store; an
// unusable cookie is no session (issue 18, defects 3, 6, 7).
import type { FastifyReply, FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { decodeCookieValue, parseCookies } from '../../src/kit/http/cookies.ts';
import { RequestSession, SESSION_COOKIE, type SessionSettings } from '../../src/kit/session/request-session.ts';
import type { SessionData, SessionStore } from '../../src/kit/session/session-store.ts';

const SECRET = 'unit-test-secret-that-is-long-enough-000';
const IDLE = 24 * 3600;
const ABSOLUTE = 7 * 24 * 3600;

/** A store on the same clock, recording each TTL it was given. */
class ClockStore implements SessionStore {
  readonly sessions = new Map<string, { data: SessionData; expiresAt: number }>();
  readonly ttls: number[] = [];
  constructor(private readonly clock: { now: number }) {}
  async get(id: string) {
    const e = this.sessions.get(id);
    return e && e.expiresAt > this.clock.now ? structuredClone(e.data) : undefined;
  }
  async set(id: string, data: SessionData, ttlSeconds: number) {
    this.ttls.push(ttlSeconds);
    this.sessions.set(id, { data: structuredClone(data), expiresAt: this.clock.now + ttlSeconds * 1000 });
  }
  async destroy(id: string) {
    this.sessions.delete(id);
  }
}

/** One request/response pair: the Cookie header it carries and the headers it got. */
function exchange(cookie: string | undefined, settings: SessionSettings) {
  const headers = new Map<string, string | string[]>();
  const reply = {
    header(name: string, value: string) {
      const prev = headers.get(name);
      if (name === 'set-cookie' && prev !== undefined) headers.set(name, [...(Array.isArray(prev) ? prev : [prev]), value]);
      else headers.set(name, value);
      return reply;
    },
    getHeader: (name: string) => headers.get(name),
    removeHeader: (name: string) => void headers.delete(name),
  };
  const req = { headers: cookie === undefined ? {} : { cookie }, protocol: 'http' };
  const session = new RequestSession(req as unknown as FastifyRequest, reply as unknown as FastifyReply, settings);
  const setCookies = () => {
    const v = headers.get('set-cookie');
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  };
  return { session, headers, setCookies };
}

function maxAge(setCookie: string): number {
  return Number(/Max-Age=(\d+)/.exec(setCookie)![1]);
}

function setup() {
  const clock = { now: Date.UTC(2026, 0, 1) };
  const store = new ClockStore(clock);
  const settings: SessionSettings = { store, secret: SECRET, idleSeconds: IDLE, absoluteSeconds: ABSOLUTE, now: () => clock.now };
  return { clock, store, settings };
}

async function login(settings: SessionSettings): Promise<string> {
  const { session, setCookies } = exchange(undefined, settings);
  await session.start(7);
  const [c] = setCookies();
  return c!.split(';')[0]!; // name=value, as a browser sends it back
}

describe('session cookie lifetime follows the server (clock injected)', () => {
  it('re-issues the cookie with the remaining lifetime when the idle expiry slides, at most once a minute', async () => {
    const { clock, settings } = setup();
    const cookie = await login(settings);
    clock.now += 30_000;
    const early = exchange(cookie, settings);
    expect((await early.session.get())?.userId).toBe(7);
    expect(early.setCookies()).toEqual([]); // within a minute: no store write, no cookie

    // An active user, a request every 12 hours: the browser would drop a login-time
    // Max-Age after 24 h; the re-issued cookie keeps it alive as long as the server does.
    let current = cookie;
    for (let i = 1; i <= 6; i++) {
      clock.now += 12 * 3600_000;
      const r = exchange(current, settings);
      expect((await r.session.get())?.userId, `request ${i}`).toBe(7);
      const [c] = r.setCookies();
      expect(c, `request ${i}`).toMatch(new RegExp(`^${SESSION_COOKIE}=`));
      expect(maxAge(c!)).toBe(IDLE);
      expect(c!.split(';')[0]).toBe(cookie); // the same id: a slide is not a rotation
      current = c!.split(';')[0]!;
    }
  });

  it('never issues a Max-Age beyond the absolute expiry, and ends there', async () => {
    const { clock, settings, store } = setup();
    const cookie = await login(settings);
    // 6.5 days of activity: what is left is half a day, less than the idle expiry.
    for (let t = 0; t < 13; t++) {
      clock.now += 12 * 3600_000;
      await exchange(cookie, settings).session.get();
    }
    clock.now += 3600_000; // 6 d 13 h after login
    const late = exchange(cookie, settings);
    expect(await late.session.get()).toBeDefined();
    const [c] = late.setCookies();
    expect(maxAge(c!)).toBe(11 * 3600);
    expect(store.ttls.at(-1)).toBe(11 * 3600);
    clock.now += 11 * 3600_000 + 1000; // past 7 days
    expect(await exchange(cookie, settings).session.get()).toBeUndefined();
  });

  it('a session idle longer than the idle expiry is gone', async () => {
    const { clock, settings } = setup();
    const cookie = await login(settings);
    clock.now += IDLE * 1000 + 1000;
    expect(await exchange(cookie, settings).session.get()).toBeUndefined();
  });

  it('a login after a slide in the same response leaves one session cookie, the new one', async () => {
    const { clock, settings } = setup();
    const cookie = await login(settings);
    clock.now += 3600_000;
    const r = exchange(cookie, settings);
    await r.session.start(8);
    const cookies = r.setCookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]!.split(';')[0]).not.toBe(cookie);
  });
});

describe('session responses are private, no-store', () => {
  it('when the session is read (with or without one), started or destroyed', async () => {
    const { settings } = setup();
    const cookie = await login(settings);
    for (const c of [undefined, cookie, `${SESSION_COOKIE}=garbage`]) {
      const r = exchange(c, settings);
      await r.session.get();
      expect(r.headers.get('cache-control')).toBe('private, no-store');
    }
    const started = exchange(undefined, settings);
    await started.session.start(1);
    expect(started.headers.get('cache-control')).toBe('private, no-store');
    const ended = exchange(cookie, settings);
    await ended.session.destroy();
    expect(ended.headers.get('cache-control')).toBe('private, no-store');
  });
});

describe('an unusable session cookie is no session, never an exception', () => {
  it.each(['%', '%zz', '%E0%A4%A', '%ff%fe', '%uD800', 'a%', '%%%', '', '.', 'x.y'])('ladder_sid=%s', async (value) => {
    const { settings } = setup();
    const r = exchange(`${SESSION_COOKIE}=${value}`, settings);
    await expect(r.session.get()).resolves.toBeUndefined();
  });

  it('decodeCookieValue and parseCookies never throw', () => {
    expect(decodeCookieValue('%')).toBeUndefined();
    expect(decodeCookieValue('%41b')).toBe('Ab');
    expect(decodeCookieValue('plain')).toBe('plain');
    expect(parseCookies('=; ;;a=1; %=%; a=2; b').get('a')).toBe('1');
    expect(parseCookies('x'.repeat(9000)).size).toBe(0);
  });
});
