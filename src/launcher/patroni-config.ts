// The configuration files of the high-availability database (--ha): each Patroni node's
// patroni.yml and each etcd member's command line. Pure functions of their inputs, so the
// unit tests read exactly what the programs get. patroni.yml is written as JSON, which is
// YAML too (flow style), and keeps us free of a YAML dependency and its quoting rules.

/**
 * Timing of the local lab, in one commented table. Patroni's leader key lives `ttl` seconds
 * in etcd unless its holder renews it (every `loop_wait`); a leader killed with -9 stops
 * renewing, so a replica takes over between ttl - loop_wait and ttl after the kill, plus an
 * election and a promotion (about a second). Patroni wants ttl >= loop_wait + 2 x
 * retry_timeout, so that a leader whose etcd calls time out demotes itself before its key
 * expires (which is what stops two primaries). Production uses 30 / 10 / 10; on loopback
 * with etcd a millisecond away the short values below are safe and keep failover well
 * within 10 s.
 */
export const HA_TIMING = {
  ttl: 5,
  loopWait: 1,
  retryTimeout: 2,
  /**
   * Asynchronous mode: a replica further behind the leader than this (bytes of WAL) is never
   * promoted. It is the bound on what a failover can lose (the RPO), and 1 MiB is a few
   * hundred creates at most; synchronous mode loses nothing acknowledged.
   */
  maximumLagOnFailover: 1024 * 1024,
} as const;

/** Settings every Patroni-managed Postgres runs with (Patroni puts them into the DCS at bootstrap). */
export const HA_POSTGRES_PARAMETERS = {
  wal_level: 'replica',
  hot_standby: 'on',
  // pg_rewind needs hint bits WAL-logged (or data checksums, which initdb below also turns on):
  // it is how an old primary rejoins as a replica without a fresh clone.
  wal_log_hints: 'on',
  max_wal_senders: 20,
  max_replication_slots: 20,
  wal_keep_size: '512MB',
  max_connections: 200,
  // Replicas answer read-only queries while they replay; a long one is cancelled rather than
  // holding replay back (the router then retries the read elsewhere).
  max_standby_streaming_delay: '1s',
  hot_standby_feedback: 'on',
  // A crashed backend takes the server down and Patroni starts it again, which changes
  // pg_postmaster_start_time(): the replica router's sign that a node may have gone back in
  // time (replica-router.ts, step 4). An in-place restart would keep it.
  restart_after_crash: 'off',
} as const;

export interface PatroniNodeConfig {
  /** The cluster's name in etcd (one per state folder). */
  scope: string;
  /** This node's name (pg1, pg2, ...). */
  name: string;
  restPort: number;
  pgPort: number;
  dataDir: string;
  /** Where Unix sockets and the pgpass file go (a folder the server's account owns). */
  runDir: string;
  binDir: string;
  /** Client URLs' host:port of the etcd members. */
  etcdHosts: readonly string[];
  superuserPassword: string;
  replicationPassword: string;
  sync: boolean;
  /** max_connections of every node (PgBouncer's check uses a small one). */
  maxConnections?: number;
}

/** The user replicas stream as; the superuser is also pg_rewind's. */
export const REPLICATION_USER = 'replicator';
export const SUPERUSER = 'postgres';

export function patroniConfig(c: PatroniNodeConfig): Record<string, unknown> {
  const t = HA_TIMING;
  return {
    scope: c.scope,
    namespace: '/ladder/',
    name: c.name,
    log: { level: 'INFO', format: '%(asctime)s %(levelname)s: %(message)s' },
    restapi: { listen: `127.0.0.1:${c.restPort}`, connect_address: `127.0.0.1:${c.restPort}` },
    // etcd's v2 API, not etcd3: Patroni 3.0.2 renews the leader key over v2 with a
    // compare-and-swap (prevValue = its own name), but over etcd3, once its lease has expired
    // (a leader frozen past the ttl), it grants a new lease and puts the key unconditionally,
    // judged on the cluster view it read before the freeze: a resumed old leader took the key
    // back from the new one 2 s after the promotion, and the new leader's writes were lost
    // (test/integration/ha.test.ts, the frozen leader; docs/decisions.md).
    etcd: { hosts: [...c.etcdHosts], protocol: 'http' },
    bootstrap: {
      dcs: {
        ttl: t.ttl,
        loop_wait: t.loopWait,
        retry_timeout: t.retryTimeout,
        maximum_lag_on_failover: t.maximumLagOnFailover,
        // Synchronous mode: a commit returns once a standby has it, and only that standby may
        // be promoted. Not strict: with no standby left, the primary goes on alone (writes keep
        // working; the guarantee is then the asynchronous one until a standby is back).
        synchronous_mode: c.sync,
        synchronous_mode_strict: false,
        postgresql: {
          use_pg_rewind: true,
          use_slots: true,
          parameters: { ...HA_POSTGRES_PARAMETERS, ...(c.maxConnections !== undefined ? { max_connections: c.maxConnections } : {}) },
        },
      },
      initdb: [{ encoding: 'UTF8' }, { locale: 'C' }, 'data-checksums', { auth: 'scram-sha-256' }],
    },
    postgresql: {
      listen: `127.0.0.1:${c.pgPort}`,
      connect_address: `127.0.0.1:${c.pgPort}`,
      data_dir: c.dataDir,
      bin_dir: c.binDir,
      pgpass: `${c.runDir}/pgpass`,
      // A replica's clone asks for an immediate checkpoint: the default (spread) made a second
      // clone wait for the next timed checkpoint, 90 s here.
      basebackup: [{ checkpoint: 'fast' }],
      authentication: {
        superuser: { username: SUPERUSER, password: c.superuserPassword },
        replication: { username: REPLICATION_USER, password: c.replicationPassword },
        rewind: { username: SUPERUSER, password: c.superuserPassword },
      },
      parameters: { unix_socket_directories: c.runDir },
      pg_hba: [
        'local all all trust',
        'host replication replicator 127.0.0.1/32 scram-sha-256',
        'host all all 127.0.0.1/32 scram-sha-256',
      ],
      // An old primary that pg_rewind cannot bring back is cloned afresh instead of staying down.
      remove_data_directory_on_rewind_failure: true,
      remove_data_directory_on_diverged_timelines: true,
    },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
}

export interface EtcdMember {
  name: string;
  clientPort: number;
  peerPort: number;
}

/** The command line of one member of a 3-member etcd cluster on loopback. */
export function etcdArgs(member: EtcdMember, members: readonly EtcdMember[], dataDir: string, token: string): string[] {
  const peer = (m: EtcdMember) => `http://127.0.0.1:${m.peerPort}`;
  return [
    `--name=${member.name}`,
    `--data-dir=${dataDir}`,
    `--listen-client-urls=http://127.0.0.1:${member.clientPort}`,
    `--advertise-client-urls=http://127.0.0.1:${member.clientPort}`,
    `--listen-peer-urls=${peer(member)}`,
    `--initial-advertise-peer-urls=${peer(member)}`,
    `--initial-cluster=${members.map((m) => `${m.name}=${peer(m)}`).join(',')}`,
    `--initial-cluster-token=${token}`,
    '--initial-cluster-state=new',
    // A local lab: heartbeats every 100 ms, an election after 1 s without one (the defaults),
    // and no metrics or debug listeners beyond the client port.
    '--heartbeat-interval=100',
    '--election-timeout=1000',
    '--enable-v2=true', // Patroni's DCS protocol (patroniConfig)
    '--log-level=warn',
  ];
}
