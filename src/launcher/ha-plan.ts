// The database tier of --ha: three etcd members and N Patroni nodes (pg1..pgN, N = 1 +
// replicas), and what the web servers are told about them (every node's Postgres URL and
// Patroni API, in the same order: the kit finds the leader itself and follows it).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Topology } from '../topology/topology.ts';
import type { Component, ComponentContext } from './component.ts';
import { EtcdComponent } from './components/etcd.ts';
import { PatroniCluster, PatroniComponent } from './components/patroni.ts';
import type { EtcdMember } from './patroni-config.ts';
import { runAsAccount, serverDir, systemBinDir } from './postgres-server.ts';
import { freePort } from './state-dir.ts';
import { logFile } from './up-state.ts';

export interface HaPlan {
  components: Component[];
  nodes: PatroniComponent[];
  /** The web servers' settings: every node, in order (pg1 first). */
  env: { DATABASE_URL: string; DATABASE_REPLICA_URLS: string; DATABASE_PATRONI_URLS: string };
}

export const ETCD_MEMBERS = 3;

export async function planHa(t: Readonly<Topology>, ctx: ComponentContext, options: { maxConnections?: number } = {}): Promise<HaPlan> {
  const members: EtcdMember[] = [];
  for (let i = 1; i <= ETCD_MEMBERS; i++) members.push({ name: `etcd${i}`, clientPort: await freePort(), peerPort: await freePort() });
  const etcds = members.map(
    (member) =>
      new EtcdComponent({
        member,
        members,
        dataDir: path.join(ctx.dir, member.name, 'data'),
        logFile: logFile(t.stateDir, member.name),
        token: `ladder-${ctx.groupPrefix}`,
      }),
  );

  const runAs = runAsAccount();
  const secrets = haSecrets(ctx.dir);
  const cluster = new PatroniCluster((line) => ctx.note(line));
  const nodes: PatroniComponent[] = [];
  for (let i = 1; i <= 1 + t.database.replicas; i++) {
    const name = `pg${i}`;
    const nodeDir = serverDir(path.join(ctx.dir, name), runAs);
    nodes.push(
      new PatroniComponent({
        config: {
          scope: `ladder-${ctx.groupPrefix}`,
          name,
          restPort: await freePort(),
          pgPort: await freePort(),
          dataDir: path.join(nodeDir, 'pgdata'),
          runDir: socketDir(nodeDir, ctx.groupPrefix, name),
          binDir: systemBinDir(),
          etcdHosts: etcds.map((e) => e.hostPort),
          superuserPassword: secrets.superuser,
          replicationPassword: secrets.replication,
          sync: t.ha.sync,
          ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
        },
        nodeDir,
        logFile: logFile(t.stateDir, name),
        runAs,
        cluster,
      }),
    );
  }
  return {
    components: [...etcds, ...nodes],
    nodes,
    env: {
      DATABASE_URL: nodes[0]!.databaseUrl,
      DATABASE_REPLICA_URLS: nodes.map((n) => n.databaseUrl).join(','),
      DATABASE_PATRONI_URLS: nodes.map((n) => n.apiUrl).join(','),
    },
  };
}

/** The superuser's and the replication user's passwords, made once per state folder (mode 600). */
function haSecrets(dir: string): { superuser: string; replication: string } {
  const file = path.join(dir, 'ha-passwords.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as { superuser: string; replication: string };
  const s = { superuser: randomBytes(18).toString('base64url'), replication: randomBytes(18).toString('base64url') };
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, JSON.stringify(s), { mode: 0o600 });
  return s;
}


/** Unix socket paths are limited to 107 bytes: a deep state folder gets its sockets under /tmp. */
function socketDir(nodeDir: string, prefix: string, name: string): string {
  const dir = path.resolve(nodeDir, 'run');
  return dir.length <= 80 ? dir : path.join('/tmp', `ladder-${prefix}-${name}`);
}
