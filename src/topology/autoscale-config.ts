// The autoscaler's settings of a topology (`ladder up --autoscale MIN:MAX [--target-cpu T]
// [--autoscale-sync S] [--scale-in-window S]`), checked once with messages that name the
// flag and the fix. Defaults follow the Kubernetes HPA: a 15 s sync, a 10% tolerance and a
// 300 s scale-in stabilization window; the target is 60% CPU.
import { ConfigError } from './config-error.ts';

export interface AutoscaleConfig {
  min: number;
  max: number;
  /** Mean CPU utilisation to hold the web servers at, of their cap (0.6: 60%). */
  targetCpu: number;
  tolerance: number;
  syncMs: number;
  scaleInWindowMs: number;
}

export interface AutoscaleInput {
  /** "MIN:MAX", as typed. */
  range: string;
  targetCpu?: number;
  /** Seconds between decisions. */
  syncSeconds?: number;
  /** Seconds the load must stay low before a server is removed. */
  scaleInWindowSeconds?: number;
}

export const AUTOSCALE_DEFAULT_TARGET_CPU = 0.6;
export const AUTOSCALE_TOLERANCE = 0.1;
export const AUTOSCALE_DEFAULT_SYNC_S = 15;
export const AUTOSCALE_DEFAULT_SCALE_IN_WINDOW_S = 300;

/**
 * The settings, or a ConfigError. `maxWeb` is the balancer's server slots; `web`, the count asked
 * for with --web (absent: the topology starts MIN), must lie in MIN..MAX.
 */
export function buildAutoscale(input: AutoscaleInput, opts: { loadBalancer: boolean; web: number | undefined; maxWeb: number }): AutoscaleConfig {
  if (!opts.loadBalancer) {
    throw new ConfigError('autoscale', 'needs the load balancer to add and remove web servers behind', 'use --rung 3 or more');
  }
  const m = /^(\d{1,3}):(\d{1,3})$/.exec(input.range.trim());
  if (!m) throw new ConfigError('autoscale', `"${input.range.slice(0, 40)}" is not MIN:MAX`, `use two whole numbers such as 1:4 (1 to ${opts.maxWeb})`);
  const min = Number(m[1]);
  const max = Number(m[2]);
  if (min < 1 || max > opts.maxWeb) throw new ConfigError('autoscale', `${min}:${max} is outside 1..${opts.maxWeb}`, `use MIN and MAX from 1 to ${opts.maxWeb} (HAProxy's server slots)`);
  if (min > max) throw new ConfigError('autoscale', `MIN ${min} is more than MAX ${max}`, 'use MIN:MAX with MIN <= MAX, such as 1:4');
  if (opts.web !== undefined && (opts.web < min || opts.web > max)) {
    throw new ConfigError('web', `${opts.web} web servers is outside the autoscaling range ${min}:${max}`, `start with --web from ${min} to ${max}`);
  }
  const targetCpu = input.targetCpu ?? AUTOSCALE_DEFAULT_TARGET_CPU;
  if (!(targetCpu >= 0.05 && targetCpu <= 1)) throw new ConfigError('target-cpu', `"${targetCpu}"`, 'use a share of a server\'s CPU from 0.05 to 1, such as 0.6');
  const syncS = input.syncSeconds ?? AUTOSCALE_DEFAULT_SYNC_S;
  if (!(syncS >= 0.5 && syncS <= 600)) throw new ConfigError('autoscale-sync', `"${syncS}" seconds`, 'use 0.5 to 600 seconds (15 is the default)');
  const windowS = input.scaleInWindowSeconds ?? AUTOSCALE_DEFAULT_SCALE_IN_WINDOW_S;
  if (!(windowS >= 0 && windowS <= 3600)) throw new ConfigError('scale-in-window', `"${windowS}" seconds`, 'use 0 to 3600 seconds (300 is the default)');
  return Object.freeze({ min, max, targetCpu, tolerance: AUTOSCALE_TOLERANCE, syncMs: Math.round(syncS * 1000), scaleInWindowMs: Math.round(windowS * 1000) });
}
