// The measuring loops of the load driver, run in their own process pinned away from the
// servers. Closed loop finds the saturation throughput; open loop sends at a fixed arrival
// rate and times each request from when it was DUE, so a stalled server is charged for
// the requests it kept waiting (no coordinated omission).
import { performance } from 'node:perf_hooks';
import { benchCode, rankToIndex } from '../dataset/bench-links.ts';
import { LATE_MS, type PhaseResult, type PhaseSpec, type SessionWorkload } from './driver-protocol.ts';
import { HttpConnection } from './http-connection.ts';
import { LatencyRecorder } from './latency-recorder.ts';
import { seededRandom } from './seeded-random.ts';
import type { ZipfSampler } from './zipf.ts';

/** How long to wait for requests still in flight when an open-loop window closes. */
const DRAIN_MS = 5000;
/** Due requests kept waiting for a connection at most; beyond this a server is far behind
 *  and further requests are counted as unsent without being queued (bounded memory). */
const MAX_BACKLOG = 100_000;

const now = () => performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One request to send: a path, and the Cookie header of the user sending it, if any. */
export interface DriverRequest {
  path: string;
  cookie: string | undefined;
}

/** What the loops send next; every source repeats the same sequence for the same seed. */
export interface RequestSource {
  next(): DriverRequest;
}

/** Redirects: Zipf popularity over the seeded links, the same sequence per seed. */
export class PathSource implements RequestSource {
  private readonly toIndex: (rank: number) => number;
  private readonly random: () => number;

  constructor(
    private readonly sampler: ZipfSampler,
    seed: number,
  ) {
    this.toIndex = rankToIndex(sampler.n);
    this.random = seededRandom(seed);
  }

  next(): DriverRequest {
    return { path: '/' + benchCode(this.toIndex(this.sampler.next(this.random))), cookie: undefined };
  }
}

/**
 * Logged-in users: each request is a virtual user's, drawn uniformly, with that user's
 * cookie, for a path drawn uniformly from the workload's paths. Users are not tied to
 * connections: a balancer's connection pool carries every user's requests too.
 */
export class SessionSource implements RequestSource {
  private readonly random: () => number;

  constructor(
    private readonly workload: SessionWorkload,
    seed: number,
  ) {
    if (workload.cookies.length === 0 || workload.paths.length === 0) throw new Error('a session workload needs users and paths');
    this.random = seededRandom(seed);
  }

  next(): DriverRequest {
    const { cookies, paths } = this.workload;
    const cookie = cookies[Math.floor(this.random() * cookies.length)]!;
    // An empty cookie is an anonymous visitor: no Cookie header at all (what a shared cache stores).
    return { path: paths[Math.floor(this.random() * paths.length)]!, cookie: cookie === '' ? undefined : cookie };
  }
}

/** Counts outcomes of the requests that belong to the measured window. */
class Tally {
  readonly latency = new LatencyRecorder();
  readonly serviceTime = new LatencyRecorder();
  readonly statuses = new Map<number, number>();
  responses = 0;
  ok = 0;
  failed = 0;
  firstError: string | null = null;

  constructor(private readonly expected: number) {}

  status(code: number): void {
    this.responses++;
    if (code === this.expected) this.ok++;
    this.statuses.set(code, (this.statuses.get(code) ?? 0) + 1);
  }

  error(err: unknown): void {
    this.failed++;
    this.firstError ??= err instanceof Error ? err.message : String(err);
  }

  result(spec: PhaseSpec, seconds: number, cpu: number): PhaseResult {
    return {
      mode: spec.mode,
      seconds,
      responses: this.responses,
      throughput: seconds > 0 ? this.ok / seconds : 0,
      non302: this.responses - this.ok,
      statuses: Object.fromEntries([...this.statuses].map(([k, v]) => [String(k), v])),
      failed: this.failed,
      firstError: this.firstError,
      latency: this.latency.summary(),
      driverCpu: cpu,
    };
  }
}

/** A connection slot that reopens its connection after a failure. */
class Slot {
  private conn: HttpConnection | undefined;
  constructor(private readonly spec: PhaseSpec) {}

  async get(req: DriverRequest): Promise<number> {
    if (!this.conn?.usable) {
      this.conn?.close();
      this.conn = undefined;
      this.conn = await HttpConnection.open(this.spec.host, this.spec.port);
    }
    return this.conn.get(req.path, req.cookie);
  }

  close(): void {
    this.conn?.close();
  }
}

export async function runPhase(spec: PhaseSpec, paths: RequestSource): Promise<PhaseResult> {
  const slots = Array.from({ length: spec.connections }, () => new Slot(spec));
  try {
    return spec.mode === 'closed' ? await closedLoop(spec, paths, slots) : await openLoop(spec, paths, slots);
  } finally {
    for (const s of slots) s.close();
  }
}

