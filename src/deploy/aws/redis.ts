// One ElastiCache Redis (a replication group of one node): the cache tier (rung 5) or the
// session store (rung 7), never both in one, as locally. Isolated subnets, encryption at
// rest and in transit, an AUTH token generated into Secrets Manager.
import {
  aws_ec2 as ec2,
  aws_elasticache as elasticache,
  aws_secretsmanager as sm,
  Validations,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { CACHE_NODE } from '../deploy-plan.ts';

export interface RedisProps {
  vpc: ec2.IVpc;
  subnets: ec2.SubnetSelection;
  description: string;
  /** The cache tier evicts by LRU; the session store must never evict a session. */
  evict: boolean;
}

export class Redis extends Construct {
  readonly group: elasticache.CfnReplicationGroup;
  readonly securityGroup: ec2.SecurityGroup;
  readonly authToken: sm.Secret;

  constructor(scope: Construct, id: string, props: RedisProps) {
    super(scope, id);
    this.securityGroup = new ec2.SecurityGroup(this, 'Sg', {
      vpc: props.vpc,
      description: `${props.description}: reachable from the web tier only`,
      allowAllOutbound: false,
    });
    const subnetGroup = new elasticache.CfnSubnetGroup(this, 'Subnets', {
      description: props.description,
      subnetIds: props.vpc.selectSubnets(props.subnets).subnetIds,
    });
    const params = new elasticache.CfnParameterGroup(this, 'Params', {
      cacheParameterGroupFamily: 'redis7',
      description: props.description,
      properties: { 'maxmemory-policy': props.evict ? 'allkeys-lru' : 'noeviction' },
    });
    this.authToken = new sm.Secret(this, 'AuthToken', {
      description: `${props.description}: Redis AUTH token`,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    this.group = new elasticache.CfnReplicationGroup(this, 'Group', {
      replicationGroupDescription: props.description,
      engine: 'redis',
      engineVersion: '7.1',
      cacheNodeType: CACHE_NODE,
      numCacheClusters: 1,
      automaticFailoverEnabled: false,
      multiAzEnabled: false,
      cacheSubnetGroupName: subnetGroup.ref,
      cacheParameterGroupName: params.ref,
      securityGroupIds: [this.securityGroup.securityGroupId],
      atRestEncryptionEnabled: true,
      transitEncryptionEnabled: true,
      // A dynamic reference: CloudFormation reads the token from Secrets Manager at deploy time.
      authToken: this.authToken.secretValue.unsafeUnwrap(),
      autoMinorVersionUpgrade: true,
      snapshotRetentionLimit: props.evict ? 0 : 1,
    });
    Validations.of(this.group).acknowledge(
      {
        id: 'AwsSolutions::AwsSolutions-AEC4',
        reason:
          'Multi-AZ failover is the high-availability step (rung 8); rungs 5-7 run one node, as `ladder up` does.',
      },
      {
        id: 'AwsSolutions::AwsSolutions-AEC5',
        reason: 'The default port is kept: only the web tier security group may reach it.',
      },
    );
    Validations.of(this.authToken).acknowledge({
      id: 'AwsSolutions::AwsSolutions-SMG4',
      reason:
        'ElastiCache reads the AUTH token at deploy time; rotating it needs the two-token rotation of ElastiCache, not automated yet.',
    });
  }

  get host(): string {
    return this.group.attrPrimaryEndPointAddress;
  }

  get port(): string {
    return this.group.attrPrimaryEndPointPort;
  }

  allowFrom(peer: ec2.ISecurityGroup): void {
    this.securityGroup.addIngressRule(peer, ec2.Port.tcp(6379), 'Redis from the web tier');
  }
}
