// The Kubernetes target: typed manifests for every built rung, validated offline against the
// Kubernetes OpenAPI schemas (kubernetes-models), with the probes, drain, HPA and PDB.
import { Deployment } from 'kubernetes-models/apps/v1';
import { describe, expect, it } from 'vitest';
import { cnpgCluster, checkCluster } from '../../src/deploy/k8s/cnpg-cluster.ts';
import { k8sManifests, validateManifests, type Manifest } from '../../src/deploy/k8s/manifests.ts';
import { planOf } from '../../src/deploy/deploy-plan.ts';
import { buildTopology, RUNGS, type TopologyInput } from '../../src/topology/topology.ts';

// Rungs with k8s artefacts to synthesize (the others are refused for that target).
const BUILT = RUNGS.filter((r) => r.built && (r.deployable?.includes('k8s') ?? true)).map((r) => r.rung);

function manifests(input: TopologyInput, database: 'cnpg' | 'external' = 'cnpg'): Manifest[] {
  return k8sManifests(planOf(buildTopology(input)), { image: 'registry.example/ladder:1', database });
}
const json = (m: Manifest[]): any[] => m.map((x) => JSON.parse(JSON.stringify(x.object)));
const byKind = (m: Manifest[], kind: string, name?: string): any[] =>
  json(m).filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
const webContainer = (m: Manifest[]): any =>
  byKind(m, 'Deployment', 'web')[0].spec.template.spec.containers[0];

