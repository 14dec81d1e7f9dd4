import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/kit/errors.ts';
import { buildTopology, checkWebCount, featuresOf, RUNGS } from '../../src/topology/topology.ts';

describe('topology', () => {
  it('rung 1 is built and has no extra features', () => {
    const t = buildTopology({ rung: 1 });
    expect(t.rung).toBe(1);
    expect(t.web.count).toBe(1);
    expect(Object.values(t.features).every((v) => v === false)).toBe(true);
    expect(Object.isFrozen(t)).toBe(true);
  });

  it('rungs are cumulative presets', () => {
    expect(featuresOf(5)).toMatchObject({ loadBalancer: true, replicas: true, cache: true, cdn: false });
    expect(featuresOf(6)).toMatchObject({ cache: true, cdn: true, sharedSessions: false });
    expect(featuresOf(10)).toMatchObject({ loadBalancer: true, sharedSessions: true, queue: true, shards: true });
    expect(RUNGS).toHaveLength(10);
  });

  it('refuses a rung that is not built yet, saying so', () => {
    expect(() => buildTopology({ rung: 8 })).toThrow(ConfigError);
    expect(() => buildTopology({ rung: 8 })).toThrow(/rung 8 \(several regions\) is not built yet/);
    // Rung 6 is built: rung 7 runs with the edge and skips nothing.
    expect(buildTopology({ rung: 6 }).features.cdn).toBe(true);
    expect(buildTopology({ rung: 7 }).skipped).toEqual([]);
  });

  it('rung 4 is a primary with 2 replicas unless told; the flag switches replicas on below it and off above', () => {
    const t = buildTopology({ rung: 4 });
    expect(t.database).toMatchObject({ replicas: 2, replicaDelayMs: 0, cpu: undefined });
    expect(t.features).toMatchObject({ loadBalancer: true, replicas: true });
    expect(t.skipped).toEqual([]);
    expect(buildTopology({ rung: 7 }).database.replicas).toBe(2);
    expect(buildTopology({ rung: 7 }).skipped.join()).not.toMatch(/rung 4/);
    expect(buildTopology({ rung: 5 }).features).toMatchObject({ cache: true, replicas: true, loadBalancer: true });
    expect(buildTopology({ rung: 7 }).features.cache).toBe(true);
    expect(buildTopology({ rung: 7, cache: false }).features).toMatchObject({ cache: false, sharedSessions: true });
    const off = buildTopology({ rung: 4, replicas: 0 });
    expect(off.features.replicas).toBe(false);
    const alone = buildTopology({ rung: 3, replicas: 1, replicaDelayMs: 500, dbCpu: 0.15 });
    expect(alone.features.replicas).toBe(true);
    expect(alone.database).toMatchObject({ replicas: 1, replicaDelayMs: 500, cpu: 0.15 });
    expect(buildTopology({ rung: 3 }).database.replicas).toBe(0);
  });

  it('validates the database flags, naming the flag and the fix', () => {
    expect(() => buildTopology({ rung: 4, replicas: 9 })).toThrow(/^replicas: "9" replicas\. Fix: use 0 to 8/);
    expect(() => buildTopology({ rung: 4, replicas: 1.5 })).toThrow(/^replicas: /);
    expect(() => buildTopology({ rung: 1, replicas: 1 })).toThrow(/^replicas: rung 1 runs one embedded Postgres/);
    expect(() => buildTopology({ rung: 4, replicaDelayMs: -1 })).toThrow(/^replica-delay: /);
    expect(() => buildTopology({ rung: 4, replicaDelayMs: 2.5 })).toThrow(/^replica-delay: /);
    expect(() => buildTopology({ rung: 3, replicaDelayMs: 1000 })).toThrow(/^replica-delay: there are no replicas to delay\. Fix: add --replicas R/);
    expect(() => buildTopology({ rung: 4, dbCpu: 0 })).toThrow(/^db-cpu: /);
    expect(() => buildTopology({ rung: 4, dbCpu: Number.NaN })).toThrow(/^db-cpu: /);
    expect(() => buildTopology({ rung: 1, dbCpu: 0.5 })).toThrow(/^db-cpu: /);
  });

  it('names the field and the fix for invalid settings', () => {
    expect(() => buildTopology({ rung: 11 })).toThrow(/^rung: .* Fix: use a whole number from 1 to 10/);
    expect(() => buildTopology({ rung: 1, web: 3 })).toThrow(/^web: /);
    expect(() => buildTopology({ rung: 1, port: 70000 })).toThrow(/^port: /);
    expect(() => buildTopology({ rung: 1, databaseUrl: 'mysql://x' })).toThrow(/^DATABASE_URL: .*Fix: use postgres:\/\//);
    expect(() => buildTopology({ rung: 1, cpu: -1 })).toThrow(/^cpu: /);
  });

  it('switches to an external database with DATABASE_URL', () => {
    const t = buildTopology({ rung: 1, databaseUrl: 'postgres://u:p@127.0.0.1:5555/db' });
    expect(t.database.kind).toBe('external');
  });

  it('refuses a web server count out of range at once, naming the range and why', () => {
    expect(() => buildTopology({ rung: 3, web: 0 })).toThrow(/^web: "0" web servers would serve nothing\. Fix: use 1 to 16/);
    expect(() => buildTopology({ rung: 3, web: 17 })).toThrow(/^web: .*more than 16.*HAProxy has 16 server slots/);
    expect(() => buildTopology({ rung: 2, web: 65 })).toThrow(/^web: .*more than 64/);
    expect(buildTopology({ rung: 2, web: 20 }).web.count).toBe(20); // no balancer: no slots to fit in
    expect(() => buildTopology({ rung: 3, web: 2.5 })).toThrow(/^web: "2.5" is not a whole number/);
    expect(checkWebCount(16, true)).toBe(16);
    expect(() => checkWebCount(99, true)).toThrow(ConfigError);
    expect(() => checkWebCount(0, false)).toThrow(/use 1 to 64/);
  });

  it('refuses a host that is not an address or a host name, and a CPU cap below what a cgroup can give', () => {
    expect(() => buildTopology({ rung: 3, host: 'a b' })).toThrow(/^host: /);
    expect(() => buildTopology({ rung: 3, host: '127.0.0.1:80\nbind evil' })).toThrow(/^host: /);
    expect(buildTopology({ rung: 3, host: '::1' }).web.host).toBe('::1');
    expect(buildTopology({ rung: 3, host: 'localhost' }).web.host).toBe('localhost');
    expect(() => buildTopology({ rung: 3, cpu: 0.001 })).toThrow(/^cpu: .*from 0\.01 to 64/);
    expect(() => buildTopology({ rung: 3, cpu: 65 })).toThrow(/^cpu: /);
  });
});
