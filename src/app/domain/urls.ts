// Which target URLs a link may point at: absolute http(s), at most 2048 characters, no
// credentials, and not this service itself (a link to a short link makes loops).
import { LadderError } from '../../kit/errors.ts';

export const MAX_URL_LENGTH = 2048;

function defaultPort(protocol: string): string {
  return protocol === 'https:' ? '443' : '80';
}

function hostKey(hostname: string, port: string, protocol: string): string {
  return `${hostname.toLowerCase().replace(/^\[|\]$/g, '')}:${port || defaultPort(protocol)}`;
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
  const target = hostKey(url.hostname, url.port, url.protocol);
  for (const self of selfHosts) {
    let parsed: URL;
    try {
      parsed = new URL(`${url.protocol}//${self}`);
    } catch {
      continue;
    }
    if (hostKey(parsed.hostname, parsed.port, url.protocol) === target) {
      throw new LadderError('INVALID_URL', 'url points back at this service.');
    }
  }
  const normalized = url.href;
  if (normalized.length > MAX_URL_LENGTH) throw new LadderError('INVALID_URL', `url is longer than ${MAX_URL_LENGTH} characters.`);
  return normalized;
}