describe('Kubernetes manifests of the built rungs', () => {
  it('the HPA follows --autoscale MIN:MAX, --target-cpu and --scale-in-window, as the local autoscaler does', () => {
    const m = manifests({ rung: 3, autoscale: { range: '2:5', targetCpu: 0.7, scaleInWindowSeconds: 90 } });
    expect(() => validateManifests(m)).not.toThrow();
    const hpa = byKind(m, 'HorizontalPodAutoscaler', 'web')[0];
    expect([hpa.spec.minReplicas, hpa.spec.maxReplicas]).toEqual([2, 5]);
    expect(hpa.spec.metrics[0].resource.target.averageUtilization).toBe(70);
    expect(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds).toBe(90);
  });

  it.each(BUILT)(
    'rung %i: validates against the schemas, with probes, drain, HPA, PDB, Service and Ingress',
    (rung) => {
      const m = manifests({ rung });
      expect(() => validateManifests(m)).not.toThrow();
      const plan = planOf(buildTopology({ rung }));
      const dep = byKind(m, 'Deployment', 'web')[0];
      expect(dep.spec.replicas).toBe(plan.web.count);
      const c = webContainer(m);
      expect(c.readinessProbe.httpGet.path).toBe('/readyz');
      expect(c.livenessProbe.httpGet.path).toBe('/healthz');
      expect(c.lifecycle.preStop.exec.command).toEqual(['sleep', String(plan.drain.preStopSeconds)]);
      expect(c.resources.requests.cpu).toMatch(/^\d+m$/);
      expect(c.resources.limits.memory).toMatch(/Mi$/);
      // SIGTERM comes after preStop; the app then drains and finishes in-flight requests before the kill.
      const grace = dep.spec.template.spec.terminationGracePeriodSeconds;
      expect(grace * 1000).toBeGreaterThan(
        plan.drain.preStopSeconds * 1000 + plan.drain.drainDelayMs + plan.drain.shutdownTimeoutMs,
      );
      expect(dep.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
      const hpa = byKind(m, 'HorizontalPodAutoscaler', 'web')[0];
      expect(hpa.apiVersion).toBe('autoscaling/v2');
      expect([hpa.spec.minReplicas, hpa.spec.maxReplicas]).toEqual([plan.web.min, plan.web.max]);
      expect(hpa.spec.metrics[0].resource.target.averageUtilization).toBe(60);
      expect(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds).toBe(300);
      expect(byKind(m, 'PodDisruptionBudget', 'web')).toHaveLength(1);
      expect(byKind(m, 'Service', 'web')).toHaveLength(1);
      expect(byKind(m, 'Ingress', 'web')[0].spec.rules[0].http.paths[0].backend.service.name).toBe('web');
      expect(c.envFrom[0].configMapRef.name).toBe('web-config');
      expect(byKind(m, 'ConfigMap', 'web-config')).toHaveLength(1);
      // Secrets are referenced, never written.
      expect(byKind(m, 'Secret')).toEqual([]);
      expect(c.env.find((e: any) => e.name === 'LADDER_SECRET').valueFrom.secretKeyRef.name).toBe(
        'links-secret',
      );
      expect(c.env.find((e: any) => e.name === 'DB_PASSWORD').valueFrom.secretKeyRef).toEqual({
        name: 'ladder-db-app',
        key: 'password',
      });
      const cluster = byKind(m, 'Cluster', 'ladder-db')[0];
      expect(cluster.apiVersion).toBe('postgresql.cnpg.io/v1');
      expect(cluster.spec.instances).toBe(1 + plan.replicas);
      // File names order kubectl apply: namespace first.
      expect(m[0]!.file).toBe('00-namespace.json');
      expect(m.map((x) => x.file)).toEqual([...m.map((x) => x.file)].sort());
    },
  );

  it('rung 4: one Service per instance that routes only to a replica, listed for the app', () => {
    const m = manifests({ rung: 4 });
    const svcs = json(m).filter((o) => o.kind === 'Service' && o.metadata.name.endsWith('-replica'));
    expect(svcs).toHaveLength(3);
    expect(svcs[0].spec.selector).toMatchObject({
      'cnpg.io/instanceName': 'ladder-db-1',
      'cnpg.io/instanceRole': 'replica',
    });
    const config = byKind(m, 'ConfigMap', 'web-config')[0].data;
    expect(config.DB_REPLICA_HOSTS).toBe(
      'ladder-db-1-replica:5432,ladder-db-2-replica:5432,ladder-db-3-replica:5432',
    );
    expect(
      byKind(manifests({ rung: 3 }), 'ConfigMap', 'web-config')[0].data.DB_REPLICA_HOSTS,
    ).toBeUndefined();
  });

  it('rung 5 and 7: Redis for the cache tier, and for sessions at rung 7, reachable from the web tier only', () => {
    const five = manifests({ rung: 5 });
    expect(byKind(five, 'Deployment', 'redis-cache')).toHaveLength(1);
    expect(byKind(five, 'Deployment', 'redis-sessions')).toHaveLength(0);
    const seven = manifests({ rung: 7 });
    const sessions = byKind(seven, 'Deployment', 'redis-sessions')[0].spec.template.spec.containers[0];
    expect(sessions.args).toEqual(expect.arrayContaining(['noeviction']));
    const config = byKind(seven, 'ConfigMap', 'web-config')[0].data;
    expect(config).toMatchObject({ CACHE_REDIS_HOST: 'redis-cache', SESSION_REDIS_HOST: 'redis-sessions' });
    expect(
      byKind(seven, 'NetworkPolicy', 'redis-sessions')[0].spec.ingress[0].from[0].podSelector.matchLabels,
    ).toEqual({ 'app.kubernetes.io/name': 'web' });
  });

  it('--database external: no Cluster; the connection comes from the links-database Secret, with TLS verification', () => {
    const m = manifests({ rung: 4 }, 'external');
    expect(byKind(m, 'Cluster')).toEqual([]);
    const c = webContainer(m);
    expect(c.env.find((e: any) => e.name === 'DB_HOST').valueFrom.secretKeyRef).toEqual({
      name: 'links-database',
      key: 'host',
    });
    expect(c.env.find((e: any) => e.name === 'DB_REPLICA_HOSTS')).toBeDefined();
    expect(byKind(m, 'ConfigMap', 'web-config')[0].data.DB_SSL_ROOT_CERT).toMatch(/rds/);
    expect(() => validateManifests(m)).not.toThrow();
  });

  it('validation is live: a manifest that breaks the schema is refused, naming its file', () => {
    const bad = new Deployment({
      metadata: { name: 'web' },
      spec: {
        selector: {},
        template: {
          spec: { containers: [{ name: 'web', ports: [{ containerPort: 'http' as unknown as number }] }] },
        },
      },
    });
    expect(() => validateManifests([{ file: '40-web-deployment.json', object: bad }])).toThrow(
      /40-web-deployment\.json/,
    );
    const cluster = cnpgCluster('ladder', 1, {});
    expect(() => checkCluster({ ...cluster, spec: { ...cluster.spec, instances: 0 } })).toThrow(
      /spec.instances/,
    );
  });
});
