// A steady load of creates and redirects against a running topology, recorded request by
// request: what the failover trials (failover-trials.ts) and the --ha tests measure. When
// writes stopped and came back, whether any read failed, which creates were acknowledged
// (201, so that they can be looked for afterwards), and each create's latency.

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

/** A signed-up user of Links: its session cookie, sent back with every request. */
export class Visitor {
  private cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  static async signUp(base: string, email: string): Promise<Visitor> {
    const v = new Visitor(base);
    const r = await v.request('POST', '/api/signup', { email, password: 'correct horse battery' });
    if (r.status !== 201) throw new Error(`signup failed: ${r.status}`);
    return v;
  }

  async request(method: string, path: string, body?: unknown, timeoutMs = 15_000): Promise<{ status: number; json: unknown }> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(this.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    for (const set of res.headers.getSetCookie()) {
      const pair = set.split(';')[0]!;
      const eq = pair.indexOf('=');
      if (eq > 0) this.cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined; // an HTML page (the redirect's 404) or an empty body
    }
    return { status: res.status, json };
  }
}

/**
 * Each writer loops creating links; `readers` loops follow redirects to `codes`. A request
 * that times out or whose connection fails is recorded with status 0.
 */
export function startLoad(opts: { writers: readonly Visitor[]; readers: number; base: string; codes: readonly string[]; pauseMs?: number }): LoadRun {
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
      status = 0; // refused, reset or timed out: a failure
    }
    records.push({ kind, startedAt, endedAt: Date.now(), status, ...(code !== undefined ? { code } : {}) });
  };
  const writer = async (v: Visitor) => {
    while (running) {
      await once('create', async () => {
        const r = await v.request('POST', '/api/links', { url: `https://example.com/ha/${n++}` });
        return { status: r.status, code: r.status === 201 ? (r.json as { code: string }).code : undefined };
      });
      await sleep(pause);
    }
  };
  const reader = async (i: number) => {
    const v = new Visitor(opts.base);
    let k = i;
    while (running) {
      const code = opts.codes[k++ % opts.codes.length]!;
      await once('redirect', async () => ({ status: (await v.request('GET', `/${code}`)).status }));
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

/** The q-quantile (0..1) of xs, nearest rank; NaN when empty. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
