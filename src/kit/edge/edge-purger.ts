// Purges the edge (Varnish, rung 6) by surrogate key after a write: one PURGE request with
// the keys in `xkey-purge` and the shared token. Awaited by the handler that wrote, so that
// once the writer has its answer the edge serves the new version (docs/performance.md, "Edge
// purge"). A failed purge fails no request: it is counted and logged, and the page's short
// s-maxage bounds how long the edge serves the old one.
import { request } from 'node:http';

export interface EdgePurgerOptions {
  /** EDGE_PURGE_URL: the edge, as http://host:port. */
  url: string;
  /** EDGE_PURGE_TOKEN: what the edge's VCL checks. */
  token: string;
  timeoutMs?: number;
  onResult?: (result: 'ok' | 'failed', err?: Error) => void;
}

/** Surrogate keys: letters, digits and - _ . : (what the app's keys are made of). */
const KEY = /^[A-Za-z0-9_.:-]{1,128}$/;

export class EdgePurger {
  private readonly target: URL;

  constructor(private readonly opts: EdgePurgerOptions) {
    this.target = new URL(opts.url);
  }

  /** Purges every object tagged with one of `keys`; resolves (never rejects) once the edge answered or gave up. */
  purge(keys: readonly string[]): Promise<void> {
    const list = keys.filter((k) => KEY.test(k));
    if (list.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (err?: Error) => {
        this.opts.onResult?.(err ? 'failed' : 'ok', err);
        resolve();
      };
      const req = request(
        {
          host: this.target.hostname.replace(/^\[|\]$/g, ''),
          port: this.target.port || 80,
          method: 'PURGE',
          path: '/',
          headers: { 'xkey-purge': list.join(' '), 'x-purge-token': this.opts.token },
          timeout: this.opts.timeoutMs ?? 1000,
        },
        (res) => {
          res.resume();
          res.on('end', () => done(res.statusCode === 200 ? undefined : new Error(`the edge answered ${res.statusCode} to PURGE`)));
          res.on('error', done);
        },
      );
      req.on('timeout', () => req.destroy(new Error('the edge did not answer PURGE in time')));
      req.on('error', done);
      req.end();
    });
  }
}
