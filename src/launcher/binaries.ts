// Finds the machine's programs a topology needs; a missing one is a clear error naming the
// Debian package that provides it.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { LadderFailure } from '../kit/errors.ts';

const DIRS = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin'].filter(Boolean);

export const PACKAGES: Record<string, string> = {
  haproxy: 'haproxy',
  'redis-server': 'redis-server',
  'pg_basebackup': 'postgresql',
  varnishd: 'varnish varnish-modules',
  varnishstat: 'varnish',
  prometheus: 'prometheus',
  promtool: 'prometheus',
  'prometheus-alertmanager': 'prometheus-alertmanager',
  'prometheus-postgres-exporter': 'prometheus-postgres-exporter',
  'prometheus-redis-exporter': 'prometheus-redis-exporter',
  'prometheus-varnish-exporter': 'prometheus-varnish-exporter',
  patroni: 'patroni',
  etcd: 'etcd-server',
  pgbouncer: 'pgbouncer',
  'redis-sentinel': 'redis-sentinel',
};

export function findBinary(name: string): string | undefined {
  for (const dir of DIRS) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

export function requireBinary(name: string): string {
  const found = findBinary(name);
  if (!found) {
    const pkg = PACKAGES[name] ?? name;
    throw new LadderFailure('BINARY_MISSING', `${name} is not installed. Install it with: apt-get install -y ${pkg}`);
  }
  return found;
}
