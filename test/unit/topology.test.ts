import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/kit/errors.ts';
import { buildTopology, featuresOf, RUNGS } from '../../src/topology/topology.ts';

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
    expect(featuresOf(10)).toMatchObject({ loadBalancer: true, sharedSessions: true, queue: true, shards: true });
    expect(RUNGS).toHaveLength(10);
  });

  it('refuses a rung that is not built yet, saying so', () => {
    expect(() => buildTopology({ rung: 4 })).toThrow(ConfigError);
    expect(() => buildTopology({ rung: 4 })).toThrow(/rung 4 \(a Postgres primary with read replicas\) is not built yet/);
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
});
