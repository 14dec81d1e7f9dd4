// The scenario registry: `ladder bench --help` lists every scenario on one line, the flags
// each reads are declared flags, and the scaffold writes the report header and verdict in
// the fields and order the saved reports have always had.
import { describe, expect, it } from 'vitest';
import { scenarioList } from '../../src/lab/bench-command.ts';
import type { BenchSession } from '../../src/lab/machine/bench-session.ts';
import { parseBenchOptions, SCENARIO_FLAGS } from '../../src/lab/options/bench-options.ts';
import { target } from '../../src/lab/report/bench-report.ts';
import { findScenario, SCENARIOS } from '../../src/lab/scenarios/registry.ts';
import { ScenarioContext } from '../../src/lab/scenarios/scaffold.ts';

describe('scenario registry', () => {
  it('holds every scenario, each found by its name', () => {
    expect(SCENARIOS.map((s) => s.name)).toEqual(['redirect', 'engines', 'session', 'cache', 'scaling', 'replicas', 'edge', 'autoscale', 'queue', 'shards']);
    for (const s of SCENARIOS) expect(findScenario(s.name)).toBe(s);
    expect(findScenario('nope')).toBeUndefined();
  });

  it('lists every scenario on one line of its own', () => {
    const lines = scenarioList().split('\n');
    expect(lines).toHaveLength(SCENARIOS.length);
    SCENARIOS.forEach((s, i) => expect(lines[i]).toMatch(new RegExp(`^  ${s.name} +\\S`)));
    for (const s of SCENARIOS) expect(s.summary).not.toMatch(/\n/);
  });

  it('declares only flags the parser knows, each once', () => {
    for (const s of SCENARIOS) {
      const flags = s.options.map((x) => x.flag);
      expect(new Set(flags).size, s.name).toBe(flags.length);
      for (const f of flags) expect(Object.keys(SCENARIO_FLAGS)).toContain(f);
    }
  });
});

describe('scenario scaffold', () => {
  it('assembles the report header and verdict around the parts, in the reports\' field order', () => {
    const scaling = findScenario('scaling')!;
    const session = { log: () => undefined } as unknown as BenchSession;
    const ctx = new ScenarioContext(scaling, session, parseBenchOptions(['--links', '2000']));
    const pinning = { servers: undefined, driver: undefined, support: undefined, note: 'nothing pinned' };
    const report = ctx.report({
      resolved: { rung: 3, cpu: 0.2 },
      poolSize: 10,
      pinning,
      databases: [],
      servers: [],
      saturation: { measurements: [], medians: [] },
      fixedRate: { rate: 1, rateSource: 'set with --rate', measurements: [] },
      memory: {},
      ratios: {},
      figures: { x: 1 },
      targets: [target('a', 1, '>=', 1), target('b', 2, '<', 1)],
      notes: [],
    });
    expect(Object.keys(JSON.parse(JSON.stringify(report)))).toEqual([
      'scenario', 'command', 'startedAt', 'finishedAt', 'machine', 'pinning', 'parameters', 'databases', 'servers',
      'saturation', 'fixedRate', 'memory', 'ratios', 'figures', 'targets', 'notes', 'pass',
    ]);
    expect(report.scenario).toBe('scaling');
    expect(report.command).toMatch(/^ladder bench scaling --rung 3 --cpu 0.2 --sizes 1,2,4 --links 2000 /);
    expect(report.parameters).toMatchObject({ rung: 3, cpu: 0.2, links: 2000, poolSize: 10 });
    expect(report.machine.loadAverageAtEnd).toHaveLength(3);
    expect(report.pass).toBe(false);
  });
});
