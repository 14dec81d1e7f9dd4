// --ha's configuration, checked as the programs get it: the topology's flags and their
// refusals, each Patroni node's patroni.yml, each etcd member's command line, and the web
// servers' DATABASE_PATRONI_URLS.
import { describe, expect, it } from 'vitest';
import { loadServerConfig } from '../../src/kit/config.ts';
import { ConfigError } from '../../src/kit/errors.ts';
import { etcdArgs, HA_TIMING, patroniConfig, type PatroniNodeConfig } from '../../src/launcher/patroni-config.ts';
import { POOL_DEFAULTS } from '../../src/kit/db/pool.ts';
import { pgbouncerIni } from '../../src/launcher/components/pgbouncer.ts';
import { sentinelConf, SESSIONS_MASTER } from '../../src/launcher/components/sentinel.ts';
import { buildTopology, PRIMARY_CONNECTIONS_PER_WEB } from '../../src/topology/topology.ts';

const node: PatroniNodeConfig = {
  scope: 'ladder-abc',
  name: 'pg2',
  restPort: 41001,
  pgPort: 41002,
  dataDir: '/x/pg2/pgdata',
  runDir: '/x/pg2/run',
  binDir: '/usr/lib/postgresql/15/bin',
  etcdHosts: ['127.0.0.1:42001', '127.0.0.1:42002', '127.0.0.1:42003'],
  superuserPassword: 'su-secret',
  replicationPassword: 'repl-secret',
  sync: false,
};

describe('--ha topology', () => {
  it('is off unless asked; with --ha the database nodes are 1 + replicas (3 unless told)', () => {
    expect(buildTopology({ rung: 4 }).ha).toEqual({ enabled: false, sync: false });
    const t = buildTopology({ rung: 4, ha: true });
    expect(t.ha).toEqual({ enabled: true, sync: false });
    expect(t.database.replicas).toBe(2);
    expect(buildTopology({ rung: 7, ha: true, sync: true, replicas: 1 }).ha).toEqual({ enabled: true, sync: true });
  });

  it('refuses what cannot be: below rung 4, no replica, a delay, an external database, --sync alone', () => {
    expect(() => buildTopology({ rung: 3, ha: true })).toThrow(/use --ha with --rung 4 or more/);
    expect(() => buildTopology({ rung: 4, ha: true, replicas: 0 })).toThrow(ConfigError);
    expect(() => buildTopology({ rung: 4, ha: true, replicaDelayMs: 100 })).toThrow(/Patroni manages/);
    expect(() => buildTopology({ rung: 4, ha: true, databaseUrl: 'postgres://x@h/db' })).toThrow(/unset DATABASE_URL/);
    expect(() => buildTopology({ rung: 4, sync: true })).toThrow(/add --ha/);
    expect(() => buildTopology({ rung: 1, pgbouncer: true })).toThrow(ConfigError);
  });
});

describe('patroni.yml', () => {
  it('names the node, its own REST and Postgres ports on loopback, and the three etcd members', () => {
    const c = patroniConfig(node) as any;
    expect(c.name).toBe('pg2');
    expect(c.scope).toBe('ladder-abc');
    expect(c.restapi).toEqual({ listen: '127.0.0.1:41001', connect_address: '127.0.0.1:41001' });
    expect(c.postgresql.listen).toBe('127.0.0.1:41002');
    expect(c.postgresql.data_dir).toBe('/x/pg2/pgdata');
    expect(c.etcd.hosts).toEqual(node.etcdHosts);
    expect(c).not.toHaveProperty('etcd3'); // its leader renewal is no compare-and-swap (patroni-config.ts)
    // Nothing listens beyond loopback, and only loopback may connect.
    expect(JSON.stringify(c)).not.toMatch(/0\.0\.0\.0/);
    expect(c.postgresql.pg_hba.every((l: string) => l.startsWith('local') || l.includes('127.0.0.1/32'))).toBe(true);
  });

  it('has the lab timing (failover well within 10 s), pg_rewind and the durability mode', () => {
    const dcs = (patroniConfig(node) as any).bootstrap.dcs;
    expect(dcs).toMatchObject({ ttl: HA_TIMING.ttl, loop_wait: 1, retry_timeout: 2, synchronous_mode: false, synchronous_mode_strict: false });
    // Patroni's rule: a leader whose DCS calls time out demotes itself before its key expires.
    expect(dcs.ttl).toBeGreaterThanOrEqual(dcs.loop_wait + 2 * dcs.retry_timeout);
    expect(dcs.ttl + 4).toBeLessThan(11); // key expiry plus election and promotion
    expect(dcs.maximum_lag_on_failover).toBe(1024 * 1024);
    expect(dcs.postgresql.use_pg_rewind).toBe(true);
    expect(dcs.postgresql.parameters.wal_log_hints).toBe('on');
    expect((patroniConfig({ ...node, sync: true }) as any).bootstrap.dcs.synchronous_mode).toBe(true);
    expect((patroniConfig({ ...node, maxConnections: 50 }) as any).bootstrap.dcs.postgresql.parameters.max_connections).toBe(50);
  });

  it('is JSON (which is YAML) and round-trips', () => {
    const text = JSON.stringify(patroniConfig(node));
    expect(JSON.parse(text)).toEqual(patroniConfig(node));
  });
});

