// Plugin `ladder-json-body`: the only request bodies Links takes are JSON, parsed here so
// that bad JSON is a 400 BAD_JSON from the catalogue and every other type a 415.
import fp from 'fastify-plugin';
import { LadderError } from '../errors.ts';
import { isJsonContentType } from './content-type.ts';

export const jsonBodyPlugin = fp(
  async (fastify) => {
    // One parser for every type, so that content-type.ts alone decides what is JSON (415
    // otherwise); an unrouted request's body is ignored, and it gets its 404.
    fastify.removeAllContentTypeParsers();
    fastify.addContentTypeParser('*', { parseAs: 'string' }, (req, body, done) => {
      if (req.is404) return done(null, undefined);
      if (!isJsonContentType(req.headers['content-type'])) return done(new LadderError('UNSUPPORTED_MEDIA_TYPE'), undefined);
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
