// Plugin `ladder-db`: `req.db`, the request's handle on the database. The caller's
// consistency token rides in a cookie (and the session); only a database with replicas
// reads it, lazily, so at rungs 1-3 this is one small object per request. The plugin owns
// the database's lifecycle: started when the server gets ready, closed after everything
// that writes through it (plugins registered later close first).
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ConsistencyCookie } from '../http/consistency-cookie.ts';
import type { Db } from './database.ts';

declare module 'fastify' {
  interface FastifyRequest {
    db: Db;
  }
}

export const dbPlugin = fp(
  async (fastify: FastifyInstance) => {
    const { database, config } = fastify.kit;
    fastify.decorateRequest('db', null as unknown as Db);
    fastify.addHook('onRequest', (req, reply, done) => {
      req.db = database.forRequest(new ConsistencyCookie(req, reply, req.session, config.secret));
      done();
    });
    const startable = database as { start?: () => Promise<void> };
    if (typeof startable.start === 'function') fastify.addHook('onReady', async () => startable.start!());
    fastify.addHook('onClose', async () => database.close());
  },
  { name: 'ladder-db', dependencies: ['ladder-kit', 'ladder-session'] },
);
