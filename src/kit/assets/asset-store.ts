// Static assets served from memory under content-hashed names (/static/app.3f9a1c2b.css),
// so they can be cached forever: a change makes a new name. Views ask for the URL by the
// file's plain name.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';

const TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

export class AssetStore {
  private readonly byHashedName = new Map<string, Asset>();
  private readonly urls = new Map<string, string>();

  constructor(dir: string) {
    for (const file of readdirSync(dir)) {
      const ext = path.extname(file);
      const type = TYPES[ext];
      if (!type) continue;
      const body = readFileSync(path.join(dir, file));
      const hash = createHash('sha256').update(body).digest('hex').slice(0, 10);
      const hashed = `${path.basename(file, ext)}.${hash}${ext}`;
      this.byHashedName.set(hashed, { body, type, etag: `"${hash}"` });
      this.urls.set(file, `/static/${hashed}`);
    }
  }

  url(file: string): string {
    const u = this.urls.get(file);
    if (!u) throw new Error(`unknown asset ${file}`);
    return u;
  }

  register(app: FastifyInstance): void {
    app.get('/static/:name', async (req, reply) => {
      const asset = this.byHashedName.get((req.params as { name: string }).name);
      if (!asset) return reply.status(404).send({ error: { code: 'NOT_FOUND', message: 'No such asset.' } });
      reply.header('cache-control', 'public, max-age=31536000, immutable').header('etag', asset.etag).type(asset.type);
      if (req.headers['if-none-match'] === asset.etag) return reply.status(304).send();
      return reply.send(asset.body);
    });
  }
}
