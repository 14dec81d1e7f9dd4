// A chart of a bench run's time series as a standalone SVG, written by hand from the series
// (no charting dependency): web servers (a step line), the arrival rate and p99 latency over
// time, one panel each on a shared time axis, with optional vertical markers (the load step,
// the first server added). docs/performance.md shows the autoscale scenario's.

export interface ChartPoint {
  t: number;
  servers: number;
  rate: number;
  p99: number;
}

export interface ChartMarker {
  t: number;
  label: string;
}

const W = 760;
const PANEL_H = 120;
const GAP = 34;
const LEFT = 64;
const RIGHT = 16;
const TOP = 48;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (n: number) => (Math.abs(n) >= 100 ? Math.round(n).toString() : Math.abs(n) >= 10 ? n.toFixed(0) : n.toFixed(1).replace(/\.0$/, ''));

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten, at least `max`. */
function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

export function timeSeriesSvg(title: string, points: readonly ChartPoint[], markers: readonly ChartMarker[] = []): string {
  const tMax = Math.max(1, ...points.map((p) => p.t));
  const plotW = W - LEFT - RIGHT;
  const x = (t: number) => LEFT + (t / tMax) * plotW;
  const panels: { name: string; unit: string; color: string; value: (p: ChartPoint) => number; step: boolean; max?: number }[] = [
    { name: 'web servers', unit: '', color: '#2b6cb0', value: (p) => p.servers, step: true, max: Math.max(2, ...points.map((p) => p.servers)) },
    { name: 'arrival rate', unit: 'req/s', color: '#2f855a', value: (p) => p.rate, step: true },
    { name: 'p99', unit: 'ms', color: '#c53030', value: (p) => p.p99, step: false },
  ];
  const out: string[] = [];
  const height = TOP + panels.length * (PANEL_H + GAP) + 10;
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="${LEFT}" y="18" font-size="13" font-weight="bold">${esc(title)}</text>`);
  panels.forEach((panel, i) => {
    const y0 = TOP + i * (PANEL_H + GAP);
    const vmax = panel.max ?? niceMax(Math.max(...points.map(panel.value), 0));
    const y = (v: number) => y0 + PANEL_H - (Math.min(v, vmax) / vmax) * PANEL_H;
    out.push(`<rect x="${LEFT}" y="${y0}" width="${plotW}" height="${PANEL_H}" fill="none" stroke="#ccc"/>`);
    // Whole servers on the servers' axis; halves elsewhere.
    for (const f of [0, 0.5, 1]) {
      const v = vmax * f;
      if (panel.step && panel.max !== undefined && !Number.isInteger(v)) continue;
      out.push(`<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`);
      out.push(`<text x="${LEFT - 4}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${fmt(v)}</text>`);
    }
    out.push(`<text x="${LEFT + 4}" y="${y0 - 5}" fill="${panel.color}" font-weight="bold">${esc(panel.name)}${panel.unit ? ` (${panel.unit})` : ''}</text>`);
    let d = '';
    points.forEach((p, k) => {
      const px = x(p.t).toFixed(1);
      const py = y(panel.value(p)).toFixed(1);
      if (k === 0) d += `M${px},${py}`;
      else if (panel.step) d += `H${px}V${py}`;
      else d += `L${px},${py}`;
    });
    if (d) out.push(`<path d="${d}" fill="none" stroke="${panel.color}" stroke-width="1.6"/>`);
    markers.forEach((m, k) => {
      out.push(`<line x1="${x(m.t).toFixed(1)}" x2="${x(m.t).toFixed(1)}" y1="${y0}" y2="${y0 + PANEL_H}" stroke="#999" stroke-dasharray="3,3"/>`);
      // Labels a line apart, so that markers close in time do not overlap.
      if (i === 0) out.push(`<text x="${(x(m.t) + 3).toFixed(1)}" y="${y0 + 12 + (k % 3) * 12}" fill="#555">${esc(m.label)}</text>`);
    });
  });
  const yAxis = TOP + panels.length * (PANEL_H + GAP) - GAP + 14;
  const tick = niceMax(tMax / 8);
  for (let t = 0; t <= tMax + 1e-9; t += tick) out.push(`<text x="${x(t).toFixed(1)}" y="${yAxis}" text-anchor="middle" fill="#555">${fmt(t)}</text>`);
  out.push(`<text x="${LEFT + plotW}" y="${yAxis + 14}" text-anchor="end" fill="#555">seconds</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
