import { describe, expect, it } from 'vitest';
import { LatencyRecorder } from '../../src/lab/driver/latency-recorder.ts';

describe('LatencyRecorder', () => {
  it('gives exact nearest-rank percentiles, beyond its first buffer', () => {
    const r = new LatencyRecorder();
    // 1..100_000 in a scrambled order: more samples than the initial 65,536 slots.
    for (let i = 0; i < 100_000; i++) r.record(((i * 7919) % 100_000) + 1);
    const s = r.summary();
    expect(s.count).toBe(100_000);
    expect(s.p50).toBe(50_000);
    expect(s.p90).toBe(90_000);
    expect(s.p99).toBe(99_000);
    expect(s.p999).toBe(99_900);
    expect(s.max).toBe(100_000);
    expect(s.mean).toBeCloseTo(50_000.5, 6);
  });

  it('summarises nothing as zeros', () => {
    expect(new LatencyRecorder().summary()).toMatchObject({ count: 0, p50: 0, max: 0 });
  });
});
