// The Host header, checked, and the origin (scheme and host) that absolute URLs such as
// `shortUrl` are built from. The origin never comes from X-Forwarded-Host: that header is
// whatever a client (or a balancer that passes it through) says, and a short URL on
// someone else's host is a phishing link signed by us. In production PUBLIC_URL names the
// origin and nothing in a request can change it; without it the request's own Host is used,
// but only when it is a valid host[:port] (anything else is refused with 400 before a route
// runs), and a request without Host (HTTP/1.0) gets the address the server listens on.
import { isIPv6 } from 'node:net';

const LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
const HOST = new RegExp(`^(?:\\[([0-9A-Fa-f:.]{2,45})\\]|(${LABEL}(?:\\.${LABEL})*\\.?))(?::(\\d{1,5}))?$`);

/** True when a Host header value is a host name, IPv4 or [IPv6] address, with an optional port. */
export function isValidHostHeader(value: string): boolean {
  if (value.length > 260) return false;
  const m = HOST.exec(value);
  if (!m) return false;
  if (m[1] !== undefined && !isIPv6(m[1])) return false;
  if (m[2] !== undefined && m[2].length > 254) return false;
  return m[3] === undefined || (Number(m[3]) >= 1 && Number(m[3]) <= 65535);
}

/**
 * Whether a request's Host header lets it through: a valid host[:port], or none at all on
 * HTTP/1.0 (which has no Host). HTTP/1.1 without one is refused, as RFC 9112 §3.2 says; we
 * answer that ourselves (Node's own answer is a bare 400 outside the catalogue's shape).
 */
export function acceptableHost(value: string | undefined, httpVersion: string): boolean {
  return value === undefined ? httpVersion === '1.0' || httpVersion === '0.9' : isValidHostHeader(value);
}

/** `host:port` for a socket address, bracketing IPv6. */
export function hostOf(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

export interface Origin {
  protocol: string;
  host: string;
}

/** PUBLIC_URL parsed once; undefined when it is not set. */
export function publicOrigin(publicUrl: string | undefined): Origin | undefined {
  if (!publicUrl) return undefined;
  const u = new URL(publicUrl);
  return { protocol: u.protocol.replace(':', ''), host: u.host };
}

/**
 * The origin a request's absolute URLs use. `protocol` is the request's (X-Forwarded-Proto
 * counts only from a trusted proxy: Fastify's trustProxy decides); `hostHeader` is the raw
 * Host header (already checked by isValidHostHeader); `local` is where the request arrived.
 */
export function requestOrigin(
  fixed: Origin | undefined,
  protocol: string,
  hostHeader: string | undefined,
  local: { address: string | undefined; port: number | undefined },
): Origin {
  if (fixed) return fixed;
  // A trusted proxy's X-Forwarded-Proto could still say anything; only these two are schemes of ours.
  if (protocol !== 'https') protocol = 'http';
  if (hostHeader !== undefined && hostHeader !== '' && isValidHostHeader(hostHeader)) return { protocol, host: hostHeader.toLowerCase() };
  return { protocol, host: hostOf(local.address ?? '127.0.0.1', local.port ?? 80) };
}
