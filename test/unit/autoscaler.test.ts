import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/kit/errors.ts';
import { decide, meanUtilisation, type AutoscalePolicy, type Recommendation } from '../../src/launcher/autoscale-policy.ts';
import { Autoscaler, type ScalableServer, type ScalableTier } from '../../src/launcher/autoscaler.ts';
import { timeSeriesSvg } from '../../src/lab/report/time-series-svg.ts';
import { buildTopology } from '../../src/topology/topology.ts';

const policy: AutoscalePolicy = { min: 1, max: 6, targetCpu: 0.6, tolerance: 0.1, scaleInWindowMs: 300_000 };

/** Runs decide() over a series of (seconds, current, utilisation), feeding the history on. */
function run(p: AutoscalePolicy, steps: [number, number, number][]) {
  let history: Recommendation[] = [];
  return steps.map(([s, current, utilisation]) => {
    const d = decide(p, { now: s * 1000, current, utilisation, history });
    history = d.history;
    return d;
  });
}

describe('autoscale policy', () => {
  it('desired = ceil(current x utilisation / target)', () => {
    expect(decide(policy, { now: 0, current: 2, utilisation: 0.9, history: [] })).toMatchObject({ desired: 3, direction: 'out' });
    expect(decide(policy, { now: 0, current: 1, utilisation: 1.5, history: [] })).toMatchObject({ desired: 3, direction: 'out' });
    expect(decide(policy, { now: 0, current: 4, utilisation: 0.7, history: [] })).toMatchObject({ desired: 5, direction: 'out' });
  });

  it('holds within the 10% tolerance of the target, on both sides', () => {
    for (const u of [0.54, 0.6, 0.66]) {
      const d = decide(policy, { now: 0, current: 3, utilisation: u, history: [] });
      expect(d, `utilisation ${u}`).toMatchObject({ desired: 3, direction: 'none' });
      expect(d.reason).toMatch(/within 10% of the target 60%/);
    }
    // Just outside: 0.67 / 0.6 = 1.117 asks for ceil(3.35) = 4.
    expect(decide(policy, { now: 0, current: 3, utilisation: 0.67, history: [] })).toMatchObject({ desired: 4, direction: 'out' });
  });

  it('clamps to MIN..MAX, and brings a tier outside the range back into it', () => {
    expect(decide(policy, { now: 0, current: 4, utilisation: 1.0, history: [] })).toMatchObject({ desired: 6, recommended: 6 });
    expect(decide(policy, { now: 0, current: 1, utilisation: 0.01, history: [] })).toMatchObject({ desired: 1, direction: 'none' });
    expect(decide({ ...policy, min: 2 }, { now: 0, current: 1, utilisation: 0.1, history: [] })).toMatchObject({ desired: 2, direction: 'out' });
    expect(decide({ ...policy, max: 3 }, { now: 0, current: 5, utilisation: 0.6, history: [], })).toMatchObject({ recommended: 3 });
    const d = decide(policy, { now: 0, current: 5, utilisation: 1.2, history: [] });
    expect(d.reason).toMatch(/asks for 10, clamped to 1\.\.6/);
  });

  it('scales out at once, even right after a low recommendation', () => {
    const [, second] = run(policy, [
      [0, 2, 0.1],
      [15, 2, 1.2],
    ]);
    expect(second).toMatchObject({ desired: 4, direction: 'out' });
  });

  it('scales in only once the whole window has asked for less', () => {
    const ds = run({ ...policy, scaleInWindowMs: 60_000 }, [
      [0, 1, 1.5], // out to 3
      [15, 3, 0.2], // asks for 1; the window still holds 3
      [30, 3, 0.2],
      [61, 3, 0.2], // the 3 of t=0 stood until t=15, inside the window
      [74, 3, 0.2],
      [76, 3, 0.2], // the 3 stood last 61 s ago: in to 1
    ]);
    expect(ds.map((d) => d.desired)).toEqual([3, 3, 3, 3, 3, 1]);
    expect(ds.map((d) => d.direction)).toEqual(['out', 'none', 'none', 'none', 'none', 'in']);
    expect(ds[1]!.reason).toMatch(/holding 3: the last 60 s asked for up to 3/);
    expect(ds[5]!.reason).toMatch(/scaling in/);
  });

  it('scales in to the window\'s highest recommendation, not to the lowest', () => {
    const ds = run({ ...policy, scaleInWindowMs: 30_000 }, [
      [0, 4, 0.6], // holds 4
      [20, 4, 0.3], // asks for 2: the 4 of t=0 holds
      [40, 4, 0.15], // asks for 1: the 4 of t=0 stood until t=20, inside the window
      [55, 4, 0.15], // the window (the 2 of t=20 stood until t=40) holds 2
    ]);
    expect(ds.map((d) => d.desired)).toEqual([4, 4, 4, 2]);
  });

  it('removes a server no sooner than the window after the load drops, whatever the sync phase', () => {
    // Syncs every 5 s; the load falls at t=0.5, just after the sync of t=0 saw it high. The
    // first low recommendation comes at t=5; the high one of t=0 stands until then.
    const steps: [number, number, number][] = [[0, 2, 0.6]];
    for (let t = 5; t <= 80; t += 5) steps.push([t, 2, 0.1]);
    const firstIn = steps[run({ ...policy, scaleInWindowMs: 60_000 }, steps).findIndex((d) => d.direction === 'in')]![0];
    expect(firstIn - 0.5).toBeGreaterThanOrEqual(60);
    expect(firstIn).toBe(65);
  });

  it('a zero window scales in at once', () => {
    expect(decide({ ...policy, scaleInWindowMs: 0 }, { now: 5, current: 4, utilisation: 0.15, history: [{ at: 5, desired: 4 }] })).toMatchObject({ desired: 1, direction: 'in' });
  });

  it('changes nothing without a measurement', () => {
    expect(decide(policy, { now: 0, current: 2, utilisation: NaN, history: [] })).toMatchObject({ desired: 2, direction: 'none', reason: 'no utilisation measured' });
  });

  it('utilisation is each server\'s CPU over its cap, averaged; servers measured once are left out', () => {
    const before = new Map([['web1', 10], ['web2', 20]]);
    const after = new Map([['web1', 11], ['web2', 20.5], ['web3', 3]]);
    // web1: 1 s of CPU in 2 s at 0.5 core = 100%; web2: 0.5 s in 2 s at 1 core = 25%.
    expect(meanUtilisation(before, after, 2, (n) => (n === 'web1' ? 0.5 : 1))).toBeCloseTo(0.625);
    expect(meanUtilisation(new Map(), after, 2, () => 1)).toBeNaN();
  });
});

