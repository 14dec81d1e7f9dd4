// `ladder synth`, the command: every built rung synthesizes offline into files whose
// resources match the rung, all of them within the time bound; a rung that is not built is
// refused exactly as `ladder up` refuses it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RUNGS } from '../../src/topology/topology.ts';
import { LADDER_BIN } from '../support/process.ts';

// Rungs with aws artefacts to synthesize (the others are refused for that target).
const BUILT = RUNGS.filter((r) => r.built && (r.deployable?.includes('aws') ?? true)).map((r) => r.rung);
const BUILT_K8S = RUNGS.filter((r) => r.built && (r.deployable?.includes('k8s') ?? true)).map((r) => r.rung);
const UNBUILT = RUNGS.filter((r) => !r.built).map((r) => r.rung);
/** The bound for synthesizing every built rung to CloudFormation. */
const ALL_RUNGS_MS = 60_000;
const root = mkdtempSync(path.join(tmpdir(), 'ladder-synth-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function ladder(...args: string[]) {
  // No AWS settings reach the command: synthesis must not need any.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_') && !k.startsWith('CDK_')),
  );
  const r = spawnSync(process.execPath, [LADDER_BIN, ...args], {
    encoding: 'utf8',
    env: { ...env, DATABASE_URL: '' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

type Resource = { Type: string; Properties?: Record<string, any> };
function resources(dir: string, rung: number): Resource[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.template.json'));
  expect(files).toEqual([`LadderRung${rung}.template.json`]);
  return Object.values(
    JSON.parse(readFileSync(path.join(dir, files[0]!), 'utf8')).Resources as Record<string, Resource>,
  );
}
const ofType = (rs: Resource[], type: string) => rs.filter((r) => r.Type === type);

describe('ladder synth', () => {
  it(
    'every built rung: CloudFormation matching the rung, offline, all within 60 s',
    { timeout: 180_000 },
    () => {
      const started = Date.now();
      const outs = new Map<number, string>();
      for (const rung of BUILT) {
        const out = path.join(root, `aws-${rung}`);
        const r = ladder('synth', '--rung', String(rung), '--out', out, '--json');
        expect(r.code, r.err).toBe(0);
        const result = JSON.parse(r.out);
        expect(result).toMatchObject({
          rung,
          target: 'aws',
          out,
          files: [`LadderRung${rung}.template.json`],
        });
        outs.set(rung, out);
      }
      const elapsed = Date.now() - started;
      console.log(`ladder synth of rungs ${BUILT.join(', ')} (aws): ${elapsed} ms`);
      expect(elapsed).toBeLessThan(ALL_RUNGS_MS);

      for (const [rung, out] of outs) {
        expect(existsSync(path.join(out, 'manifest.json'))).toBe(true); // a cloud assembly: cdk deploy --app DIR
        const rs = resources(out, rung);
        const dbs = ofType(rs, 'AWS::RDS::DBInstance');
        for (const db of dbs) {
          expect(db.Properties!.PubliclyAccessible).not.toBe(true);
          expect(db.Properties!.StorageEncrypted).toBe(true);
        }
        for (const c of ofType(rs, 'AWS::ElastiCache::ReplicationGroup'))
          expect(c.Properties!.AtRestEncryptionEnabled).toBe(true);
        const replicas = dbs.filter((d) => d.Properties!.SourceDBInstanceIdentifier !== undefined);
        const lb = ofType(rs, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
        const service = [
          ...ofType(rs, 'AWS::ECS::Service'),
          ...ofType(rs, 'AWS::AutoScaling::AutoScalingGroup'),
        ];
        const caches = ofType(rs, 'AWS::ElastiCache::ReplicationGroup');
        // From rung 9 the workers are a service of their own beside the web tier's; rung 10
        // runs without them and without the cache tier (as `ladder up` does), and its two
        // shard clusters have two replicas each beside the catalog.
        expect(service.length, `rung ${rung} web tier`).toBe(rung === 9 ? 2 : 1);
        expect(lb.length, `rung ${rung} balancer`).toBe(rung >= 3 ? 1 : 0);
        expect(replicas.length, `rung ${rung} replicas`).toBe(rung >= 10 ? 4 : rung >= 4 ? 2 : 0);
        expect(dbs.length - replicas.length, `rung ${rung} primaries`).toBe(rung >= 10 ? 3 : 1);
        expect(caches.length, `rung ${rung} caches`).toBe(rung >= 10 ? 1 : rung >= 9 ? 3 : rung >= 7 ? 2 : rung >= 5 ? 1 : 0);
      }
    },
  );

  it('rung 10 has no Kubernetes manifests yet: refused for that target, and nothing is written', () => {
    const out = path.join(root, 'k8s-10');
    const r = ladder('synth', '--rung', '10', '--target', 'k8s', '--out', out);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/rung 10 .* has no k8s artefacts yet/);
    expect(existsSync(out)).toBe(false);
  });

  it('the same input synthesizes the same template', { timeout: 60_000 }, () => {
    const a = path.join(root, 'same-a');
    const b = path.join(root, 'same-b');
    expect(ladder('synth', '--rung', '4', '--out', a).code).toBe(0);
    expect(ladder('synth', '--rung', '4', '--out', b).code).toBe(0);
    const read = (d: string) => readFileSync(path.join(d, 'LadderRung4.template.json'), 'utf8');
    expect(read(a)).toBe(read(b));
    // --validate adds CDK's CloudFormation validation and its report, not a different template.
    const c = path.join(root, 'same-validated');
    expect(ladder('synth', '--rung', '4', '--out', c, '--validate').code).toBe(0);
    expect(existsSync(path.join(c, 'validation-report.json'))).toBe(true);
    expect(existsSync(path.join(a, 'validation-report.json'))).toBe(false);
    expect(read(c)).toBe(read(a));
  });

  it(
    'every built rung: Kubernetes manifests with the probes, the HPA and the PDB',
    { timeout: 120_000 },
    () => {
      for (const rung of BUILT_K8S) {
        const out = path.join(root, `k8s-${rung}`);
        const r = ladder('synth', '--rung', String(rung), '--target', 'k8s', '--out', out);
        expect(r.code, r.err).toBe(0);
        const objects = readdirSync(out).map((f) => JSON.parse(readFileSync(path.join(out, f), 'utf8')));
        const kinds = objects.map((o) => o.kind);
        expect(kinds).toEqual(
          expect.arrayContaining([
            'Namespace',
            'Deployment',
            'HorizontalPodAutoscaler',
            'PodDisruptionBudget',
            'Service',
            'Ingress',
            'ConfigMap',
            'Cluster',
          ]),
        );
        const web = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'web').spec.template
          .spec.containers[0];
        expect([web.readinessProbe.httpGet.path, web.livenessProbe.httpGet.path]).toEqual([
          '/readyz',
          '/healthz',
        ]);
        expect(web.lifecycle.preStop).toBeDefined();
      }
    },
  );

  it('a rung that is not built is refused exactly as `ladder up` refuses it, and nothing is written', () => {
    for (const rung of UNBUILT) {
      const out = path.join(root, `unbuilt-${rung}`);
      const s = ladder('synth', '--rung', String(rung), '--out', out);
      const u = ladder('up', '--rung', String(rung));
      expect(s.code).toBe(1);
      expect(s.err).toMatch(/is not built yet/);
      expect(s.err).toBe(u.err);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('rung 7 runs with every rung below it (rung 6 is built); a rung not built is refused; bad flags are named', () => {
    const r = ladder('synth', '--rung', '7', '--target', 'k8s', '--out', path.join(root, 'k8s-7-note'));
    expect(r.code).toBe(0);
    expect(r.err).not.toMatch(/not built yet/);
    expect(ladder('synth', '--rung', '8', '--target', 'k8s', '--out', path.join(root, 'k8s-8')).err).toMatch(/rung 8 .* is not built yet/);
    expect(ladder('synth', '--rung', '3', '--target', 'gcp', '--out', path.join(root, 'x')).err).toMatch(
      /target/,
    );
    expect(ladder('synth', '--target', 'aws').err).toMatch(/rung/);
  });
});
