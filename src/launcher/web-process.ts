// Assembles one web process: metrics, database, queue, session and rate-limit stores,
// the kit around the Links app; then listens. Used by `ladder start` (rung 1) and, as a
// child process, by the launcher at later rungs.
import type { FastifyInstance } from 'fastify';
import { clickConsumer, linksApp, notFoundPage } from '../app/links-app.ts';
import type { ServerConfig } from '../kit/config.ts';
import { PgDatabase } from '../kit/db/pg-database.ts';
import { buildServer, shutdown } from '../kit/http/server.ts';
import { createMetrics } from '../kit/metrics/metrics.ts';
import { InProcessQueue } from '../kit/queue/queue.ts';
import { MemoryRateLimitStore } from '../kit/security/rate-limiter.ts';
import { MemorySessionStore } from '../kit/session/session-store.ts';

export interface WebProcess {
  fastify: FastifyInstance;
  /** The URL it serves on (after listen). */
  url: string;
  stop(): Promise<void>;
}

export async function createWebServer(config: Readonly<ServerConfig>, databaseUrl: string): Promise<FastifyInstance> {
  const metrics = createMetrics();
  const database = new PgDatabase({ url: databaseUrl, metrics });
  // The logger exists once the server is built; flush failures before that cannot happen.
  const logger: { current?: FastifyInstance['log'] } = {};
  const queue = new InProcessQueue({
    flushIntervalMs: config.clickFlushMs,
    onFlush: (_t, n) => metrics.clicksFlushed.inc(n),
    onError: (topic, err) => {
      metrics.clickFlushFailures.inc();
      logger.current?.warn({ err, topic }, 'click flush failed; kept for the next flush');
    },
    onBuffered: (n) => metrics.clicksBuffered.set(n),
  });
  queue.consume('click', clickConsumer(database));
  const fastify = await buildServer({
    config,
    database,
    metrics,
    queue,
    sessionStore: new MemorySessionStore(),
    rateLimitStore: new MemoryRateLimitStore(),
    notFoundPage,
    app: linksApp,
  });
  logger.current = fastify.log;
  queue.start();
  return fastify;
}

export async function startWebProcess(config: Readonly<ServerConfig>, databaseUrl: string): Promise<WebProcess> {
  const fastify = await createWebServer(config, databaseUrl);
  await fastify.listen({ host: config.host, port: config.port });
  const addr = fastify.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return { fastify, url: `http://${host}:${port}`, stop: () => shutdown(fastify) };
}
