// Static assets served from memory under content-hashed names (/static/app.3f9a1c2b.css),
// so they can be cached forever (`public, max-age=31536000, immutable`, strong ETag, 304):
// a change makes a new name. Views ask for the URL by the file's plain name through the
// manifest (plain name -> hashed URL, also served at /static/manifest.json for a deploy step
// that uploads assets to a CDN). With CDN_BASE_URL the URLs point at the CDN host.
//
// Rolling deploys: a page rendered by a new server names new asset files, which an old
// server behind the same balancer does not have. With an archive folder (ASSET_ARCHIVE_DIR,
// shared by the servers of a machine and kept across deploys) every server writes its
// assets there at start and serves any hashed name it finds there, old or new.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';

const TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

export const IMMUTABLE = 'public, max-age=31536000, immutable';

/** A hashed asset name: what may be looked up in the archive (no path, no dots but the two). */
const HASHED_NAME = /^([A-Za-z0-9_-]{1,64})\.([0-9a-f]{10})(\.(?:css|js|svg|ico))$/;

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

export interface AssetStoreSettings {
  /** CDN_BASE_URL: prefix of asset URLs (no trailing slash). */
  baseUrl?: string | undefined;
  /** ASSET_ARCHIVE_DIR: where every deploy's assets are kept (rolling deploys). */
  archiveDir?: string | undefined;
}

export class AssetStore {
  private readonly byHashedName = new Map<string, Asset>();
  private readonly paths = new Map<string, string>();
  private base = '';
  private archiveDir: string | undefined;

  constructor(dir: string) {
    for (const file of readdirSync(dir)) {
      const ext = path.extname(file);
      const type = TYPES[ext];
      if (!type) continue;
      const body = readFileSync(path.join(dir, file));
      const hash = createHash('sha256').update(body).digest('hex').slice(0, 10);
      const hashed = `${path.basename(file, ext)}.${hash}${ext}`;
      this.byHashedName.set(hashed, { body, type, etag: `"${hash}"` });
      this.paths.set(file, `/static/${hashed}`);
    }
  }

  /** Points URLs at a CDN and keeps assets in an archive; set once, when the server is built. */
  configure({ baseUrl, archiveDir }: AssetStoreSettings): void {
    this.base = baseUrl ?? '';
    this.archiveDir = archiveDir;
    if (archiveDir) this.archive(archiveDir);
  }

  /** The origin (scheme://host) assets are loaded from when it is not the page's own, for the page CSP. */
  get origin(): string | undefined {
    return this.base ? new URL(this.base).origin : undefined;
  }

  url(file: string): string {
    const u = this.paths.get(file);
    if (!u) throw new Error(`unknown asset ${file}`);
    return `${this.base}${u}`;
  }

  /** Plain name -> URL, as pages use them. */
  manifest(): Record<string, string> {
    return Object.fromEntries(Array.from(this.paths.keys(), (f) => [f, this.url(f)]));
  }

  private archive(dir: string): void {
    mkdirSync(dir, { recursive: true });
    for (const [name, asset] of this.byHashedName) {
      const file = path.join(dir, name);
      if (existsSync(file)) continue;
      // Written whole, then renamed: another server reading it never sees half a file.
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, asset.body);
      renameSync(tmp, file);
    }
  }

  /** An asset of this build, or of another build found in the archive. */
  private async find(name: string): Promise<Asset | undefined> {
    const own = this.byHashedName.get(name);
    if (own || !this.archiveDir) return own;
    const m = HASHED_NAME.exec(name);
    if (!m) return undefined;
    let body: Buffer;
    try {
      body = await readFile(path.join(this.archiveDir, name));
    } catch {
      return undefined;
    }
    // The name is the content's hash: a file that does not match it is not served.
    if (createHash('sha256').update(body).digest('hex').slice(0, 10) !== m[2]) return undefined;
    return { body, type: TYPES[m[3]!]!, etag: `"${m[2]}"` };
  }

  register(app: FastifyInstance): void {
    app.get('/static/manifest.json', async (_req, reply) =>
      reply.header('cache-control', 'no-cache').header('cross-origin-resource-policy', 'cross-origin').send(this.manifest()),
    );
    app.get('/static/:name', async (req, reply) => {
      const name = (req.params as { name: string }).name;
      const asset = await this.find(name);
      if (!asset) return reply.status(404).send({ error: { code: 'NOT_FOUND', message: 'No such asset.' } });
      reply
        .header('cache-control', IMMUTABLE)
        .header('etag', asset.etag)
        // Loaded by pages of another origin when they come from a CDN host.
        .header('cross-origin-resource-policy', 'cross-origin')
        .header('surrogate-key', 'asset')
        .type(asset.type);
      if (matchesEtag(req.headers['if-none-match'], asset.etag)) return reply.status(304).send();
      return reply.send(asset.body);
    });
  }
}

/** If-None-Match: `*`, or a list of entity tags compared weakly (RFC 9110 13.1.2). */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
