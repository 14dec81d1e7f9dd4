// HAProxy's own answers are the catalogue's JSON errors: each errorfile is a whole HTTP
// response whose body is {"error":{code,message}} with a code whose status is the file's,
// and the generated configuration points HAProxy at every one of them.
import { describe, expect, test } from 'vitest';
import { ErrorCodes } from '../../src/kit/errors.ts';
import { haproxyConfig, haproxyErrorFiles } from '../../src/launcher/haproxy.ts';

describe('HAProxy errorfiles', () => {
  const files = haproxyErrorFiles();

  test('cover the statuses HAProxy answers itself', () => {
    expect([...files.keys()]).toEqual(expect.arrayContaining([400, 408, 502, 503, 504]));
  });

  test.each([...files.entries()])('%i is a complete response with a catalogue body', (status, response) => {
    const [head, body] = response.split('\r\n\r\n');
    const lines = head!.split('\r\n');
    expect(lines[0]).toMatch(new RegExp(`^HTTP/1\\.1 ${status} [A-Za-z ]+$`));
    const headers = Object.fromEntries(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 2)]));
    expect(headers['content-type']).toBe('application/json; charset=utf-8');
    expect(Number(headers['content-length'])).toBe(Buffer.byteLength(body!));
    expect(headers['cache-control']).toBe('no-store');
    const { error } = JSON.parse(body!);
    expect(Object.keys(ErrorCodes)).toContain(error.code);
    // A 5xx that means "no server" is SERVICE_UNAVAILABLE whatever its status; the others match.
    if (status < 500) expect(ErrorCodes[error.code as keyof typeof ErrorCodes].status).toBe(status);
    expect(typeof error.message).toBe('string');
  });

  test('the configuration names each file', () => {
    const cfg = haproxyConfig({ errorFilesDir: '/x/errors', bindHost: '127.0.0.1', bindPort: 1, adminSocket: '/x/s', servers: [], slots: 1, balance: 'roundrobin', sticky: false });
    for (const status of files.keys()) expect(cfg).toContain(`errorfile ${status} /x/errors/${status}.http`);
  });
});
