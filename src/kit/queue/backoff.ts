// Retry delays of failed jobs: exponential, capped, with jitter so that jobs that failed
// together (a database restart) do not all come back at the same instant.

export interface BackoffSettings {
  /** Delay before the second attempt, before jitter. */
  baseMs: number;
  /** No delay is longer than this. */
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = { baseMs: 100, capMs: 10_000 };

/**
 * The delay after failed attempt `attempt` (1 = the first failure): "equal jitter", half of
 * base * 2^(attempt-1) (capped) fixed and half random, so delays still grow with every
 * attempt while spreading the herd. `random` in [0, 1), injectable for tests.
 */
export function backoffDelay(attempt: number, s: BackoffSettings = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(attempt));
  const ceiling = Math.min(s.capMs, s.baseMs * 2 ** Math.min(n - 1, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
