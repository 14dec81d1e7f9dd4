// The autoscaler's decision, as a pure function of what it measured and what it recommended
// before: in the spirit of AWS target tracking and the Kubernetes HPA (its algorithm, as
// documented for `autoscaling/v2`):
//   desired = ceil(current × utilisation / target), unless utilisation / target is within
//   the tolerance of 1 (no change, so that noise does not flap the tier);
//   scaling out takes effect at once (users are waiting);
//   scaling in takes the highest recommendation in force during the stabilization window
//   (a recommendation is in force until the next sync replaces it), so the tier shrinks only
//   once the load has stayed low for the whole window;
//   always clamped to [min, max].
// The loop that measures and acts is autoscaler.ts; this module only decides, so it is
// tested without processes (test/unit/autoscaler.test.ts).

export interface AutoscalePolicy {
  /** Fewest and most web servers. */
  min: number;
  max: number;
  /** The CPU utilisation to hold each server at, 0..1 of its cap (0.6: 60%). */
  targetCpu: number;
  /** No change while |utilisation / target - 1| is at most this (the HPA's default 0.1). */
  tolerance: number;
  /** Scale in only to the highest recommendation of this long a window (the HPA's default 300 s). */
  scaleInWindowMs: number;
}

/** One recommendation the policy made, kept for the scale-in window. */
export interface Recommendation {
  at: number;
  desired: number;
}

export interface AutoscaleInput {
  now: number;
  /** Web servers serving now. */
  current: number;
  /** Their mean CPU utilisation over the last sync period, 0.. of their cap (may exceed 1 briefly). */
  utilisation: number;
  /** Recommendations of earlier decisions (what decide() returned as `history`). */
  history: readonly Recommendation[];
}

export type Direction = 'out' | 'in' | 'none';

export interface AutoscaleDecision {
  /** What the tier should run now. */
  desired: number;
  direction: Direction;
  /** The unstabilized recommendation of this sync (ceil formula, tolerance, clamp). */
  recommended: number;
  /** One sentence: why this decision. */
  reason: string;
  /** The window's recommendations, this one included: pass to the next decide(). */
  history: Recommendation[];
}

const clamp = (n: number, p: AutoscalePolicy) => Math.min(p.max, Math.max(p.min, n));
const pct = (x: number) => `${Math.round(x * 100)}%`;

export function decide(p: AutoscalePolicy, input: AutoscaleInput): AutoscaleDecision {
  const { now, current, utilisation } = input;
  const ratio = utilisation / p.targetCpu;
  let recommended: number;
  let why: string;
  if (current < p.min || current > p.max) {
    recommended = clamp(current, p);
    why = `${current} is outside ${p.min}..${p.max}`;
  } else if (!Number.isFinite(ratio)) {
    recommended = current;
    why = 'no utilisation measured';
  } else if (Math.abs(ratio - 1) <= p.tolerance + 1e-9) { // 1e-9: 0.66 / 0.6 is 1.1, within 10%
    recommended = current;
    why = `utilisation ${pct(utilisation)} is within ${pct(p.tolerance)} of the target ${pct(p.targetCpu)}`;
  } else {
    const raw = Math.ceil(current * ratio - 1e-9); // 1e-9: 2 × 0.9 / 0.6 is 3, not 3.0000000000000004
    recommended = clamp(Math.max(1, raw), p);
    why = `utilisation ${pct(utilisation)} against the target ${pct(p.targetCpu)} asks for ${raw}${raw !== recommended ? `, clamped to ${p.min}..${p.max}` : ''}`;
  }
  // A recommendation stands from its sync until the next one replaces it; the window keeps
  // every recommendation that stood at some moment of the last scaleInWindowMs. (Keeping only
  // those made within the window, as the HPA documents it, lets a server go up to one sync
  // period less than the window after the load dropped: the last high recommendation can be
  // made just before the drop, and the first low one measured a sync later.)
  const all = [...input.history, { at: now, desired: recommended }];
  const history = all.filter((_, i) => (all[i + 1]?.at ?? now) > now - p.scaleInWindowMs || i === all.length - 1);
  if (recommended >= current) {
    const direction: Direction = recommended > current ? 'out' : 'none';
    return { desired: recommended, direction, recommended, reason: direction === 'out' ? `${why}: scaling out at once` : why, history };
  }
  // Scaling in: the highest recommendation of the window (never above now: that would be a
  // scale-out, which this sync did not ask for), so one quiet sync does not remove a server.
  const stabilized = Math.min(current, Math.max(...history.map((r) => r.desired)));
  if (stabilized >= current) {
    return {
      desired: current,
      direction: 'none',
      recommended,
      reason: `${why}; holding ${current}: the last ${Math.round(p.scaleInWindowMs / 1000)} s asked for up to ${current}`,
      history,
    };
  }
  return { desired: stabilized, direction: 'in', recommended, reason: `${why}; the window's highest recommendation is ${stabilized}: scaling in`, history };
}

/**
 * Mean utilisation of the servers from their CPU seconds at two instants: each server's
 * CPU time used over the interval, relative to its cap in cores (1 when uncapped).
 * Servers that were not measured at both instants (added or removed between) are left out.
 */
export function meanUtilisation(
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
  seconds: number,
  capOf: (name: string) => number,
): number {
  const shares: number[] = [];
  for (const [name, end] of after) {
    const start = before.get(name);
    if (start === undefined || seconds <= 0) continue;
    shares.push(Math.max(0, end - start) / seconds / capOf(name));
  }
  return shares.length === 0 ? NaN : shares.reduce((a, b) => a + b, 0) / shares.length;
}
