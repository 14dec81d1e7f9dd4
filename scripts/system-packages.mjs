#!/usr/bin/env node
// Preflight of `npm test` (and of .ci/run): the Debian packages the tests drive as real
// programs. When one is missing it is installed if we can (root with apt-get: `apt-get
// update` once, then one `apt-get install`); otherwise we stop at once with the exact command
// to run, instead of a wall of failing tests or tests that skip themselves.
//
//   node scripts/system-packages.mjs          check, install what is missing when root
//   node scripts/system-packages.mjs --check  check only; exit 1 when something is missing
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** What the tests need: a program (on PATH or at a fixed path), the package that ships it, why. */
const NEEDS = [
  {
    pkg: 'chromium',
    programs: ['chromium'],
    why: 'the browser tests (playwright-core drives /usr/bin/chromium)',
  },
  { pkg: 'util-linux', programs: ['taskset', 'chrt'], why: 'the bench tests pin processes to CPUs' },
  { pkg: 'haproxy', programs: ['haproxy'], why: 'the load balancer from rung 3' },
  { pkg: 'redis-server', programs: ['redis-server'], why: 'sessions, rate limits and the cache from rung 7' },
  { pkg: 'varnish', programs: ['varnishd', 'varnishtest', 'varnishstat'], why: 'the edge from rung 6, and its VCL tests' },
  {
    pkg: 'varnish-modules',
    programs: ['/usr/lib/x86_64-linux-gnu/varnish/vmods/libvmod_xkey.so'],
    why: "the edge's purge by surrogate key (the xkey vmod)",
  },
  {
    pkg: 'prometheus',
    programs: ['prometheus', 'promtool'],
    why: 'monitoring from rung 3; promtool tests the alerting rules',
  },
  {
    pkg: 'prometheus-alertmanager',
    programs: ['prometheus-alertmanager'],
    why: 'the alerts of the monitored topologies (ladder alerts)',
  },
  {
    pkg: 'prometheus-postgres-exporter',
    programs: ['prometheus-postgres-exporter'],
    why: 'Postgres metrics for Prometheus',
  },
  {
    pkg: 'prometheus-redis-exporter',
    programs: ['prometheus-redis-exporter'],
    why: 'Redis metrics for Prometheus',
  },
  {
    pkg: 'prometheus-varnish-exporter',
    programs: ['prometheus-varnish-exporter'],
    why: "the edge's metrics for Prometheus",
  },
  { pkg: 'patroni', programs: ['patroni'], why: 'automatic Postgres failover with --ha' },
  { pkg: 'etcd-server', programs: ['etcd'], why: "Patroni's configuration store with --ha" },
  { pkg: 'pgbouncer', programs: ['pgbouncer'], why: 'connection pooling with --pgbouncer' },
  { pkg: 'redis-sentinel', programs: ['redis-sentinel'], why: 'the session Redis failover with --ha from rung 7' },
  {
    pkg: 'postgresql-15',
    programs: ['/usr/lib/postgresql/15/bin/pg_basebackup'],
    why: 'replicas from rung 4, the engine comparison',
  },
];

// /usr/sbin is where Debian puts haproxy, and it is not on every user's PATH.
const DIRS = [
  ...(process.env.PATH ?? '').split(path.delimiter),
  '/usr/sbin',
  '/usr/bin',
  '/sbin',
  '/bin',
].filter(Boolean);

function executable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false; // absent or not executable: reported as missing below
  }
}

function readable(file) {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** A program on PATH or at a path, or a library (.so: present and readable is enough). */
function found(program) {
  if (program.endsWith('.so')) return readable(program);
  return program.includes('/') ? executable(program) : DIRS.some((d) => executable(path.join(d, program)));
}

function missingPackages() {
  return NEEDS.filter((n) => !n.programs.every(found));
}

function run(command, args) {
  process.stderr.write(`system-packages: ${command} ${args.join(' ')}\n`);
  const r = spawnSync(command, args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.error) throw r.error;
  return r.status === 0;
}

function main(args) {
  const missing = missingPackages();
  if (missing.length === 0) return 0;
  const pkgs = missing.map((n) => n.pkg);
  const list = missing.map((n) => `  ${n.pkg.padEnd(14)} ${n.why}`).join('\n');
  const install = `apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
  const isRoot = process.getuid?.() === 0;
  const hasApt = DIRS.some((d) => executable(path.join(d, 'apt-get')));
  if (args.includes('--check') || !isRoot || !hasApt) {
    const sudo = isRoot ? '' : 'sudo ';
    const how = hasApt
      ? `Install them, then run the tests again:\n\n  ${sudo}apt-get update && ${sudo}${install}\n`
      : `This machine has no apt-get: install the equivalents of these Debian packages.\n`;
    process.stderr.write(`The tests need Debian packages that are not installed:\n${list}\n\n${how}`);
    return 1;
  }
  process.stderr.write(`system-packages: installing what the tests need:\n${list}\n`);
  if (!run('apt-get', ['update']) || !run('apt-get', install.split(' ').slice(1))) {
    process.stderr.write(
      `system-packages: apt-get failed (output above); the command was:\n\n  apt-get update && ${install}\n`,
    );
    return 1;
  }
  const still = missingPackages();
  if (still.length > 0) {
    process.stderr.write(
      `system-packages: still missing after apt-get: ${still.map((n) => n.programs.join(', ')).join('; ')}\n`,
    );
    return 1;
  }
  return 0;
}

process.exitCode = main(process.argv.slice(2));