describe('--autoscale settings', () => {
  const up = (autoscale: object, extra: object = {}) => buildTopology({ rung: 3, autoscale: { range: '1:4', ...autoscale }, ...extra });

  it('defaults: 60% CPU, 15 s sync, 300 s window, 10% tolerance; the tier starts at MIN', () => {
    const t = up({ range: '2:5' });
    expect(t.autoscale).toEqual({ min: 2, max: 5, targetCpu: 0.6, tolerance: 0.1, syncMs: 15_000, scaleInWindowMs: 300_000 });
    expect(t.web.count).toBe(2);
    expect(up({ range: '3:5' }).web.count).toBe(3);
    expect(up({ targetCpu: 0.5, syncSeconds: 1, scaleInWindowSeconds: 5 }).autoscale).toMatchObject({ targetCpu: 0.5, syncMs: 1000, scaleInWindowMs: 5000 });
    expect(buildTopology({ rung: 3 }).autoscale).toBeUndefined();
  });

  it('refuses what it cannot honour, naming the flag', () => {
    const bad: [object, object, RegExp][] = [
      [{}, { rung: 2 }, /autoscale: needs the load balancer.*--rung 3/],
      [{ range: '4' }, {}, /autoscale: "4" is not MIN:MAX/],
      [{ range: '0:4' }, {}, /outside 1\.\.16/],
      [{ range: '1:17' }, {}, /outside 1\.\.16/],
      [{ range: '4:2' }, {}, /MIN 4 is more than MAX 2/],
      [{ range: '2:4' }, { web: 5 }, /web: 5 web servers is outside the autoscaling range 2:4/],
      [{ range: '2:4' }, { web: 1 }, /outside the autoscaling range/],
      [{ targetCpu: 0 }, {}, /target-cpu/],
      [{ targetCpu: 1.5 }, {}, /target-cpu/],
      [{ syncSeconds: 0.1 }, {}, /autoscale-sync/],
      [{ scaleInWindowSeconds: -1 }, {}, /scale-in-window/],
    ];
    for (const [a, extra, msg] of bad) {
      expect(() => up(a, extra), JSON.stringify([a, extra])).toThrow(ConfigError);
      expect(() => up(a, extra), JSON.stringify([a, extra])).toThrow(msg);
    }
  });
});

describe('the load step chart', () => {
  it('draws servers, rate and p99 as three panels on one time axis, with markers, escaping text', () => {
    const points = Array.from({ length: 60 }, (_, t) => ({ t, servers: t < 25 ? 1 : 3, rate: t < 20 ? 100 : 750, p99: t < 20 ? 5 : t < 30 ? 400 : 8 }));
    const svg = timeSeriesSvg('step <100 & 750>', points, [{ t: 20, label: 'step up' }]);
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain('step &lt;100 &amp; 750&gt;');
    expect(svg.match(/<path /g)).toHaveLength(3);
    for (const name of ['web servers', 'arrival rate (req/s)', 'p99 (ms)', 'step up', 'seconds']) expect(svg).toContain(name);
    // Axes end on round figures at or above the data: 1000 req/s, 500 ms; servers to their most.
    expect(svg).toContain('>1000<');
    expect(svg).toContain('>500<');
    expect(svg.trim().endsWith('</svg>')).toBe(true);
  });
});

describe('the autoscaler loop', () => {
  /** Burns the test process's own CPU for `ms` milliseconds. */
  const burn = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };

  it('does not decide on the sliver of a period between a scaling and the next tick', async () => {
    // The tier starts below MIN, so the first sync scales to 1; that scaling ends just before
    // the next tick, and the CPU the process burns right after it falls into a window of a
    // few ms. Measured there, one uncapped server (this process) is ~100% busy: a scale-out.
    const config = { min: 1, max: 3, targetCpu: 0.6, tolerance: 0.1, syncMs: 300, scaleInWindowMs: 0 };
    let servers: ScalableServer[] = [];
    const scaledTo: number[] = [];
    const tier: ScalableTier = {
      servingWebs: () => servers,
      scale: async (count) => {
        scaledTo.push(count);
        await new Promise((r) => setTimeout(r, 280));
        servers = Array.from({ length: count }, (_, i) => ({ name: `web${i + 1}`, pid: process.pid }));
        setImmediate(() => burn(60));
      },
    };
    const lines: string[] = [];
    const autoscaler = new Autoscaler(config, tier, (l) => lines.push(l));
    await autoscaler.start();
    await new Promise((r) => setTimeout(r, 1300));
    await autoscaler.stop();
    expect(scaledTo, lines.join('\n')).toEqual([1]);
  });
});
