// What the load driver sends: the redirect paths and the logged-in users' requests, each the
// same sequence for the same seed, so that every server of a run gets the same requests.
import { describe, expect, it } from 'vitest';
import { benchCode } from '../../src/lab/dataset/bench-links.ts';
import { PathSource, SessionSource } from '../../src/lab/driver/load-driver.ts';
import { ZipfSampler } from '../../src/lab/driver/zipf.ts';

const draw = (source: { next(): { path: string; cookie: string | undefined } }, n: number) => Array.from({ length: n }, () => source.next());

describe('request sources', () => {
  it('redirects: seeded codes of the data set, no cookie', () => {
    const z = new ZipfSampler(500, 1);
    const a = draw(new PathSource(z, 3), 200);
    expect(draw(new PathSource(z, 3), 200)).toEqual(a);
    const codes = new Set(Array.from({ length: 500 }, (_, i) => '/' + benchCode(i)));
    for (const r of a) {
      expect(codes.has(r.path)).toBe(true);
      expect(r.cookie).toBeUndefined();
    }
  });

  it('sessions: every user and path drawn, uniformly, the same sequence per seed', () => {
    const workload = { cookies: ['sid=a', 'sid=b', 'sid=c', 'sid=d'], paths: ['/api/me', '/api/links?limit=20'] };
    const a = draw(new SessionSource(workload, 9), 8000);
    expect(draw(new SessionSource(workload, 9), 8000)).toEqual(a);
    expect(draw(new SessionSource(workload, 10), 50)).not.toEqual(a.slice(0, 50));
    for (const cookie of workload.cookies) {
      const share = a.filter((r) => r.cookie === cookie).length / a.length;
      expect(share).toBeGreaterThan(0.22);
      expect(share).toBeLessThan(0.28);
    }
    const me = a.filter((r) => r.path === '/api/me').length / a.length;
    expect(me).toBeGreaterThan(0.45);
    expect(me).toBeLessThan(0.55);
  });

  it('sessions: refuses a workload without users or paths', () => {
    expect(() => new SessionSource({ cookies: [], paths: ['/api/me'] }, 1)).toThrow(/users and paths/);
    expect(() => new SessionSource({ cookies: ['sid=a'], paths: [] }, 1)).toThrow(/users and paths/);
  });
});
