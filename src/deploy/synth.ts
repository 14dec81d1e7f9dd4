// `ladder synth`: the deployable artefacts of a rung, offline. The topology is built by the
// same buildTopology `ladder up` calls, so a rung that `up` refuses (not built) is refused
// here with the same message, and a rung built without unbuilt lower features says so.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildTopology, RUNGS, type TopologyInput } from '../topology/topology.ts';
import { ConfigError } from '../topology/config-error.ts';
import { planOf, type DeployPlan } from './deploy-plan.ts';

export type Target = 'aws' | 'k8s';

/** The flags of `ladder up` that apply to a deployment (--cpu is a size hint there). */
export interface SynthOptions extends Pick<TopologyInput, 'rung' | 'web' | 'replicas' | 'cpu' | 'cache' | 'autoscale' | 'ha'> {
  target?: string | undefined;
  outDir: string;
  region?: string | undefined;
  certificateArn?: string | undefined;
  /** AWS: also run CDK's CloudFormation template validation (slower). */
  validate?: boolean | undefined;
  /** Kubernetes: the image to run (AWS takes it as the ImageUri stack parameter). */
  image?: string | undefined;
  /** Kubernetes: cnpg (default) or external. */
  database?: string | undefined;
}

export interface SynthResult {
  rung: number;
  target: Target;
  out: string;
  files: string[];
  skipped: string[];
  /** AWS: a rough monthly cost at the default sizes (docs/deploy.md). */
  monthlyUsd?: { total: number; pricesDate: string; region: string };
  ms: number;
}

const REGION = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/;

function checkTarget(raw: string | undefined): Target {
  const t = raw ?? 'aws';
  if (t !== 'aws' && t !== 'k8s')
    throw new ConfigError('target', `"${t}" is not a target`, 'use --target aws or --target k8s');
  return t;
}

/** What an earlier synth leaves in its folder: one of these marks a folder as ours to replace. */
const MARKERS = ['manifest.json', '00-namespace.json'];

/** Creates the folder, or empties one an earlier synth wrote; refuses any other non-empty folder. */
function prepareOut(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const entries = readdirSync(dir);
  if (entries.length === 0) return;
  if (!entries.some((f) => MARKERS.includes(f))) {
    throw new ConfigError(
      'out',
      `${dir} is not empty and is not the output of an earlier synth`,
      'use an empty or new folder for --out',
    );
  }
  for (const f of entries) rmSync(path.join(dir, f), { recursive: true, force: true });
}

export async function synth(options: SynthOptions): Promise<SynthResult> {
  const started = Date.now();
  const target = checkTarget(options.target);
  if (options.region !== undefined && !REGION.test(options.region)) {
    throw new ConfigError(
      'region',
      `"${options.region}" is not an AWS region`,
      'use a region code such as eu-west-1',
    );
  }
  if (
    options.certificateArn !== undefined &&
    !/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/.test(options.certificateArn)
  ) {
    throw new ConfigError(
      'certificate-arn',
      'is not an ACM certificate ARN',
      'use arn:aws:acm:REGION:ACCOUNT:certificate/ID',
    );
  }
  const database = options.database ?? 'cnpg';
  if (database !== 'cnpg' && database !== 'external')
    throw new ConfigError('database', `"${database}"`, 'use --database cnpg or --database external');
  const { outDir, region, certificateArn, image } = options;
  const { rung, web, replicas, cpu, cache, autoscale, ha } = options;
  // Rung 10's cloud half (an RDS cluster per shard and the catalog) is not written yet: refused, not faked.
  const preset = RUNGS.find((r) => r.rung === rung);
  if (preset?.built && preset.deployable && !preset.deployable.includes(target)) {
    throw new ConfigError('target', `rung ${rung} (${preset.title}) has no ${target} artefacts yet`, `use --target ${preset.deployable.join(' or ')}`);
  }
  const plan: DeployPlan = planOf(buildTopology({ rung, web, replicas, cpu, cache, ...(autoscale ? { autoscale } : {}), ...(ha ? { ha } : {}) }));
  const out = path.resolve(outDir);
  prepareOut(out);
  let files: string[];
  let monthlyUsd: SynthResult['monthlyUsd'];
  if (target === 'aws') {
    const { synthAws } = await import('./aws/synth-aws.ts');
    const { estimateCost } = await import('./aws/cost.ts');
    files = synthAws(plan, { outDir: out, region, certificateArn, validate: options.validate });
    const cost = estimateCost(plan);
    monthlyUsd = { total: cost.total, pricesDate: cost.pricesDate, region: cost.region };
  } else {
    const { k8sManifests, validateManifests } = await import('./k8s/manifests.ts');
    const manifests = k8sManifests(plan, { image: image ?? 'ladder:latest', database });
    validateManifests(manifests);
    for (const m of manifests)
      writeFileSync(path.join(out, m.file), JSON.stringify(m.object, null, 2) + '\n');
    files = manifests.map((m) => m.file);
  }
  // The Kubernetes manifests have no broker, relay or workers yet: their web servers keep
  // the in-process click buffer (plan.env sets no click log), and the output says so.
  const skipped = plan.skipped.slice();
  if (target === 'k8s' && plan.queue) skipped.push('rung 9 (message queues and workers) on Kubernetes');
  return {
    rung: plan.rung,
    target,
    out,
    files,
    skipped,
    ...(monthlyUsd ? { monthlyUsd } : {}),
    ms: Date.now() - started,
  };
}
