// The shipped Prometheus rules (src/launcher/monitoring/ladder-rules.yml) under Prometheus'
// own checker and rule unit tester (`promtool`, Debian package prometheus), and the
// configuration the launcher generates for Prometheus. A rules file whose alert no longer
// fires as its test says must fail here: the last case proves the tester would notice.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../src/launcher/binaries.ts';
import { limitsRules, prometheusConfig, RULES_FILE, targetsDocument } from '../../src/launcher/monitoring/prometheus-config.ts';

const RULES_DIR = path.dirname(RULES_FILE);
const TEST_FILE = path.join(RULES_DIR, 'ladder-rules.test.yml');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'ladder-rules-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function promtool(...args: string[]) {
  const r = spawnSync(requireBinary('promtool'), args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('ladder-rules.yml', () => {
  it('passes promtool check rules (syntax, no duplicate series)', () => {
    const r = promtool('check', 'rules', RULES_FILE);
    expect(r.out).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.code).toBe(0);
  });

  it('passes its unit tests (promtool test rules)', () => {
    const r = promtool('test', 'rules', TEST_FILE);
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
  });

  it('has an alert for each SLO the issue names', () => {
    const text = readFileSync(RULES_FILE, 'utf8');
    for (const alert of ['LadderNodeDown', 'LadderNodeRestarted', 'LadderRedirectLatencyHigh', 'LadderErrorRatioHigh', 'LadderReplicaLagHigh', 'LadderQueueBacklogOld', 'LadderCpuSaturated']) {
      expect(text).toContain(`- alert: ${alert}\n`);
    }
  });

  it('fails when an alert no longer behaves as its test says (the tester can fail)', () => {
    copyFileSync(TEST_FILE, path.join(tmp, 'ladder-rules.test.yml'));
    const broken = readFileSync(RULES_FILE, 'utf8').replace(/(- alert: LadderNodeDown\n\s+expr: up == 0\n\s+for: )3s/, '$130s');
    expect(broken).toContain('for: 30s');
    writeFileSync(path.join(tmp, 'ladder-rules.yml'), broken);
    const r = promtool('test', 'rules', path.join(tmp, 'ladder-rules.test.yml'));
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/FAILED[\s\S]*LadderNodeDown/);
  });
});

describe('generated Prometheus configuration', () => {
  it('labels every target with its node and role, and passes promtool check config', () => {
    const doc = JSON.parse(
      targetsDocument([
        { node: 'web2', role: 'web', port: 4002, path: '/metrics' },
        { node: 'haproxy', role: 'haproxy', port: 4100, path: '/metrics' },
      ]),
    );
    expect(doc).toEqual([
      { targets: ['127.0.0.1:4100'], labels: { node: 'haproxy', role: 'haproxy', __metrics_path__: '/metrics' } },
      { targets: ['127.0.0.1:4002'], labels: { node: 'web2', role: 'web', __metrics_path__: '/metrics' } },
    ]);
    const targetsFile = path.join(tmp, 'targets.json');
    writeFileSync(targetsFile, JSON.stringify(doc));
    const rulesFile = path.join(tmp, 'rules.yml');
    copyFileSync(RULES_FILE, rulesFile);
    const limitsFile = path.join(tmp, 'limits.yml');
    writeFileSync(limitsFile, limitsRules(0.25));
    expect(promtool('check', 'rules', limitsFile).code).toBe(0);
    const cfg = path.join(tmp, 'prometheus.yml');
    writeFileSync(cfg, prometheusConfig({ targetsFile, rulesFiles: [rulesFile, limitsFile], alertmanagerPort: 4200 }));
    const r = promtool('check', 'config', cfg);
    expect(r.out).toMatch(/SUCCESS/);
    expect(r.code).toBe(0);
  });
});
