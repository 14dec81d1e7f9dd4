// The parsers that meet hostile input first (issue 18): they accept what the contract says,
// refuse the rest, and never throw on anything a client can send.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../../src/app/domain/cursor.ts';
import { parseTrustProxy } from '../../src/kit/config.ts';
import { LadderError } from '../../src/kit/errors.ts';
import { isJsonContentType } from '../../src/kit/http/content-type.ts';
import { mapError } from '../../src/kit/http/error-mapping.ts';
import { acceptableHost, isValidHostHeader, requestOrigin } from '../../src/kit/http/host-header.ts';

describe('isJsonContentType', () => {
  it('accepts application/json with parameters and a UTF-8 charset', () => {
    for (const t of ['application/json', 'APPLICATION/Json', 'application/json; charset=utf-8', 'application/json;charset=UTF8', 'application/json; charset="utf-8"', 'application/json;', 'application/json ; q=1']) {
      expect(isJsonContentType(t), t).toBe(true);
    }
  });
  it('refuses other charsets, other types, +json, and malformed headers', () => {
    for (const t of [undefined, '', 'application/json; charset=latin1', 'application/json; charset=utf-8; charset=utf-8', 'application/json-patch+json', 'application/ld+json', 'text/json', 'application/json x', 'application/json; charset', 'application/json; =1', 'application/json; a="b', 'application /json', 'application/json\u0000', `application/json; x=${'a'.repeat(300)}`]) {
      expect(isJsonContentType(t), String(t)).toBe(false);
    }
  });
  it('never throws', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => typeof isJsonContentType(s) === 'boolean'));
  });
});

describe('Host header', () => {
  it('accepts host names, IPv4 and [IPv6] with an optional port', () => {
    for (const h of ['example.com', 'EXAMPLE.com:8080', '127.0.0.1:3000', '[::1]:3000', '[2001:db8::1]', 'localhost', 'a-b.c_d.example.', 'x:65535']) {
      expect(isValidHostHeader(h), h).toBe(true);
    }
  });
  it('refuses anything that is not host[:port]', () => {
    for (const h of ['', 'evil.example/phish?x=', 'a b', 'x:0', 'x:65536', 'x:', ':80', '[::1', '[zz::1]', 'u@h', '-a.example', 'a..b', 'é.example', 'h\u0000', `${'a'.repeat(64)}.example`, 'x'.repeat(300)]) {
      expect(isValidHostHeader(h), h).toBe(false);
    }
  });
  it('HTTP/1.1 needs one; HTTP/1.0 may go without', () => {
    expect(acceptableHost(undefined, '1.1')).toBe(false);
    expect(acceptableHost(undefined, '1.0')).toBe(true);
    expect(acceptableHost('bad host', '1.0')).toBe(false);
  });
  it('the origin: PUBLIC_URL, else the Host, else the listen address; only http or https', () => {
    const local = { address: '::1', port: 4000 };
    expect(requestOrigin({ protocol: 'https', host: 'sho.rt' }, 'http', 'evil.example', local)).toEqual({ protocol: 'https', host: 'sho.rt' });
    expect(requestOrigin(undefined, 'https', 'Sho.RT:8443', local)).toEqual({ protocol: 'https', host: 'sho.rt:8443' });
    expect(requestOrigin(undefined, 'http', undefined, local)).toEqual({ protocol: 'http', host: '[::1]:4000' });
    expect(requestOrigin(undefined, 'javascript', 'a.example', local).protocol).toBe('http');
  });
});

