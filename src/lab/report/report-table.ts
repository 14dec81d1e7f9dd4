// The human-readable form of a bench report: a few aligned tables for the terminal.
import type { BenchReport } from './bench-report.ts';

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const pct = (n: number | null) => (n === null ? '-' : `${Math.round(n * 100)}%`);

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  // First column left-aligned (names), the rest right-aligned (numbers).
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatReport(r: BenchReport): string {
  const p = r.parameters;
  const out: string[] = [];
  const label = new Map(r.servers.map((s) => [s.name, s.label]));
  // Topologies: the other components' CPU and the web servers' throttling, when measured.
  const components = [...new Set(r.saturation.medians.flatMap((m) => Object.keys(m.componentCpu ?? {})))];
  const throttled = r.saturation.medians.some((m) => m.throttled !== undefined);
  const fixedRounds = r.fixedRate.measurements.some((m) => m.round !== undefined);
  for (const t of r.topologies ?? (r.topology ? [r.topology] : [])) {
    out.push(
      `topology: ${t.command} (entry ${t.entry ?? '-'}), web servers ` +
        (t.cpu === null ? 'uncapped' : t.capped ? `capped at ${t.cpu} core` : `NOT capped (asked ${t.cpu} core)`),
      `  nodes: ${t.nodes.map((n) => `${n.name} (${n.role}${n.cpu === undefined || n.role === 'web' ? '' : `, ${n.cpu} core`})`).join(', ')}`,
      ...t.launcherNotes.map((n) => `  launcher: ${n}`),
    );
  }
  out.push(
    `ladder bench ${r.scenario}: ` +
      (r.scenario === 'session'
        ? `${int(p.users)} logged-in users, `
        : `${int(p.links)} links (Zipf s=${p.zipf}: top 1% get ${pct(p.zipfTop1PercentShare)} of requests), `) +
      `${p.connections} connections, ${p.rounds} x ${p.duration} s after ${p.warmup} s warm-up`,
    `machine: ${r.machine.cpus} x ${r.machine.cpuModel}, ${r.machine.memoryGb} GB, node ${r.machine.node}, ` +
      `load average ${r.machine.loadAverage.join(' ')} -> ${r.machine.loadAverageAtEnd.join(' ')}`,
    `pinning: ${r.pinning.note}`,
    ...r.databases.map((d) => `postgres (${d.engine}): ${d.version}`),
    '',
    `Saturation: closed loop, ${p.connections} connections, median of ${p.rounds} round(s)`,
    table(
      [
        'server', 'req/s', 'each round', 'p50 ms', 'p99 ms', 'server CPU', 'postgres CPU',
        ...components.map((c) => `${c} CPU`), ...(throttled ? ['throttled'] : []), 'CPU us/req', 'driver CPU', 'errors',
      ],
      r.saturation.medians.map((m) => [
        m.server,
        int(m.throughput),
        m.throughputs.map(int).join(' '),
        ms(m.p50),
        ms(m.p99),
        pct(m.serverCpu),
        pct(m.databaseCpu),
        ...components.map((c) => pct(m.componentCpu?.[c] ?? null)),
        ...(throttled ? [pct(m.throttled ?? null)] : []),
        int(m.cpuPerRequestUs),
        pct(m.driverCpu),
        int(m.errors),
      ]),
    ),
  );
  // Topologies: each database node's CPU, and its cap's throttling when capped (--db-cpu).
  const nodeRows = r.saturation.medians.filter((m) => (m.databaseNodeCpu && Object.keys(m.databaseNodeCpu).length > 1) || m.databaseThrottled);
  if (nodeRows.length > 0) {
    out.push('', 'postgres nodes (median CPU, throttled share of CFS periods when capped):');
    for (const m of nodeRows) {
      const nodes = Object.entries(m.databaseNodeCpu ?? {}).map(([n, cpu]) => `${n} ${pct(cpu)}${m.databaseThrottled?.[n] === undefined ? '' : ` (throttled ${pct(m.databaseThrottled[n])})`}`);
      out.push(`  ${m.server.padEnd(16)} ${nodes.join(', ')}`);
    }
  }
  if (r.fixedRate.measurements.length === 0) out.push('', `Fixed arrival rate: ${r.fixedRate.rateSource}`);
  else out.push(
    '',
    `Fixed arrival rate: ${int(r.fixedRate.rate)} req/s (${r.fixedRate.rateSource}); latency from the scheduled send time`,
    table(
      ['server', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'p99 from send', 'late', 'unsent', 'failed', r.scenario === 'session' ? 'non-200' : 'non-302'],
      r.fixedRate.measurements.map((m) => [
        fixedRounds && m.round !== undefined ? `${m.server} r${m.round}` : m.server,
        ms(m.latency.p50),
        ms(m.latency.p90),
        ms(m.latency.p99),
        ms(m.latency.p999),
        ms(m.latency.max),
        ms(m.serviceTime?.p99 ?? NaN),
        int(m.late ?? 0),
        int(m.unsent ?? 0),
        int(m.failed),
        int(m.non302),
      ]),
    ),
  );
  out.push(
    '',
    'servers:',
    ...[...label].map(([name, l]) => `  ${name.padEnd(16)} ${l}`),
  );
  const mem = Object.entries(r.memory);
  if (mem.length > 0) {
    out.push('', 'memory (VmRSS of the node process after the run):');
    for (const [name, m] of mem) out.push(`  ${name.padEnd(16)} ${m.rssMb.toFixed(1)} MiB (peak ${m.peakMb.toFixed(1)} MiB)`);
  }
  if (Object.keys(r.ratios).length > 0) {
    out.push('', 'ratios:');
    for (const [name, v] of Object.entries(r.ratios)) out.push(`  ${name.padEnd(34)} ${v.toFixed(2)}`);
  }
  if (r.figures && Object.keys(r.figures).length > 0) {
    out.push('', 'figures:');
    for (const [name, v] of Object.entries(r.figures)) {
      out.push(`  ${name.padEnd(34)} ${Math.abs(v) >= 100 || Number.isInteger(v) ? int(v) : v.toFixed(2)}`);
    }
  }
  out.push('', 'targets:');
  for (const t of r.targets) {
    const value = t.unit === 'MiB' ? t.value.toFixed(1) : Number.isInteger(t.value) ? String(t.value) : t.value.toFixed(2);
    out.push(`  ${t.pass ? 'PASS' : 'FAIL'}  ${t.name} ${t.comparison} ${t.threshold}${t.unit ? ' ' + t.unit : ''}: ${value}`);
  }
  if (r.notes.length > 0) out.push('', 'notes:', ...r.notes.map((n) => `  - ${n}`));
  return out.join('\n') + '\n';
}
