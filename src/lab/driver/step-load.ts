// An open-loop load whose arrival rate follows a schedule (a step from 20% to 150% of one
// server's capacity and back, say), reported second by second: requests due, answered and
// failed, and their latency percentiles, each request timed from when it was DUE so that
// a server that falls behind is charged for the wait (no coordinated omission). What the
// autoscale scenario and its integration test watch the autoscaler by. Connections are
// opened as the backlog needs them, up to a bound; a request that finds none waits in order.
import { performance } from 'node:perf_hooks';
import { HttpConnection } from './http-connection.ts';
import { LatencyRecorder } from './latency-recorder.ts';

export interface StepLoadOptions {
  host: string;
  port: number;
  /** Requests per second at t seconds from the start. */
  rate: (t: number) => number;
  durationS: number;
  /** The path of the next request. */
  path: () => string;
  /** A status that counts as answered (default: anything but a 5xx). */
  ok?: (status: number) => boolean;
  maxConnections?: number;
  /** Called with each second's figures (for a live log), REPORT_LAG_S after it ended, so its slow answers are in. */
  onSecond?: (s: LoadSecond) => void;
  /** Stops early when it returns true (checked every second). */
  stop?: () => boolean;
}

export interface LoadSecond {
  /** Seconds from the start: the requests that were due in [second, second + 1). */
  second: number;
  /** The schedule's rate at the start of the second. */
  rate: number;
  sent: number;
  ok: number;
  failed: number;
  /** Latency of its answered requests from when they were due, ms. */
  p50: number;
  p99: number;
  max: number;
}

export interface StepLoadResult {
  series: LoadSecond[];
  sent: number;
  ok: number;
  failed: number;
  /** Statuses and errors of the failed requests, counted. */
  failures: Record<string, number>;
  /** Most connections open at once. */
  connections: number;
}

const DRAIN_MS = 5000;
const REPORT_LAG_S = 2;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function runStepLoad(o: StepLoadOptions): Promise<StepLoadResult> {
  const ok = o.ok ?? ((s: number) => s < 500);
  const maxConnections = o.maxConnections ?? 256;
  const seconds: { rate: number; sent: number; ok: number; failed: number; latency: LatencyRecorder }[] = [];
  const bucket = (s: number) => (seconds[s] ??= { rate: o.rate(s), sent: 0, ok: 0, failed: 0, latency: new LatencyRecorder() });
  const failures: Record<string, number> = {};
  const idle: HttpConnection[] = [];
  const backlog: { due: number; path: string }[] = [];
  let open = 0;
  let opening = 0;
  let peak = 0;
  let inFlight = 0;
  const start = performance.now();

  const finish = (due: number, status: number | string) => {
    const b = bucket(Math.floor((due - start) / 1000));
    if (typeof status === 'number' && ok(status)) {
      b.ok++;
      b.latency.record(performance.now() - due);
    } else {
      b.failed++;
      failures[String(status)] = (failures[String(status)] ?? 0) + 1;
    }
  };
  const send = (conn: HttpConnection, job: { due: number; path: string }) => {
    inFlight++;
    conn.get(job.path).then(
      (status) => {
        inFlight--;
        finish(job.due, status);
        release(conn);
      },
      (err: unknown) => {
        inFlight--;
        open--;
        finish(job.due, (err as Error).message.slice(0, 60));
        pump();
      },
    );
  };
  const release = (conn: HttpConnection) => {
    if (!conn.usable) {
      open--;
      conn.close();
      pump();
      return;
    }
    const job = backlog.shift();
    if (job) send(conn, job);
    else idle.push(conn);
  };
  const pump = () => {
    while (backlog.length > 0 && idle.length > 0) {
      const conn = idle.pop()!;
      if (conn.usable) send(conn, backlog.shift()!);
      else {
        open--; // closed by the server while idle (its keep-alive timeout)
        conn.close();
      }
    }
    // Open connections for what still waits, a few at a time.
    while (backlog.length > opening && open + opening < maxConnections) {
      opening++;
      HttpConnection.open(o.host, o.port).then(
        (conn) => {
          opening--;
          open++;
          peak = Math.max(peak, open);
          release(conn);
        },
        (err: unknown) => {
          opening--;
          const job = backlog.shift();
          if (job) finish(job.due, `connect: ${(err as Error).message.slice(0, 50)}`);
        },
      );
    }
  };

  // The schedule: each request is due at the instant the integral of the rate reaches it.
  let due = 0; // requests due so far (fractional)
  let sentCount = 0;
  let last = start;
  let reported = 0;
  for (;;) {
    const now = performance.now();
    const t = (now - start) / 1000;
    if (t >= o.durationS) break;
    due += (o.rate(t) * (now - last)) / 1000;
    last = now;
    while (sentCount < Math.floor(due)) {
      // Spread the requests of this tick over it, so their due times are exact.
      const at = now - ((Math.floor(due) - sentCount - 1) / Math.max(1, o.rate(t))) * 1000;
      sentCount++;
      bucket(Math.floor((at - start) / 1000)).sent++;
      backlog.push({ due: at, path: o.path() });
    }
    pump();
    while (reported < Math.floor(t) - REPORT_LAG_S) {
      const s = reported++;
      if (o.onSecond && seconds[s]) o.onSecond(summarize(s, seconds[s]));
    }
    if (o.stop?.()) break;
    await sleep(1);
  }
  const drainUntil = performance.now() + DRAIN_MS;
  while ((inFlight > 0 || backlog.length > 0) && performance.now() < drainUntil) await sleep(5);
  for (const job of backlog.splice(0)) finish(job.due, 'not sent: backlog at the end');
  for (const c of idle) c.close();
  const series = seconds.map((b, s) => summarize(s, b ?? bucket(s)));
  return {
    series,
    sent: sentCount,
    ok: series.reduce((a, s) => a + s.ok, 0),
    failed: series.reduce((a, s) => a + s.failed, 0) + inFlight,
    failures: inFlight > 0 ? { ...failures, 'no answer within the drain': inFlight } : failures,
    connections: peak,
  };
}

function summarize(second: number, b: { rate: number; sent: number; ok: number; failed: number; latency: LatencyRecorder }): LoadSecond {
  const l = b.latency.summary();
  return { second, rate: b.rate, sent: b.sent, ok: b.ok, failed: b.failed, p50: l.p50, p99: l.p99, max: l.max };
}
