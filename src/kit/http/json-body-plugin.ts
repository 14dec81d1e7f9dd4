// Plugin `ladder-json-body`: the only request bodies Links takes are JSON, parsed here so
// that bad JSON is a 400 BAD_JSON from the catalogue and every other type a 415.
import fp from 'fastify-plugin';
import { LadderError } from '../errors.ts';

export const jsonBodyPlugin = fp(
  async (fastify) => {
    fastify.removeAllContentTypeParsers();
    fastify.addContentTypeParser(/^application\/([a-z.+-]*\+)?json$/i, { parseAs: 'string' }, (_req, body, done) => {
      const text = body as string;
      if (text.trim() === '') return done(null, undefined);
      try {
        done(null, JSON.parse(text) as unknown);
      } catch (cause) {
        done(new LadderError('BAD_JSON', undefined, { cause }), undefined);
      }
    });
  },
  { name: 'ladder-json-body' },
);
