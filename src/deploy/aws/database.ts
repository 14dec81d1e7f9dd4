// The database tier: RDS PostgreSQL 15, a primary and (rung 4) read replicas, in isolated
// subnets, encrypted at rest, TLS forced, credentials generated into Secrets Manager.
// Reachable only from the security groups granted with allowFrom (the web tier).
import { aws_ec2 as ec2, aws_rds as rds, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { DB_INSTANCE } from '../deploy-plan.ts';

export interface DatabaseProps {
  vpc: ec2.IVpc;
  subnets: ec2.SubnetSelection;
  replicas: number;
}

/** Characters of a generated password that would need escaping in a postgres:// URL. */
const NOT_IN_URL = ` %+~\`#$&*()|[]{}:;<>?!'/@"\\,=^`;
export const DB_NAME = 'links';
export const DB_USER = 'links';

export class Database extends Construct {
  readonly primary: rds.DatabaseInstance;
  readonly replicas: rds.DatabaseInstanceReadReplica[] = [];
  readonly securityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    this.securityGroup = new ec2.SecurityGroup(this, 'Sg', {
      vpc: props.vpc,
      description: 'Postgres: reachable from the web tier only',
      allowAllOutbound: false,
    });
    const engine = rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_15 });
    const parameterGroup = new rds.ParameterGroup(this, 'Params', {
      engine,
      description: 'Ladder: TLS only',
      parameters: { 'rds.force_ssl': '1' },
    });
    const instanceType = ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO);
    this.primary = new rds.DatabaseInstance(this, 'Primary', {
      engine,
      instanceType,
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [this.securityGroup],
      credentials: rds.Credentials.fromGeneratedSecret(DB_USER, { excludeCharacters: NOT_IN_URL }),
      databaseName: DB_NAME,
      parameterGroup,
      allocatedStorage: DB_INSTANCE.storageGiB,
      maxAllocatedStorage: DB_INSTANCE.storageGiB * 5,
      storageType: rds.StorageType.GP3,
      storageEncrypted: true,
      publiclyAccessible: false,
      multiAz: false,
      iamAuthentication: true,
      backupRetention: Duration.days(7),
      deletionProtection: false,
      removalPolicy: RemovalPolicy.SNAPSHOT,
      enablePerformanceInsights: false,
      cloudwatchLogsExports: ['postgresql'],
      autoMinorVersionUpgrade: true,
    });
    for (let i = 1; i <= props.replicas; i++) {
      this.replicas.push(
        new rds.DatabaseInstanceReadReplica(this, `Replica${i}`, {
          sourceDatabaseInstance: this.primary,
          instanceType,
          vpc: props.vpc,
          vpcSubnets: props.subnets,
          securityGroups: [this.securityGroup],
          parameterGroup,
          // Stated although a replica inherits it from its (encrypted) source: every DBInstance
          // of the template then says it is encrypted, as cdk-nag (RDS2) and reviewers check.
          storageEncrypted: true,
          publiclyAccessible: false,
          deletionProtection: false,
          removalPolicy: RemovalPolicy.DESTROY,
          autoMinorVersionUpgrade: true,
        }),
      );
    }
    for (const r of this.replicas) {
      Validations.of(r).acknowledge({
        id: 'CloudFormation-Validate::F3020',
        reason:
          'StorageEncrypted on a replica restates what it inherits from its encrypted source; CloudFormation accepts it.',
      });
    }
    const all = [this.primary, ...this.replicas];
    for (const c of all)
      Validations.of(c).acknowledge(
        {
          id: 'AwsSolutions::AwsSolutions-RDS3',
          reason:
            'Multi-AZ is the high-availability step (rung 8); rungs 1-7 run one primary, as `ladder up` does.',
        },
        {
          id: 'AwsSolutions::AwsSolutions-RDS10',
          reason:
            'A trial deployment must tear down with `cdk destroy`; the primary is snapshotted on removal. Turn deletion protection on for production.',
        },
        {
          id: 'AwsSolutions::AwsSolutions-RDS11',
          reason:
            'The default port is kept: only the web tier security group may reach it, a different port adds no protection.',
        },
      );
    Validations.of(this.primary).acknowledge({
      id: 'AwsSolutions::AwsSolutions-SMG4',
      reason:
        'The app reads its database password once at start; rotation needs a rolling restart of the web tier, which is not automated yet.',
    });
  }

  /** Lets a security group (the web tier) reach every instance, and nothing else. */
  allowFrom(peer: ec2.ISecurityGroup): void {
    this.securityGroup.addIngressRule(peer, ec2.Port.tcp(5432), 'Postgres from the web tier');
  }
}
