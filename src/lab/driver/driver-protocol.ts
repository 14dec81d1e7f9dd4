// What the bench process and the load-driver process say to each other over the IPC channel.
import type { LatencySummary } from './latency-recorder.ts';

export interface PhaseSpec {
  /** closed: C connections, each sends as soon as its last response arrived (saturation).
   *  open: requests are due at a constant rate whatever the server does (fixed arrival). */
  mode: 'closed' | 'open';
  host: string;
  port: number;
  connections: number;
  warmupMs: number;
  durationMs: number;
  /** Requests per second; open mode only. */
  rate?: number;
  /** Codes are drawn from Zipf(zipfS) over links 0..links-1 (see bench-links.ts). */
  links: number;
  zipfS: number;
  seed: number;
  /**
   * Logged-in users instead of redirects: each request is one virtual user's (drawn
   * uniformly, seeded) and carries that user's Cookie header; its path is drawn uniformly
   * from `paths`. The cookies are session secrets: they stay in the two processes, never in
   * a report or a log.
   */
  session?: SessionWorkload;
  /** The status that counts as a success: 302 (a redirect) unless told. */
  expectStatus?: number;
}

export interface SessionWorkload {
  /** One Cookie header value per virtual user, e.g. "ladder_sid=...". */
  cookies: string[];
  paths: string[];
}

export interface PhaseResult {
  mode: PhaseSpec['mode'];
  /** Measured window in seconds (warm-up excluded). */
  seconds: number;
  /** Responses received in the window. */
  responses: number;
  /** Responses with the expected status (302 unless the spec says otherwise), per second:
   *  the throughput we report. */
  throughput: number;
  /** Responses with any other status (the name is from when every phase was redirects). */
  non302: number;
  /** Status code -> count, every status seen. */
  statuses: Record<string, number>;
  /** Requests that got no response: connection refused, reset, bad framing. */
  failed: number;
  firstError: string | null;
  /** Closed mode: from send to response. Open mode: from the SCHEDULED send time. */
  latency: LatencySummary;
  /** Open mode only: from the actual send, to show what coordinated omission would hide. */
  serviceTime?: LatencySummary;
  /** Open mode: requests due in the window. */
  scheduled?: number;
  /** Open mode: requests sent more than LATE_MS after they were due. */
  late?: number;
  /** Open mode: requests due in the window still waiting for a connection when the drain after it ended (DRAIN_MS). */
  unsent?: number;
  maxSendLagMs?: number;
  /** CPU the driver used, as a fraction of one core (near 1.0: the driver may be the limit). */
  driverCpu: number;
}

/** A request sent later than this after its due time counts as late. */
export const LATE_MS = 1;

export type ToDriver = { type: 'run'; id: number; spec: PhaseSpec };
export type FromDriver =
  | { type: 'ready' }
  | { type: 'result'; id: number; result: PhaseResult }
  | { type: 'error'; id: number; message: string };
