// cdk-nag's AwsSolutions checks on every built rung's stack: synthesis fails on any finding
// that is not acknowledged, and every acknowledgement carries its reason.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { aws_ec2 as ec2, Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { buildAwsApp } from '../../src/deploy/aws/synth-aws.ts';
import type { LadderStack } from '../../src/deploy/aws/ladder-stack.ts';
import { planOf } from '../../src/deploy/deploy-plan.ts';
import { buildTopology, RUNGS } from '../../src/topology/topology.ts';

// Rungs with aws artefacts to synthesize (the others are refused for that target).
const BUILT = RUNGS.filter((r) => r.built && (r.deployable?.includes('aws') ?? true)).map((r) => r.rung);

function checkedApp(rung: number, ha = false): { app: App; stack: LadderStack; outDir: string } {
  const outDir = mkdtempSync(path.join(tmpdir(), 'ladder-nag-'));
  // With CDK's own template validation too: its findings fail synthesis only as errors, but land in the report.
  const built = buildAwsApp(planOf(buildTopology({ rung, ...(ha ? { ha } : {}) })), { outDir, validate: true });
  Validations.of(built.app).addPlugins(new AwsSolutionsChecks(built.app));
  return { ...built, outDir };
}

/** A plugin's unacknowledged findings, from the cloud assembly's validation report. */
function findings(outDir: string, plugin: string): string[] {
  const report = JSON.parse(readFileSync(path.join(outDir, 'validation-report.json'), 'utf8'));
  // A plugin with nothing to report may be left out of it.
  return report.pluginReports
    .filter((p: any) => p.pluginName === plugin)
    .flatMap((p: any) => p.violations.map((v: any) => `${v.ruleName}:${v.severity}`));
}

function acknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
  return root.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      // Recorded as { "<plugin>::<rule>": reason } per construct.
      .flatMap((m) => Object.entries(m.data as Record<string, string>))
      .map(([id, reason]) => ({ path: c.node.path, id, reason })),
  );
}

describe('cdk-nag AwsSolutions', () => {
  it.each(BUILT)('rung %i synthesizes with no unacknowledged finding', { timeout: 60_000 }, (rung) => {
    const { app, stack, outDir } = checkedApp(rung);
    expect(() => app.synth()).not.toThrow();
    // CloudFormation's own rules only warn; none may be left unacknowledged either.
    expect(findings(outDir, 'CloudFormation Validate')).toEqual([]);
    const acks = acknowledgements(stack).filter((a) => a.id.startsWith('AwsSolutions::'));
    expect(acks.length).toBeGreaterThan(0);
    for (const a of acks) expect(a.reason.length, `${a.path} ${a.id}`).toBeGreaterThan(30);
  });

  it.each([4, 7])('rung %i --ha synthesizes with no unacknowledged finding', { timeout: 60_000 }, (rung) => {
    const { app, outDir } = checkedApp(rung, true);
    expect(() => app.synth()).not.toThrow();
    expect(findings(outDir, 'CloudFormation Validate')).toEqual([]);
  });

  it('the checks are live: an unacknowledged finding fails synthesis', { timeout: 60_000 }, () => {
    const { app, stack, outDir } = checkedApp(3);
    const open = new ec2.SecurityGroup(stack, 'Open', { vpc: stack.network.vpc });
    open.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(5432));
    expect(() => app.synth()).toThrow();
    expect(findings(outDir, 'AwsSolutions')).toEqual(['AwsSolutions-EC23:error']);
  });
});
