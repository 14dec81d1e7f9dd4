// High availability on AWS (a topology with --ha): what Patroni, etcd, PgBouncer and Redis
// Sentinel are locally. The primary becomes RDS Multi-AZ (a synchronous standby in another
// zone, promoted by RDS in 60-120 s), the web tier reaches it through RDS Proxy (a pool in
// front of it that also holds client connections across a failover, as PgBouncer does), and
// each ElastiCache group gets a replica in another zone with automatic failover (Sentinel's
// job). Kept apart from the tiers' own constructs: it changes them after they are made.
import { aws_ec2 as ec2, aws_rds as rds, Duration } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { Database } from './database.ts';
import type { Redis } from './redis.ts';

export interface HighAvailabilityProps {
  vpc: ec2.IVpc;
  subnets: ec2.SubnetSelection;
  database: Database;
  /** The cache tier's and the sessions' Redis, when the topology has them. */
  redis: readonly Redis[];
}

export class HighAvailability extends Construct {
  readonly proxy: rds.DatabaseProxy;
  readonly proxySecurityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: HighAvailabilityProps) {
    super(scope, id);
    const primary = props.database.primary;
    // Multi-AZ: a standby in another zone; RDS fails over to it by itself (its DNS name moves).
    (primary.node.defaultChild as rds.CfnDBInstance).multiAz = true;

    this.proxySecurityGroup = new ec2.SecurityGroup(this, 'ProxySg', {
      vpc: props.vpc,
      description: 'RDS Proxy: reachable from the web tier only',
      allowAllOutbound: false,
    });
    this.proxy = new rds.DatabaseProxy(this, 'Proxy', {
      proxyTarget: rds.ProxyTarget.fromInstance(primary),
      secrets: [primary.secret!],
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [this.proxySecurityGroup],
      requireTLS: true,
      // Clients wait this long for a connection to the new primary during a failover.
      borrowTimeout: Duration.seconds(30),
      maxConnectionsPercent: 90,
      idleClientTimeout: Duration.minutes(30),
      debugLogging: false,
    });
    // The proxy reaches the primary on its port, and only from its own group.
    props.database.allowFrom(this.proxySecurityGroup);
    this.proxySecurityGroup.addEgressRule(props.database.securityGroup, ec2.Port.tcp(5432), 'RDS Proxy to Postgres');

    for (const r of props.redis) {
      // A primary and a replica in two zones; ElastiCache promotes the replica when the primary fails.
      const group = r.group;
      group.numCacheClusters = 2;
      group.automaticFailoverEnabled = true;
      group.multiAzEnabled = true;
    }
  }

  /** The web tier reaches the primary through the proxy. */
  allowFrom(peer: ec2.ISecurityGroup): void {
    this.proxySecurityGroup.addIngressRule(peer, ec2.Port.tcp(5432), 'RDS Proxy from the web tier');
  }

  get endpoint(): string {
    return this.proxy.endpoint;
  }
}
