// A steady load of creates and redirects against a topology, recorded request by request,
// for the failover tests (test/integration/ha.test.ts) and `ladder`-free checks of them:
// when writes stopped and started succeeding again, whether any read failed, and which
// creates were acknowledged (201) so that they can be looked for afterwards.
import { Client } from './app.ts';

export interface LoadRecord {
  kind: 'create' | 'redirect';
  startedAt: number;
  endedAt: number;
  status: number;
  code?: string;
}

export interface LoadRun {
  records: LoadRecord[];
  stop(): Promise<void>;
}

/**
 * `writers` loops creating links (each as its own signed-up user) and `readers` loops
 * following redirects to codes created before the run. Every request has a deadline; a
 * request that times out or whose connection fails is recorded with status 0.
 */
export function startLoad(opts: { writers: Client[]; readers: number; base: string; codes: readonly string[]; pauseMs?: number }): LoadRun {
  const records: LoadRecord[] = [];
  let running = true;
  const pause = opts.pauseMs ?? 20;
  let n = 0;
  const once = async (kind: LoadRecord['kind'], run: () => Promise<{ status: number; code?: string }>) => {
    const startedAt = Date.now();
    let status = 0;
    let code: string | undefined;
    try {
      ({ status, code } = await run());
    } catch {
      status = 0; // connection refused or reset, timed out: recorded as a failure
    }
    records.push({ kind, startedAt, endedAt: Date.now(), status, ...(code !== undefined ? { code } : {}) });
  };
  const writer = async (c: Client) => {
    while (running) {
      await once('create', async () => {
        const r = await c.req('POST', '/api/links', { url: `https://example.com/ha/${n++}` }, {}, 15_000);
        return { status: r.status, code: r.status === 201 ? (r.json as { code: string }).code : undefined };
      });
      await sleep(pause);
    }
  };
  const reader = async (i: number) => {
    const c = new Client(opts.base);
    let k = i;
    while (running) {
      const code = opts.codes[k++ % opts.codes.length]!;
      await once('redirect', async () => ({ status: (await c.req('GET', `/${code}`, undefined, {}, 15_000)).status }));
      await sleep(pause);
    }
  };
  const loops = [...opts.writers.map(writer), ...Array.from({ length: opts.readers }, (_, i) => reader(i))];
  return {
    records,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/**
 * How long after `at` (the fault) writes succeed again: until the end of the first create
 * that was sent after `at` and answered 201, in ms (Infinity when none was).
 */
export function writeOutageMs(records: readonly LoadRecord[], at: number): number {
  const ok = records.filter((r) => r.kind === 'create' && r.status === 201 && r.startedAt >= at).map((r) => r.endedAt);
  return ok.length === 0 ? Infinity : Math.min(...ok) - at;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
