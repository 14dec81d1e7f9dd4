// A rough monthly cost of a plan on AWS at the default sizes, from the dated price file
// (prices.json, copied next to the compiled module by the build). Idle figures: no data
// transfer, no NAT traffic, one LCU on the balancer, the web tier at its starting count,
// no CloudFront requests.
import { readFileSync } from 'node:fs';
import { CACHE_NODE, DB_INSTANCE, type DeployPlan } from '../deploy-plan.ts';

export interface Prices {
  date: string;
  region: string;
  hoursPerMonth: number;
  fargateVcpuHour: number;
  fargateGbHour: number;
  rdsInstanceHour: Record<string, number>;
  rdsGp3GbMonth: number;
  elasticacheNodeHour: Record<string, number>;
  albHour: number;
  albLcuHour: number;
  natGatewayHour: number;
  publicIpv4Hour: number;
  alarmMonth: number;
  dashboardMonth: number;
  secretMonth: number;
  /** RDS Proxy: per vCPU-hour of the instance behind it, billed for at least proxyMinVcpus. */
  rdsProxyVcpuHour: number;
  rdsProxyMinVcpus: number;
}

export function loadPrices(): Prices {
  return JSON.parse(readFileSync(new URL('./prices.json', import.meta.url), 'utf8')) as Prices;
}

export interface CostEstimate {
  pricesDate: string;
  region: string;
  /** USD per month, by line, rounded to cents. */
  lines: Record<string, number>;
  total: number;
}

const cents = (n: number): number => Math.round(n * 100) / 100;

export function estimateCost(plan: DeployPlan, p: Prices = loadPrices()): CostEstimate {
  const h = p.hoursPerMonth;
  const vcpu = plan.web.size.cpuUnits / 1024;
  const gb = plan.web.size.memoryMiB / 1024;
  // --ha: the Multi-AZ primary is billed as two instances (its standby), each ElastiCache
  // group runs two nodes, and RDS Proxy is billed on the primary's vCPUs (its minimum here).
  // Rung 9's broker is one more ElastiCache group.
  // Rung 10: the catalog alone, then each shard's primary and replicas.
  const instances = plan.shards > 0 ? 1 + plan.shards * (1 + plan.replicas) : (plan.ha ? 2 : 1) + plan.replicas;
  const caches = ((plan.cache ? 1 : 0) + (plan.sessions ? 1 : 0) + (plan.queue ? 1 : 0)) * (plan.ha ? 2 : 1);
  // Public addresses: each task's own below rung 3; the ALB's two (one per AZ) and the NAT's above.
  const publicIps = plan.balancer ? 3 : plan.web.count;
  // Alarms: CPU of web and database, and with a balancer 5xx rate and p99; one lag alarm per replica.
  const alarms = 2 + (plan.balancer ? 2 : 0) + plan.replicas;
  const lines: Record<string, number> = {
    web: plan.web.count * (vcpu * p.fargateVcpuHour + gb * p.fargateGbHour) * h,
    database:
      instances * (p.rdsInstanceHour[DB_INSTANCE.name]! * h + DB_INSTANCE.storageGiB * p.rdsGp3GbMonth),
    redis: caches * p.elasticacheNodeHour[CACHE_NODE]! * h,
    balancer: plan.balancer ? (p.albHour + p.albLcuHour) * h : 0,
    nat: plan.balancer ? p.natGatewayHour * h : 0,
    publicIpv4: publicIps * p.publicIpv4Hour * h,
    monitoring: alarms * p.alarmMonth + p.dashboardMonth,
    secrets: (2 + caches) * p.secretMonth,
    // Rung 9: the workers' service (the broker's node is counted with the other Redis nodes).
    workers: plan.queue ? plan.queue.workers * ((plan.queue.size.cpuUnits / 1024) * p.fargateVcpuHour + (plan.queue.size.memoryMiB / 1024) * p.fargateGbHour) * h : 0,
    // CloudFront (rung 6) is paid per request and per byte out, with no monthly fee: nothing idle.
    cdn: 0,
    ...(plan.ha ? { proxy: p.rdsProxyMinVcpus * p.rdsProxyVcpuHour * h } : {}),
  };
  for (const k of Object.keys(lines)) lines[k] = cents(lines[k]!);
  return {
    pricesDate: p.date,
    region: p.region,
    lines,
    total: cents(Object.values(lines).reduce((a, b) => a + b, 0)),
  };
}
