// The exporters of the programs that serve no Prometheus metrics themselves: Debian's
// prometheus-postgres-exporter for Postgres nodes, prometheus-redis-exporter for Redis nodes.
// Each listens on a loopback port of its own; credentials go in the environment, never on a
// command line that `ps` shows.
import { requireBinary } from '../binaries.ts';
import type { MetricsTarget } from '../component.ts';

/** prometheus-postgres-exporter for the database at `url` (postgres://user:password@host:port/db). */
export function postgresExporter(url: string, port: number, logFile: string): MetricsTarget {
  const dsn = new URL(url);
  dsn.searchParams.set('sslmode', 'disable');
  return {
    port,
    path: '/metrics',
    exporter: {
      command: requireBinary('prometheus-postgres-exporter'),
      // The settings metrics are some 300 series of pg_settings that nothing here reads.
      args: [`--web.listen-address=127.0.0.1:${port}`, '--disable-settings-metrics'],
      env: { DATA_SOURCE_NAME: dsn.toString() },
      logFile,
    },
  };
}

/** prometheus-redis-exporter for the Redis at 127.0.0.1:redisPort. */
export function redisExporter(redisPort: number, port: number, logFile: string): MetricsTarget {
  return {
    port,
    path: '/metrics',
    exporter: {
      command: requireBinary('prometheus-redis-exporter'),
      args: [`--web.listen-address=127.0.0.1:${port}`],
      env: { REDIS_ADDR: `redis://127.0.0.1:${redisPort}` },
      logFile,
    },
  };
}

/**
 * prometheus-varnish-exporter for the Varnish whose working folder is `workDir` (its `-n`),
 * for rung 6's edge: it reads the counters with varnishstat. Its default listens on every
 * interface (:9131), hence the loopback address.
 */
export function varnishExporter(workDir: string, port: number, logFile: string): MetricsTarget {
  return {
    port,
    path: '/metrics',
    exporter: {
      command: requireBinary('prometheus-varnish-exporter'),
      args: [`-web.listen-address=127.0.0.1:${port}`, '-n', workDir],
      logFile,
    },
  };
}
