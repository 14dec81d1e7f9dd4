// Raw HTTP/1.x over a TCP socket, for hostile-input tests: sends exactly the bytes given
// (any method, a missing or malformed Host, HTTP/1.0, a body that stops halfway), and
// reads the whole answer. A connection closed or reset without a complete response is
// reported as such (`reset`), so a test can assert that it never happens.
import net from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type RawResult = { ok: true; res: RawResponse } | { ok: false; reset: string };

export interface RawRequest {
  method: string;
  path: string;
  /** Header lines in order; a Host header is not added unless given. */
  headers?: [string, string][];
  body?: string | Buffer;
  version?: '1.0' | '1.1';
}

/** The request as bytes: what `send` writes. */
export function encodeRequest(r: RawRequest): Buffer {
  const lines = [`${r.method} ${r.path} HTTP/${r.version ?? '1.1'}`];
  const body = r.body === undefined ? undefined : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body, 'utf8');
  const headers = r.headers ?? [];
  const has = (name: string) => headers.some(([n]) => n.toLowerCase() === name);
  for (const [n, v] of headers) lines.push(`${n}: ${v}`);
  if (!has('connection')) lines.push('Connection: close');
  if (body !== undefined && !has('content-length') && !has('transfer-encoding')) lines.push(`Content-Length: ${body.length}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  return body === undefined ? head : Buffer.concat([head, body]);
}

/** Parses one complete response from the bytes read, or undefined if they are not one. */
function parseResponse(data: Buffer, bodiless: boolean): RawResponse | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...headerLines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '');
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon < 1) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const status = Number(m[1]);
  // A response to HEAD, a 204 and a 304 have no body, whatever Content-Length says.
  if (bodiless || status === 204 || status === 304 || (status >= 100 && status < 200)) return { status, headers, body: '' };
  let body = data.subarray(end + 4);
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
    const parts: Buffer[] = [];
    let rest = body;
    for (;;) {
      const lineEnd = rest.indexOf('\r\n');
      if (lineEnd < 0) return undefined;
      const size = parseInt(rest.subarray(0, lineEnd).toString('latin1'), 16);
      if (Number.isNaN(size)) return undefined;
      if (size === 0) break;
      parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      rest = rest.subarray(lineEnd + 2 + size + 2);
    }
    body = Buffer.concat(parts);
  } else if (headers['content-length'] !== undefined && body.length < Number(headers['content-length'])) {
    return undefined;
  }
  return { status, headers, body: body.toString('utf8') };
}

/** Sends the request and reads to the end of the connection (Connection: close). */
export function send(port: number, request: RawRequest | Buffer, timeoutMs = 10_000): Promise<RawResult> {
  const bytes = Buffer.isBuffer(request) ? request : encodeRequest(request);
  const bodiless = !Buffer.isBuffer(request) && request.method.toUpperCase() === 'HEAD';
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port });
    let settled = false;
    const finish = (why: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const res = parseResponse(Buffer.concat(chunks), bodiless);
      resolve(res ? { ok: true, res } : { ok: false, reset: why ?? 'closed without a complete response' });
    };
    const timer = setTimeout(() => finish('timed out'), timeoutMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('end', () => finish(undefined));
    socket.on('close', () => finish(undefined));
    // A reset after a complete response (the server closing early) still counts as answered.
    socket.on('error', (err) => finish(`socket error: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    socket.write(bytes);
  });
}

/** A request as a curl command (for a failing fuzz case). */
export function curlCommand(base: string, r: RawRequest): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const parts = ['curl', '-sS', '-i', '--path-as-is', '-X', q(r.method)];
  if (r.version === '1.0') parts.push('--http1.0');
  for (const [n, v] of r.headers ?? []) parts.push('-H', q(`${n}: ${v}`));
  if (!(r.headers ?? []).some(([n]) => n.toLowerCase() === 'host')) parts.push('-H', q('Host:'));
  if (r.body !== undefined) parts.push('--data-binary', q(Buffer.isBuffer(r.body) ? r.body.toString('latin1') : r.body));
  parts.push(q(base + r.path));
  return parts.join(' ');
}
