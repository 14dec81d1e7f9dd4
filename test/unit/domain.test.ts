import { describe, expect, it } from 'vitest';
import { checkChosenCode, generateCode, GENERATED_LENGTH, RESERVED_CODES } from '../../src/app/domain/codes.ts';
import { checkTargetUrl } from '../../src/app/domain/urls.ts';
import { LadderError } from '../../src/kit/errors.ts';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as LadderError).code;
  }
  return 'OK';
};

describe('codes', () => {
  it('generates distinct URL-safe codes', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const c = generateCode();
      expect(c).toMatch(new RegExp(`^[A-Za-z0-9]{${GENERATED_LENGTH}}$`));
      seen.add(c);
    }
    expect(seen.size).toBe(5000);
  });

  it('checks chosen codes', () => {
    expect(checkChosenCode('abc')).toBe('abc');
    expect(checkChosenCode('A_b-9'.padEnd(32, 'x'))).toHaveLength(32);
    for (const bad of ['ab', 'a'.repeat(33), 'a b', 'a/b', 'a.b', '', 'ÄÖÜ']) expect(code(() => checkChosenCode(bad))).toBe('INVALID_CODE');
    for (const r of ['api', 'LOGIN', 'Dashboard', 'healthz', 'metrics', 'static', 'signup']) {
      expect(RESERVED_CODES.has(r.toLowerCase())).toBe(true);
      expect(code(() => checkChosenCode(r))).toBe('INVALID_CODE');
    }
  });
});

describe('target URLs', () => {
  const self = ['sho.rt', '127.0.0.1:3000', 'localhost:3000', '[::1]:3000'];
  it('accepts http and https, normalized', () => {
    expect(checkTargetUrl('https://Example.com/a?b=1#c', self)).toBe('https://example.com/a?b=1#c');
    expect(checkTargetUrl('http://example.com', self)).toBe('http://example.com/');
    expect(checkTargetUrl('https://bücher.example/', self)).toBe('https://xn--bcher-kva.example/');
    expect(checkTargetUrl('http://10.1.2.3:4000/', self)).toBe('http://10.1.2.3:4000/');
    expect(checkTargetUrl('http://localhost.example/', self)).toBe('http://localhost.example/');
    expect(checkTargetUrl('http://[2001:db8::1]/', self)).toBe('http://[2001:db8::1]/');
    expect(checkTargetUrl('http://[::ffff:10.0.0.1]/', self)).toBe('http://[::ffff:a00:1]/');
  });
  it('refuses other schemes, oversize, control characters, credentials, and itself', () => {
    for (const bad of [
      'javascript:alert(1)',
      'JAVASCRIPT:alert(1)',
      'data:text/html,hi',
      'file:///etc/passwd',
      'mailto:a@b.c',
      'example.com',
      '//example.com',
      `https://example.com/${'a'.repeat(2048)}`,
      'https://exa\nmple.com/',
      'https://u:p@example.com/',
      'https://sho.rt/abc',
      'http://SHO.RT:80/abc',
      'http://localhost:3000/x',
      'http://[::1]:3000/',
      // Loopback and unspecified addresses in every spelling, any port (issue 18, defect 4).
      'http://127.0.0.1:4000/',
      'http://127.9.9.9/',
      'http://0.0.0.0:3000/',
      'http://0/',
      'http://0x7f.1/',
      'http://2130706433/',
      'http://017700000001/',
      'http://127.1:3000/',
      'http://[::]/',
      'http://[0:0:0:0:0:0:0:1]/',
      'http://[::ffff:127.0.0.1]:3000/',
      'http://[::ffff:0.0.0.0]/',
      'http://[::127.0.0.1]/',
      'http://[64:ff9b::127.0.0.1]/',
      'http://a.localhost:3000/',
      'http://LOCALHOST./',
      'http://%6cocalhost/',
      'http://localhost.localdomain/',
      'https://SHO.RT.:8443/x',
      42,
      null,
    ]) {
      expect(code(() => checkTargetUrl(bad, self))).toBe('INVALID_URL');
    }
  });
});