describe('etcd members', () => {
  it('form one cluster on loopback, with a token of their own', () => {
    const members = [1, 2, 3].map((i) => ({ name: `etcd${i}`, clientPort: 42000 + i, peerPort: 43000 + i }));
    const args = etcdArgs(members[1]!, members, '/x/etcd2', 'ladder-abc');
    expect(args).toContain('--name=etcd2');
    expect(args).toContain('--listen-client-urls=http://127.0.0.1:42002');
    expect(args).toContain('--listen-peer-urls=http://127.0.0.1:43002');
    expect(args).toContain('--initial-cluster=etcd1=http://127.0.0.1:43001,etcd2=http://127.0.0.1:43002,etcd3=http://127.0.0.1:43003');
    expect(args).toContain('--initial-cluster-token=ladder-abc');
    expect(args).toContain('--enable-v2=true'); // Patroni speaks v2 to it
  });
});

describe('DATABASE_PATRONI_URLS', () => {
  const env = {
    LADDER_SECRET: 'x'.repeat(40),
    DATABASE_REPLICA_URLS: 'postgres://u:p@127.0.0.1:1/links,postgres://u:p@127.0.0.1:2/links',
  };
  it('is one Patroni API per database node, in order', () => {
    const c = loadServerConfig({}, { ...env, DATABASE_PATRONI_URLS: 'http://127.0.0.1:8008/,http://127.0.0.1:8009' });
    expect(c.replicas.patroniUrls).toEqual(['http://127.0.0.1:8008', 'http://127.0.0.1:8009']);
    expect(loadServerConfig({}, env).replicas.patroniUrls).toEqual([]);
  });
  it('refuses a count that does not match the nodes, or something that is not an API URL', () => {
    expect(() => loadServerConfig({}, { ...env, DATABASE_PATRONI_URLS: 'http://127.0.0.1:8008' })).toThrow(/1 URLs for 2 database nodes/);
    expect(() => loadServerConfig({}, { ...env, DATABASE_PATRONI_URLS: 'http://127.0.0.1:8008,ftp://x' })).toThrow(/entry 2/);
    expect(() => loadServerConfig({}, { ...env, DATABASE_PATRONI_URLS: 'http://a:b@h:1,http://h:2' })).toThrow(ConfigError);
  });
});

describe('PgBouncer and Sentinel configuration', () => {
  it('PgBouncer comes by itself once the web tier could pass max_connections, and never with --ha', () => {
    expect(PRIMARY_CONNECTIONS_PER_WEB).toBe(POOL_DEFAULTS.max + 1);
    expect(buildTopology({ rung: 3, web: 4 }).pgbouncer).toBe(false);
    expect(buildTopology({ rung: 3, web: 5, maxConnections: 50 }).pgbouncer).toBe(true);
    expect(buildTopology({ rung: 3, web: 2, pgbouncer: true }).pgbouncer).toBe(true);
    expect(() => buildTopology({ rung: 4, ha: true, pgbouncer: true })).toThrow(/not built yet/);
    expect(() => buildTopology({ rung: 4, ha: true, web: 5, maxConnections: 50 })).toThrow(/raise --max-connections/);
    expect(() => buildTopology({ rung: 3, maxConnections: 5 })).toThrow(ConfigError);
  });

  it('pgbouncer.ini: loopback, transaction pooling, a pool under max_connections', () => {
    const ini = pgbouncerIni({ port: 6001, server: { host: '127.0.0.1', port: 5001, user: 'postgres', password: 'x' }, poolSize: 40 }, '/d/userlist.txt');
    expect(ini).toContain('links = host=127.0.0.1 port=5001 dbname=links');
    expect(ini).toContain('listen_addr = 127.0.0.1');
    expect(ini).toContain('pool_mode = transaction');
    expect(ini).toContain('max_db_connections = 40');
    expect(ini).not.toContain('password');
  });

  it('sentinel.conf: watches the session primary with a quorum of 2 and a 1 s down-after', () => {
    const conf = sentinelConf(7001, '/d', 7000);
    expect(conf).toContain('bind 127.0.0.1');
    expect(conf).toContain(`sentinel monitor ${SESSIONS_MASTER} 127.0.0.1 7000 2`);
    expect(conf).toContain('sentinel down-after-milliseconds sessions 1000');
  });

  it('REDIS_SENTINELS is host:port, checked', () => {
    const base = { LADDER_SECRET: 'x'.repeat(40) };
    expect(loadServerConfig({}, { ...base, REDIS_SENTINELS: '127.0.0.1:7001, 127.0.0.1:7002' }).redisSentinels).toEqual([
      { host: '127.0.0.1', port: 7001 },
      { host: '127.0.0.1', port: 7002 },
    ]);
    expect(() => loadServerConfig({}, { ...base, REDIS_SENTINELS: '127.0.0.1' })).toThrow(ConfigError);
    expect(() => loadServerConfig({}, { ...base, REDIS_SENTINEL_NAME: 'bad name' })).toThrow(ConfigError);
    expect(() => loadServerConfig({}, { ...base, DATABASE_STATEMENTS: 'sometimes' })).toThrow(ConfigError);
  });
});
