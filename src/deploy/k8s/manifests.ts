// The Kubernetes target of `ladder synth`: typed manifests (kubernetes-models) for the plan,
// each validated against the Kubernetes OpenAPI schemas before it is written. The web tier
// is a Deployment (readiness /readyz, liveness /healthz, a preStop drain, resources) with an
// HPA, a PDB, a Service and an Ingress; Postgres is a CloudNativePG Cluster, or an external
// database (RDS) named by a Secret; Redis runs in-cluster for the cache tier and sessions.
// No secret value is ever written: manifests name Secrets that exist in the cluster.
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Service, type IEnvVar } from 'kubernetes-models/v1';
import { MAX_REPLICAS } from '../../topology/topology.ts';
import { APP_PORT, type DeployPlan } from '../deploy-plan.ts';
import { checkCluster, cnpgCluster, CNPG_DB, replicaServices, type CnpgCluster } from './cnpg-cluster.ts';

export const NAMESPACE = 'ladder';
/** The Secret the user creates with LADDER_SECRET and REDIS_PASSWORD (docs/deploy.md). */
export const APP_SECRET = 'links-secret';
/** With --database external: the Secret holding host, port, dbname, username, password (and replica_hosts). */
export const EXTERNAL_DB_SECRET = 'links-database';

export interface K8sOptions {
  image: string;
  /** cnpg: a CloudNativePG Cluster in the namespace; external: an existing database (RDS). */
  database: 'cnpg' | 'external';
}

/** A validated model or the CRD object; both serialize to the manifest. */
export interface Manifest {
  file: string;
  object: { toJSON?: () => unknown; kind: string };
}

interface Validatable {
  validate(): void;
}

function redis(
  name: 'cache' | 'sessions',
  labels: Record<string, string>,
): { deployment: Deployment; service: Service; policy: NetworkPolicy } {
  const app = `redis-${name}`;
  const selector = { 'app.kubernetes.io/name': app };
  // The cache evicts by LRU; sessions must never be evicted (as locally, launcher/plan.ts).
  const policy = name === 'cache' ? 'allkeys-lru' : 'noeviction';
  const deployment = new Deployment({
    metadata: { name: app, namespace: NAMESPACE, labels: { ...labels, ...selector } },
    spec: {
      replicas: 1,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: { ...labels, ...selector } },
        spec: {
          securityContext: { runAsNonRoot: true, runAsUser: 999, fsGroup: 999 },
          containers: [
            {
              name: 'redis',
              image: 'redis:7.2-alpine',
              args: [
                '--requirepass',
                '$(REDIS_PASSWORD)',
                '--maxmemory',
                '200mb',
                '--maxmemory-policy',
                policy,
                '--save',
                '',
              ],
              env: [
                {
                  name: 'REDIS_PASSWORD',
                  valueFrom: { secretKeyRef: { name: APP_SECRET, key: 'REDIS_PASSWORD' } },
                },
              ],
              ports: [{ name: 'redis', containerPort: 6379 }],
              readinessProbe: { tcpSocket: { port: 'redis' }, periodSeconds: 5 },
              livenessProbe: { tcpSocket: { port: 'redis' }, periodSeconds: 10 },
              resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '256Mi' } },
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
            },
          ],
        },
      },
    },
  });
  const service = new Service({
    metadata: { name: app, namespace: NAMESPACE, labels },
    spec: { selector, ports: [{ name: 'redis', port: 6379, targetPort: 'redis' }] },
  });
  // Reachable from the web tier only.
  const networkPolicy = new NetworkPolicy({
    metadata: { name: app, namespace: NAMESPACE, labels },
    spec: {
      podSelector: { matchLabels: selector },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'web' } } }],
          ports: [{ port: 6379 }],
        },
      ],
    },
  });
  return { deployment, service, policy: networkPolicy };
}

