// One CloudFormation stack per rung: the constructs the plan asks for, wired the way
// `ladder up` wires the local components. Environment-agnostic (no account, no lookups), so
// it synthesizes offline; the image is a stack parameter, given at deploy time.
import { CfnOutput, CfnParameter, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { DeployPlan } from '../deploy-plan.ts';
import { Cdn } from './cdn.ts';
import { Database } from './database.ts';
import { Monitoring } from './monitoring.ts';
import { Network } from './network.ts';
import { HighAvailability } from './high-availability.ts';
import { Redis } from './redis.ts';
import { WebAutoscaling } from './web-autoscaling.ts';
import { WebService } from './web-service.ts';
import { Workers } from './workers.ts';

export interface LadderStackProps extends StackProps {
  plan: DeployPlan;
  certificateArn?: string | undefined;
}

export class LadderStack extends Stack {
  readonly network: Network;
  readonly database: Database;
  /** Rung 10: the shard clusters (shard1, shard2, ...). */
  readonly shards: Database[];
  readonly cache: Redis | undefined;
  readonly sessions: Redis | undefined;
  /** --ha: Multi-AZ, RDS Proxy, ElastiCache failover. */
  readonly ha: HighAvailability | undefined;
  readonly web: WebService;
  readonly monitoring: Monitoring;
  readonly cdn: Cdn | undefined;
  readonly broker: Redis | undefined;
  readonly workers: Workers | undefined;

  constructor(scope: Construct, id: string, props: LadderStackProps) {
    const { plan } = props;
    const without = plan.skipped.length > 0 ? `, without ${plan.skipped.join(', ')} (not built yet)` : '';
    super(scope, id, { ...props, description: `Ladder rung ${plan.rung}: Links${without}` });
    const image = new CfnParameter(this, 'ImageUri', {
      type: 'String',
      description:
        'The Links image (built from the Dockerfile), e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/ladder:1',
      minLength: 1,
    });
    this.network = new Network(this, 'Network', { privateWeb: plan.balancer });
    const data = this.network.dataSubnets;
    // Rung 10: this is the catalog (users, the shard map), without replicas; each shard
    // cluster is an RDS primary of its own with the replicas.
    this.database = new Database(this, 'Database', {
      vpc: this.network.vpc,
      subnets: data,
      replicas: plan.shards > 0 ? 0 : plan.replicas,
    });
    this.shards = Array.from(
      { length: plan.shards },
      (_, i) => new Database(this, `Shard${i + 1}`, { vpc: this.network.vpc, subnets: data, replicas: plan.replicas }),
    );
    this.cache = plan.cache
      ? new Redis(this, 'Cache', {
          vpc: this.network.vpc,
          subnets: data,
          description: 'Ladder cache tier',
          evict: true,
        })
      : undefined;
    this.sessions = plan.sessions
      ? new Redis(this, 'Sessions', {
          vpc: this.network.vpc,
          subnets: data,
          description: 'Ladder sessions',
          evict: false,
        })
      : undefined;
    // Rung 9: the broker, BullMQ on a Redis of its own that never evicts (a lost key is a lost message).
    this.broker = plan.queue
      ? new Redis(this, 'Broker', {
          vpc: this.network.vpc,
          subnets: data,
          description: 'Ladder message broker (BullMQ)',
          evict: false,
        })
      : undefined;
    this.ha = plan.ha
      ? new HighAvailability(this, 'HighAvailability', {
          vpc: this.network.vpc,
          subnets: data,
          database: this.database,
          redis: [this.cache, this.sessions, this.broker].filter((r): r is Redis => r !== undefined),
        })
      : undefined;
    this.web = new WebService(this, 'Web', {
      vpc: this.network.vpc,
      subnets: this.network.webSubnets,
      plan,
      image: image.valueAsString,
      database: this.database,
      shards: this.shards,
      ...(this.ha ? { proxy: this.ha } : {}),
      cache: this.cache,
      sessions: this.sessions,
      broker: this.broker,
      certificateArn: props.certificateArn,
      region: props.env?.region,
    });
    this.workers =
      plan.queue && this.broker
        ? new Workers(this, 'Workers', {
            cluster: this.web.service.cluster,
            vpc: this.network.vpc,
            subnets: this.network.webSubnets,
            plan: { ...plan, queue: plan.queue },
            image: image.valueAsString,
            database: this.database,
            proxy: this.ha,
            broker: this.broker,
            databaseEnvironment: this.web.databaseEnvironment,
            databaseSecrets: this.web.databaseSecrets,
          })
        : undefined;
    this.monitoring = new Monitoring(this, 'Monitoring', {
      web: this.web,
      database: this.database,
      dashboardName: `${id}`,
    });
    if (plan.web.max > plan.web.min) {
      new WebAutoscaling(this, 'Autoscaling', { service: this.web.service, plan, topic: this.monitoring.topic, dashboard: this.monitoring.dashboard });
    }
    // Rung 6: CloudFront is the entry; short URLs name it.
    this.cdn =
      plan.cdn && this.web.loadBalancer
        ? new Cdn(this, 'Cdn', { loadBalancer: this.web.loadBalancer, httpsOrigin: props.certificateArn !== undefined, originShieldRegion: props.env?.region })
        : undefined;
    if (this.cdn) {
      const url = `https://${this.cdn.distribution.distributionDomainName}`;
      this.web.container.addEnvironment('PUBLIC_URL', url);
      new CfnOutput(this, 'EntryUrl', { value: url });
    } else if (this.web.loadBalancer)
      new CfnOutput(this, 'EntryUrl', {
        value: `http${props.certificateArn ? 's' : ''}://${this.web.loadBalancer.loadBalancerDnsName}`,
      });
    new CfnOutput(this, 'WebCluster', { value: this.web.service.cluster.clusterName });
  }
}
