import { rmSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { haproxySocketPath } from '../../src/launcher/haproxy.ts';

describe('haproxySocketPath', () => {
  it('keeps the socket in the HAProxy folder when the path is short enough', () => {
    expect(haproxySocketPath('/work/p/.ladder/up/haproxy')).toBe('/work/p/.ladder/up/haproxy/admin.sock');
  });

  it('moves it to a private folder under /tmp, the same for every caller, when the path is too long for a Unix socket', () => {
    const deep = `/tmp/tmp.abcdefghij/p/.ladder/test/bench-topology-abcdef/session/state/topology/up/haproxy`;
    const a = haproxySocketPath(deep);
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(97);
    expect(a).toMatch(/^\/tmp\/ladder-haproxy-[0-9a-f]{16}\/admin\.sock$/);
    expect(haproxySocketPath(deep)).toBe(a);
    const b = haproxySocketPath(`${deep}2`);
    expect(b).not.toBe(a);
    expect(statSync(a.replace(/\/admin\.sock$/, '')).mode & 0o777).toBe(0o700);
    for (const p of [a, b]) rmSync(p.replace(/\/admin\.sock$/, ''), { recursive: true, force: true });
  });
});