async function closedLoop(spec: PhaseSpec, paths: RequestSource, slots: Slot[]): Promise<PhaseResult> {
  const tally = new Tally(spec.expectStatus ?? 302);
  const measureFrom = now() + spec.warmupMs;
  const end = measureFrom + spec.durationMs;
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  let last = measureFrom;
  await Promise.all(
    slots.map(async (slot) => {
      for (let sent = now(); sent < end; sent = now()) {
        const counts = sent >= measureFrom;
        if (counts) cpuAtStart ??= process.cpuUsage();
        try {
          const status = await slot.get(paths.next());
          const done = now();
          if (!counts) continue;
          tally.status(status);
          tally.latency.record(done - sent);
          if (done > last) last = done;
        } catch (err) {
          if (counts) tally.error(err);
          await sleep(10); // a refused or reset connection must not become a busy loop
        }
      }
    }),
  );
  const seconds = (last - measureFrom) / 1000;
  return tally.result(spec, seconds, cpuShare(cpuAtStart, seconds));
}

async function openLoop(spec: PhaseSpec, paths: RequestSource, slots: Slot[]): Promise<PhaseResult> {
  const rate = spec.rate ?? 0;
  if (!(rate > 0)) throw new Error('open loop needs a rate > 0');
  const tally = new Tally(spec.expectStatus ?? 302);
  const interval = 1000 / rate;
  const start = now();
  const measureFrom = start + spec.warmupMs;
  const end = measureFrom + spec.durationMs;
  // Due times waiting for a free connection, oldest first (a ring would do; this stays small
  // unless the server falls behind, and then the report says so).
  const due: number[] = [];
  let head = 0;
  const idle = [...slots];
  let next = 0; // index of the next request to schedule
  let inFlight = 0;
  let scheduled = 0;
  let dropped = 0;
  let late = 0;
  let maxLag = 0;
  let cpuAtStart: NodeJS.CpuUsage | undefined;

  const dispatch = (slot: Slot, dueAt: number) => {
    const sent = now();
    const counts = dueAt >= measureFrom;
    if (counts) {
      const lag = sent - dueAt;
      if (lag > LATE_MS) late++;
      if (lag > maxLag) maxLag = lag;
    }
    inFlight++;
    slot.get(paths.next()).then(
      (status) => {
        const done = now();
        if (counts) {
          tally.status(status);
          tally.latency.record(done - dueAt);
          tally.serviceTime.record(done - sent);
        }
        release(slot);
      },
      (err: unknown) => {
        if (counts) tally.error(err);
        release(slot);
      },
    );
  };
  const release = (slot: Slot) => {
    inFlight--;
    if (head < due.length) dispatch(slot, due[head++]!);
    else idle.push(slot);
  };

  await new Promise<void>((resolve) => {
    // setImmediate, not a timer: timers fire at best every millisecond, which would add up
    // to a millisecond of send lag to every request. The driver has a core to itself.
    const pump = () => {
      const t = now();
      const until = Math.min(t, end);
      for (let at = start + next * interval; at <= until; at = start + ++next * interval) {
        const counts = at >= measureFrom;
        if (counts) {
          cpuAtStart ??= process.cpuUsage();
          scheduled++;
        }
        if (due.length - head < MAX_BACKLOG) due.push(at);
        else if (counts) dropped++;
      }
      while (head < due.length && idle.length > 0) dispatch(idle.pop()!, due[head++]!);
      if (head > 4096 && head * 2 > due.length) {
        due.splice(0, head);
        head = 0;
      }
      if (t < end) setImmediate(pump);
      else resolve();
    };
    pump();
  });
  // Requests that fell due inside the window still go out as connections free up, timed
  // from when they were due; only those still waiting when the drain ends are unsent.
  const drainBy = now() + DRAIN_MS;
  while ((inFlight > 0 || head < due.length) && now() < drainBy) await sleep(5);
  const unsent = due.length - head + dropped;
  head = due.length; // nothing more is sent
  const seconds = spec.durationMs / 1000;
  const result = tally.result(spec, seconds, cpuShare(cpuAtStart, seconds));
  const stuck = inFlight;
  return {
    ...result,
    failed: result.failed + stuck,
    firstError: result.firstError ?? (stuck > 0 ? `${stuck} requests still unanswered ${DRAIN_MS} ms after the window` : null),
    serviceTime: tally.serviceTime.summary(),
    scheduled,
    late,
    unsent,
    maxSendLagMs: maxLag,
  };
}

function cpuShare(from: NodeJS.CpuUsage | undefined, seconds: number): number {
  if (!from || seconds <= 0) return 0;
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6 / seconds;
}
