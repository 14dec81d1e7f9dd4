// The AWS target of `ladder synth`: a CDK app holding the rung's stack, synthesized into a
// cloud assembly (DIR/manifest.json, DIR/<Stack>.template.json) that `cdk deploy --app DIR`
// deploys. Offline and deterministic: no analytics resource, no stack traces.
import { App } from 'aws-cdk-lib';
import type { DeployPlan } from '../deploy-plan.ts';
import { LadderStack } from './ladder-stack.ts';

export interface AwsOptions {
  outDir: string;
  region?: string | undefined;
  certificateArn?: string | undefined;
  /**
   * Run CDK's built-in CloudFormation template validation (cfn-lint rules) during synthesis,
   * writing DIR/validation-report.json. It costs about 6 s a stack, so synth runs it on
   * request (--validate); the cdk-nag tests always run it.
   */
  validate?: boolean | undefined;
}

export function stackName(rung: number): string {
  return `LadderRung${rung}`;
}

/** Builds the app and its stack (for synth and for the tests' assertions). */
export function buildAwsApp(plan: DeployPlan, options: AwsOptions): { app: App; stack: LadderStack } {
  const app = new App({
    outdir: options.outDir,
    analyticsReporting: false,
    stackTraces: false,
    builtinCloudFormationValidation: options.validate ?? false,
  });
  const stack = new LadderStack(app, stackName(plan.rung), {
    plan,
    certificateArn: options.certificateArn,
    ...(options.region ? { env: { region: options.region } } : {}),
  });
  return { app, stack };
}

/** Synthesizes into options.outDir; returns the template files written (relative names). */
export function synthAws(plan: DeployPlan, options: AwsOptions): string[] {
  const { app } = buildAwsApp(plan, options);
  const assembly = app.synth();
  return assembly.stacks.map((s) => s.templateFile);
}
