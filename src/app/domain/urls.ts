// Which target URLs a link may point at: absolute http(s), at most 2048 characters, no
// credentials, and not this service itself (a link to a short link makes loops: a redirect
// that points back at us counts a click per hop). "This service" is decided by what the
// host means after WHATWG URL normalization, never by how it is spelt: every loopback and
// unspecified address in any form (0.0.0.0, 127.x, 0x7f.1, 2130706433, ::1, ::,
// ::ffff:127.0.0.1 and the other IPv6 forms that embed such an IPv4 address), every
// `localhost` name, and the hosts the service is reached under (PUBLIC_URL, the request's
// Host, the address it listens on), on any port.
import { isIPv4, isIPv6 } from 'node:net';
import { LadderError } from '../../kit/errors.ts';

export const MAX_URL_LENGTH = 2048;

/** A dotted IPv4 address that is loopback (127/8) or "this network" (0/8, 0.0.0.0 included). */
function isLocalIPv4(address: string): boolean {
  const first = Number(address.slice(0, address.indexOf('.')));
  return first === 127 || first === 0;
}

/** The 8 groups of an IPv6 address (as WHATWG URL serializes it, or a dotted tail), or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  if (!isIPv6(address)) return undefined;
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  const groups = [...left, ...fill, ...right].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** ::, ::1, and IPv6 addresses that carry a local IPv4 address (mapped, compatible, NAT64). */
function isLocalIPv6(address: string): boolean {
  const g = ipv6Groups(address);
  if (!g) return false;
  const zeroUpTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(7) && (g[7] === 0 || g[7] === 1)) return true;
  const v4 = `${g[6]! >> 8}.${g[6]! & 0xff}.${g[7]! >> 8}.${g[7]! & 0xff}`;
  const mapped = zeroUpTo(5) && g[5] === 0xffff;
  const compatible = zeroUpTo(6);
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0);
  return (mapped || compatible || nat64) && isLocalIPv4(v4);
}

/** A host name as WHATWG URL leaves it: lower case, IPv4 forms normalized, IPv6 in brackets. */
function bare(hostname: string): string {
  return hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
}

/** The host name of a host[:port] value, normalized as a URL's would be; undefined if none. */
function hostnameOf(hostAndPort: string): string | undefined {
  try {
    return bare(new URL(`http://${hostAndPort}`).hostname);
  } catch {
    return undefined; // not a host: it names nothing a URL could point at, so nothing to refuse
  }
}

/**
 * True when a URL's host (its `hostname`, as WHATWG URL normalized it) means this service:
 * a loopback or unspecified address, a localhost name, or one of `selfHosts` (host[:port]
 * values the service is reached under; their ports do not matter).
 */
export function isSelfHost(hostname: string, selfHosts: readonly string[]): boolean {
  const host = bare(hostname);
  if (host === 'localhost' || host.endsWith('.localhost') || host === 'localhost.localdomain') return true;
  if (isIPv4(host) && isLocalIPv4(host)) return true;
  if (isLocalIPv6(host)) return true;
  return selfHosts.some((self) => hostnameOf(self) === host);
}

/**
 * Returns the normalized URL or throws INVALID_URL. `selfHosts` are host[:port] values
 * under which this service is reached.
 */
export function checkTargetUrl(input: unknown, selfHosts: readonly string[]): string {
  if (typeof input !== 'string') throw new LadderError('INVALID_URL', 'url must be a string.');
  const raw = input.trim();
  if (raw.length === 0) throw new LadderError('INVALID_URL', 'url is empty.');
  if (raw.length > MAX_URL_LENGTH) throw new LadderError('INVALID_URL', `url is longer than ${MAX_URL_LENGTH} characters.`);
  // Control characters and whitespace inside a URL are a smuggling trick, never a real link.
  if (/[\u0000-\u001f\u007f\s]/.test(raw)) throw new LadderError('INVALID_URL', 'url contains spaces or control characters.');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new LadderError('INVALID_URL', 'url is not an absolute URL.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new LadderError('INVALID_URL', 'url must start with http:// or https://.');
  }
  if (!url.hostname) throw new LadderError('INVALID_URL', 'url has no host.');
  if (url.username || url.password) throw new LadderError('INVALID_URL', 'url must not contain credentials.');
  if (isSelfHost(url.hostname, selfHosts)) throw new LadderError('INVALID_URL', 'url points back at this service.');
  const normalized = url.href;
  if (normalized.length > MAX_URL_LENGTH) throw new LadderError('INVALID_URL', `url is longer than ${MAX_URL_LENGTH} characters.`);
  return normalized;
}