/** The manifests of a plan, in the order `kubectl apply -f DIR` applies them (by file name). */
export function k8sManifests(plan: DeployPlan, options: K8sOptions): Manifest[] {
  const labels = { 'app.kubernetes.io/part-of': 'ladder', 'ladder.dev/rung': String(plan.rung) };
  const webSelector = { 'app.kubernetes.io/name': 'web' };
  const out: Manifest[] = [];
  const add = (file: string, object: Manifest['object']): void => void out.push({ file, object });

  add('00-namespace.json', new Namespace({ metadata: { name: NAMESPACE, labels } }));

  const config: Record<string, string> = { ...plan.env };
  // Behind the ingress controller: believe the one hop in front.
  if (plan.balancer) config.TRUST_PROXY = '1';
  const env: IEnvVar[] = [];
  const fromSecret = (name: string, secret: string, key: string, optional = false): IEnvVar => ({
    name,
    valueFrom: { secretKeyRef: { name: secret, key, ...(optional ? { optional: true } : {}) } },
  });
  env.push(fromSecret('LADDER_SECRET', APP_SECRET, 'LADDER_SECRET'));

  if (options.database === 'cnpg') {
    const cluster: CnpgCluster = cnpgCluster(NAMESPACE, plan.replicas, labels);
    checkCluster(cluster);
    add('10-postgres-cluster.json', cluster);
    Object.assign(config, { DB_HOST: CNPG_DB.rw, DB_PORT: '5432', DB_NAME: CNPG_DB.name });
    env.push(
      fromSecret('DB_USER', CNPG_DB.secret, 'username'),
      fromSecret('DB_PASSWORD', CNPG_DB.secret, 'password'),
    );
    if (plan.replicas > 0) {
      // Any instance may be a replica after a failover: one Service each, at most as many as the app reads.
      const services = replicaServices(NAMESPACE, Math.min(1 + plan.replicas, MAX_REPLICAS), labels);
      services.forEach((s, i) => add(`11-postgres-replica-${i + 1}.json`, s));
      config.DB_REPLICA_HOSTS = services.map((s) => `${s.metadata!.name!}:5432`).join(',');
    }
  } else {
    for (const [name, key] of [
      ['DB_HOST', 'host'],
      ['DB_PORT', 'port'],
      ['DB_NAME', 'dbname'],
      ['DB_USER', 'username'],
      ['DB_PASSWORD', 'password'],
    ] as const) {
      env.push(fromSecret(name, EXTERNAL_DB_SECRET, key));
    }
    if (plan.replicas > 0) env.push(fromSecret('DB_REPLICA_HOSTS', EXTERNAL_DB_SECRET, 'replica_hosts'));
    // RDS: verify its certificate with the bundle the image carries.
    config.DB_SSL_ROOT_CERT = '/etc/ssl/certs/rds-global-bundle.pem';
  }

  const tiers: ['cache' | 'sessions', string][] = [];
  if (plan.cache) tiers.push(['cache', 'CACHE_REDIS']);
  if (plan.sessions) tiers.push(['sessions', 'SESSION_REDIS']);
  for (const [name, prefix] of tiers) {
    const r = redis(name, labels);
    add(`20-redis-${name}-1-deployment.json`, r.deployment);
    add(`20-redis-${name}-2-service.json`, r.service);
    add(`20-redis-${name}-3-policy.json`, r.policy);
    Object.assign(config, { [`${prefix}_HOST`]: `redis-${name}`, [`${prefix}_PORT`]: '6379' });
    env.push(fromSecret(`${prefix}_AUTH`, APP_SECRET, 'REDIS_PASSWORD'));
  }

  add(
    '30-web-config.json',
    new ConfigMap({ metadata: { name: 'web-config', namespace: NAMESPACE, labels }, data: config }),
  );

  const cpuMilli = Math.round((plan.web.size.cpuUnits / 1024) * 1000);
  add(
    '40-web-deployment.json',
    new Deployment({
      metadata: { name: 'web', namespace: NAMESPACE, labels: { ...labels, ...webSelector } },
      spec: {
        replicas: plan.web.count,
        selector: { matchLabels: webSelector },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          metadata: { labels: { ...labels, ...webSelector } },
          spec: {
            terminationGracePeriodSeconds: plan.drain.stopGraceSeconds,
            securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000 },
            containers: [
              {
                name: 'web',
                image: options.image,
                ports: [{ name: 'http', containerPort: APP_PORT }],
                envFrom: [{ configMapRef: { name: 'web-config' } }],
                env,
                readinessProbe: {
                  httpGet: { path: '/readyz', port: 'http' },
                  periodSeconds: 5,
                  failureThreshold: 2,
                  timeoutSeconds: 3,
                },
                livenessProbe: {
                  httpGet: { path: '/healthz', port: 'http' },
                  periodSeconds: 10,
                  failureThreshold: 3,
                  timeoutSeconds: 3,
                },
                startupProbe: {
                  httpGet: { path: '/healthz', port: 'http' },
                  periodSeconds: 2,
                  failureThreshold: 60,
                },
                // The endpoints controller and the pod's SIGTERM race: wait first, so the Service
                // stops routing here; the app then drains for DRAIN_DELAY_MS and finishes in-flight requests.
                lifecycle: { preStop: { exec: { command: ['sleep', String(plan.drain.preStopSeconds)] } } },
                resources: {
                  requests: { cpu: `${cpuMilli}m`, memory: `${plan.web.size.memoryMiB}Mi` },
                  limits: { memory: `${plan.web.size.memoryMiB}Mi` },
                },
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
              },
            ],
          },
        },
      },
    }),
  );
  add(
    '41-web-service.json',
    new Service({
      metadata: { name: 'web', namespace: NAMESPACE, labels },
      spec: { selector: webSelector, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
    }),
  );
  add(
    '42-web-ingress.json',
    new Ingress({
      metadata: { name: 'web', namespace: NAMESPACE, labels },
      spec: {
        rules: [
          {
            http: {
              paths: [
                {
                  path: '/',
                  pathType: 'Prefix',
                  backend: { service: { name: 'web', port: { name: 'http' } } },
                },
              ],
            },
          },
        ],
      },
    }),
  );
  add(
    '43-web-hpa.json',
    new HorizontalPodAutoscaler({
      metadata: { name: 'web', namespace: NAMESPACE, labels },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' },
        minReplicas: plan.web.min,
        maxReplicas: plan.web.max,
        metrics: [
          {
            type: 'Resource',
            resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: Math.round(plan.web.targetCpu * 100) } },
          },
        ],
        // The local autoscaler's scale-in window (the HPA's own default is the same 300 s).
        behavior: { scaleDown: { stabilizationWindowSeconds: plan.web.scaleInWindowSeconds } },
      },
    }),
  );
  add(
    '44-web-pdb.json',
    new PodDisruptionBudget({
      metadata: { name: 'web', namespace: NAMESPACE, labels },
      // One server at a time may be evicted; with one server (rung 1) that is a short outage, as locally.
      spec: { maxUnavailable: 1, selector: { matchLabels: webSelector } },
    }),
  );
  return out;
}

/** Validates every typed manifest against its Kubernetes schema; throws naming the file. */
export function validateManifests(manifests: readonly Manifest[]): void {
  for (const m of manifests) {
    const v = m.object as Partial<Validatable>;
    if (typeof v.validate !== 'function') continue; // the CRD: checked by checkCluster
    try {
      v.validate();
    } catch (err) {
      throw new Error(
        `${m.file} (${m.object.kind}) does not match the Kubernetes schema: ${(err as Error).message}`,
      );
    }
  }
}
