// Carries a caller's consistency tokens between requests (the TokenCarrier the database
// sees): in a signed cookie, `ladder_lsn`, which every route gets at no cost (the redirect
// included: no session-store lookup on the hot path), and, after writes, in the session
// too when the request has loaded one (a client that keeps only the session cookie still
// reads its own writes on session routes). Why both, and the alternatives: docs/consistency.md.
//
// Cookie value: <shard>:<token>[~<shard>:<token>...] signed with the server secret, so a
// client cannot invent a position that would send all its reads to the primary.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TokenCarrier } from '../db/database.ts';
import type { RequestSession } from '../session/request-session.ts';
import { parseCookies, serializeCookie, sign, unsign } from './cookies.ts';

export const CONSISTENCY_COOKIE = 'ladder_lsn';
/** Long enough to outlast any lag bound; a stale pin costs one read on the primary. */
const MAX_AGE_SECONDS = 24 * 3600;
const MAX_VALUE = 512;
const ENTRY = /^([a-z0-9]{1,16}):([0-9a-z_]{1,40})$/;
const MAX_SHARDS = 16;

export class ConsistencyCookie implements TokenCarrier {
  private inCookie: RawConsistencyCookie | undefined;
  private written: string | undefined;

  constructor(
    private readonly req: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly session: RequestSession,
    private readonly secret: string,
  ) {}

  tokens(shard: string): readonly string[] {
    const fromCookie = this.cookie().tokens(shard);
    const fromSession = this.session.peek()?.tokens?.[shard];
    return fromSession ? [...fromCookie, fromSession] : fromCookie;
  }

  save(shard: string, token: string, durable: boolean): Promise<void> | undefined {
    this.setCookie(this.cookie().set(shard, token));
    return durable ? this.session.setToken(shard, token) : undefined;
  }

  /** The request's cookie, read when first needed (its tokens checked: anything forged or malformed is none). */
  private cookie(): RawConsistencyCookie {
    this.inCookie ??= new RawConsistencyCookie(this.req.headers.cookie, this.secret, this.req.protocol === 'https');
    return this.inCookie;
  }

  private setCookie(cookie: string): void {
    if (this.written !== undefined) {
      // A second change in the same request replaces the first, keeping other cookies (the session's).
      const prev = this.reply.getHeader('set-cookie');
      const others = (Array.isArray(prev) ? prev : prev === undefined ? [] : [String(prev)]).filter(
        (c) => c !== this.written,
      );
      this.reply.removeHeader('set-cookie');
      for (const c of others) this.reply.header('set-cookie', c);
    }
    this.reply.header('set-cookie', cookie);
    this.written = cookie;
  }
}

/**
 * The cookie's side of the carrier, on a raw request: the tokens the cookie brings, and the
 * Set-Cookie that keeps a new one. ConsistencyCookie adds the session's; the kit's fast path
 * (fast-path.ts) uses it alone (a route that has not loaded the session, the redirect's,
 * reads none from it either) and sends `setCookie` with its answer. The fast path takes
 * plain HTTP only, hence not `secure` by default.
 */
export class RawConsistencyCookie implements TokenCarrier {
  private brought: Map<string, string> | undefined;
  /** The Set-Cookie header this request's reads call for, if any. */
  setCookie: string | undefined;

  constructor(
    private readonly header: string | undefined,
    private readonly secret: string,
    private readonly secure = false,
  ) {}

  tokens(shard: string): readonly string[] {
    const token = this.cookie().get(shard);
    return token ? [token] : [];
  }

  /** Reads save no durable token; a write does not take the fast path. */
  save(shard: string, token: string): undefined {
    this.setCookie = this.set(shard, token);
    return undefined;
  }

  /** Adds `token` to the cookie's tokens; the signed Set-Cookie header that carries them all. */
  set(shard: string, token: string): string {
    const map = this.cookie();
    map.set(shard, token);
    return signedCookie(cookieValue(map), this.secret, this.secure);
  }

  private cookie(): Map<string, string> {
    this.brought ??= parseTokenCookie(this.header, this.secret);
    return this.brought;
  }
}

/** `<shard>:<token>[~<shard>:<token>...]`, before signing. */
function cookieValue(map: ReadonlyMap<string, string>): string {
  let value = '';
  for (const [s, t] of map) value = value === '' ? `${s}:${t}` : `${value}~${s}:${t}`;
  return value;
}

/**
 * Most responses carry one of a few values (every anonymous reader pinned to one of the
 * replicas with no position yet): their signed Set-Cookie is kept rather than signed again.
 */
const signedCookies = new Map<string, Map<string, string>>();
const MAX_SIGNED = 256;

function signedCookie(value: string, secret: string, secure: boolean): string {
  let bySecret = signedCookies.get(secret);
  if (!bySecret) signedCookies.set(secret, (bySecret = new Map<string, string>()));
  const key = secure ? `s${value}` : value;
  let cookie = bySecret.get(key);
  if (cookie === undefined) {
    cookie = serializeCookie(CONSISTENCY_COOKIE, sign(value, secret), {
      maxAgeSeconds: MAX_AGE_SECONDS,
      httpOnly: true,
      sameSite: 'Lax',
      secure,
    });
    if (bySecret.size >= MAX_SIGNED) bySecret.clear();
    bySecret.set(key, cookie);
  }
  return cookie;
}

function parseTokenCookie(header: string | undefined, secret: string): Map<string, string> {
  const map = new Map<string, string>();
  const raw = parseCookies(header).get(CONSISTENCY_COOKIE);
  if (!raw || raw.length > MAX_VALUE) return map;
  const value = unsign(raw, secret);
  if (!value) return map;
  const entries = value.split('~');
  if (entries.length > MAX_SHARDS) return map;
  for (const entry of entries) {
    const m = ENTRY.exec(entry);
    if (!m) return new Map();
    map.set(m[1]!, m[2]!);
  }
  return map;
}
