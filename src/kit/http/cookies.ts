// Cookie parsing and serialization, and HMAC signing of cookie values. Small on purpose:
// only what sessions need, with bounded, whitelisted input. Every parser here returns
// "nothing" for input it cannot use and never throws: a cookie is whatever a client sent,
// and an unusable one is the same as none (never a 500).
import { createHmac, timingSafeEqual } from 'node:crypto';

const MAX_HEADER = 8192;

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header || header.length > MAX_HEADER) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 1) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name) || out.has(name)) continue;
    out.set(name, value);
  }
  return out;
}

/**
 * A cookie value with its percent-encoding undone, or undefined when it is not valid
 * percent-encoding (`%`, `%zz`, a lone surrogate's bytes): decodeURIComponent would throw.
 */
export function decodeCookieValue(raw: string): string | undefined {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined; // a client's garbage: treated as no cookie, which the caller handles
  }
}

export interface CookieOptions {
  maxAgeSeconds?: number;
  httpOnly?: boolean;
  secure?: boolean;
  sameSite?: 'Lax' | 'Strict';
  path?: string;
}

export function serializeCookie(name: string, value: string, opts: CookieOptions = {}): string {
  const parts = [`${name}=${value}`, `Path=${opts.path ?? '/'}`];
  if (opts.maxAgeSeconds !== undefined) parts.push(`Max-Age=${Math.max(0, Math.floor(opts.maxAgeSeconds))}`);
  if (opts.httpOnly !== false) parts.push('HttpOnly');
  parts.push(`SameSite=${opts.sameSite ?? 'Lax'}`);
  if (opts.secure) parts.push('Secure');
  return parts.join('; ');
}

/** `value.signature`, signature = HMAC-SHA256(secret, value), base64url. */
export function sign(value: string, secret: string): string {
  return `${value}.${createHmac('sha256', secret).update(value).digest('base64url')}`;
}

/** The value if the signature matches, else undefined. */
export function unsign(signed: string, secret: string): string | undefined {
  const dot = signed.lastIndexOf('.');
  if (dot < 1) return undefined;
  const value = signed.slice(0, dot);
  const given = Buffer.from(signed.slice(dot + 1));
  const expected = Buffer.from(createHmac('sha256', secret).update(value).digest('base64url'));
  return given.length === expected.length && timingSafeEqual(given, expected) ? value : undefined;
}
