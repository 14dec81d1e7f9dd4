// The database on Kubernetes: a CloudNativePG `Cluster` (one primary and the topology's
// replicas, the operator keeps them in streaming replication and fails over), plus one
// Service per instance that routes only while that instance is a replica, so the app gets
// one URL per replica as DATABASE_REPLICA_URLS wants (its replica monitor polls each URL's
// replay position: a Service spreading over several replicas would mix their positions).
// The CRD is not among kubernetes-models' schemas: checkCluster holds the fields we rely on.
import { Service } from 'kubernetes-models/v1';
import { DB_INSTANCE } from '../deploy-plan.ts';

export const CLUSTER_NAME = 'ladder-db';
/** CloudNativePG's bootstrap defaults: database `app`, owner `app`, secret `<cluster>-app`. */
export const CNPG_DB = { name: 'app', secret: `${CLUSTER_NAME}-app`, rw: `${CLUSTER_NAME}-rw` } as const;

export interface CnpgCluster {
  apiVersion: 'postgresql.cnpg.io/v1';
  kind: 'Cluster';
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: {
    instances: number;
    imageName: string;
    storage: { size: string };
    postgresql: { parameters: Record<string, string> };
    bootstrap: { initdb: { database: string; owner: string } };
    enableSuperuserAccess: boolean;
  };
}

export function cnpgCluster(
  namespace: string,
  replicas: number,
  labels: Record<string, string>,
): CnpgCluster {
  return {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: { name: CLUSTER_NAME, namespace, labels },
    spec: {
      instances: 1 + replicas,
      imageName: 'ghcr.io/cloudnative-pg/postgresql:15',
      storage: { size: `${DB_INSTANCE.storageGiB}Gi` },
      postgresql: { parameters: { max_connections: '200' } },
      bootstrap: { initdb: { database: CNPG_DB.name, owner: CNPG_DB.name } },
      enableSuperuserAccess: false,
    },
  };
}

/** The checks of the CRD's schema that this manifest depends on; throws naming the field. */
export function checkCluster(c: CnpgCluster): void {
  const fail = (field: string, why: string): never => {
    throw new Error(`CloudNativePG Cluster ${c.metadata.name}: ${field} ${why}`);
  };
  if (c.apiVersion !== 'postgresql.cnpg.io/v1' || c.kind !== 'Cluster')
    fail('apiVersion/kind', 'must be postgresql.cnpg.io/v1 Cluster');
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(c.metadata.name) || c.metadata.name.length > 50)
    fail('metadata.name', 'is not a DNS label of at most 50 characters');
  if (!Number.isInteger(c.spec.instances) || c.spec.instances < 1)
    fail('spec.instances', 'must be a whole number of at least 1');
  if (!/^\d+(Mi|Gi|Ti)$/.test(c.spec.storage.size))
    fail('spec.storage.size', 'is not a quantity such as 20Gi');
  for (const [k, v] of Object.entries(c.spec.postgresql.parameters))
    if (typeof v !== 'string') fail(`spec.postgresql.parameters.${k}`, 'must be a string');
}

/** One Service per instance, with endpoints only while the instance is a replica. */
export function replicaServices(
  namespace: string,
  instances: number,
  labels: Record<string, string>,
): Service[] {
  return Array.from({ length: instances }, (_, i) => {
    const instance = `${CLUSTER_NAME}-${i + 1}`;
    return new Service({
      metadata: { name: `${instance}-replica`, namespace, labels },
      spec: {
        selector: {
          'cnpg.io/cluster': CLUSTER_NAME,
          'cnpg.io/instanceName': instance,
          'cnpg.io/instanceRole': 'replica',
        },
        ports: [{ name: 'postgres', port: 5432, targetPort: 5432 }],
      },
    });
  });
}