describe('TRUST_PROXY', () => {
  it('unset, empty or 0: nobody; 1: one hop; else a list of addresses and CIDRs', () => {
    expect(parseTrustProxy(undefined)).toBe(false);
    expect(parseTrustProxy('')).toBe(false);
    expect(parseTrustProxy('0')).toBe(false);
    expect(parseTrustProxy('1')).toBe(1);
    expect(parseTrustProxy('127.0.0.1')).toEqual(['127.0.0.1']);
    expect(parseTrustProxy('10.0.0.0/8, fd00::/8,::1')).toEqual(['10.0.0.0/8', 'fd00::/8', '::1']);
  });
  it('refuses what is not an address or CIDR, naming the field and the fix', () => {
    for (const bad of ['true', 'yes', '2', '10.0.0.0/33', '::/129', 'proxy.example', '10.0.0.1,', '1.2.3.4/x']) {
      expect(() => parseTrustProxy(bad), bad).toThrow(/^TRUST_PROXY: .*Fix: /);
    }
  });
});

describe('pagination cursor', () => {
  const c = (s: string) => Buffer.from(s).toString('base64url');
  it('round-trips what the list encodes', () => {
    const at = new Date('2026-11-28T16:50:50.123Z');
    expect(decodeCursor(encodeCursor(at, '42'))).toEqual({ createdAt: at.toISOString(), id: '42' });
    expect(decodeCursor(undefined)).toBeUndefined();
  });
  it('refuses impossible instants and ids out of bigint', () => {
    for (const bad of ['2024-02-30T00:00:00.000Z|1', '2023-02-29T00:00:00.000Z|1', '2024-01-01T24:00:00.000Z|1', '2024-00-01T00:00:00.000Z|1', '0000-01-01T00:00:00.000Z|1', '2024-01-01T00:00:00.000Z|9223372036854775808']) {
      expect(() => decodeCursor(c(bad)), bad).toThrow(LadderError);
    }
    expect(decodeCursor(c('2024-02-29T00:00:00.000Z|9223372036854775807'))?.id).toBe('9223372036854775807');
  });
  it('anything else is a LadderError VALIDATION_FAILED, never another exception', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }).map((s) => Buffer.from(s).toString('base64url'))), (s) => {
        try {
          decodeCursor(s);
        } catch (err) {
          expect(err).toBeInstanceOf(LadderError);
          expect((err as LadderError).code).toBe('VALIDATION_FAILED');
        }
      }),
    );
  });
});

describe('mapError', () => {
  const ctx = { unrouted: false, draining: false, clientGone: false };
  const fst = (code: string, statusCode: number) => Object.assign(new Error(code), { code, statusCode });
  it("maps Fastify's 4xx onto the catalogue, unrouted ones to NOT_FOUND", () => {
    expect(mapError(fst('FST_ERR_ROUTE_MISSING_CONTENT_TYPE', 400), ctx).error.code).toBe('VALIDATION_FAILED');
    expect(mapError(fst('FST_ERR_ROUTE_MISSING_CONTENT_TYPE', 400), { ...ctx, unrouted: true }).error.code).toBe('NOT_FOUND');
    expect(mapError(fst('FST_ERR_CTP_BODY_TOO_LARGE', 413), ctx).error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(mapError(fst('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415), ctx).log).toBe('none');
  });
  it('a reset is info only when the client is gone; a bug is an error', () => {
    const reset = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
    expect(mapError(reset, { ...ctx, clientGone: true }).log).toBe('info');
    expect(mapError(reset, ctx).log).toBe('error'); // e.g. a database connection's reset
    expect(mapError(new TypeError('x is undefined'), ctx)).toMatchObject({ log: 'error', error: { code: 'INTERNAL' } });
  });
  it('a database that cannot be reached is a 503 logged at info, not a 500', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(mapError(refused, ctx)).toMatchObject({ log: 'info', error: { code: 'SERVICE_UNAVAILABLE', status: 503 } });
    expect(mapError(new Error('timeout exceeded when trying to connect'), ctx).error.code).toBe('SERVICE_UNAVAILABLE');
    expect(mapError(Object.assign(new Error('the database system is starting up'), { code: '57P03' }), ctx).error.code).toBe('SERVICE_UNAVAILABLE');
  });
});
