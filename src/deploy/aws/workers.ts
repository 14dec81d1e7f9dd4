// Rung 9 on AWS: the workers as a service of their own (the same image, run as `worker`), in
// the web tier's cluster, consuming the broker: BullMQ on an ElastiCache Redis of its own
// (noeviction, like the local `queue` node; the Redis construct). They take no traffic: no
// balancer, no ingress; they reach the database and the broker only. The relay runs beside
// each web server in its task (web-service.ts), since it reads that server's click log.
import { aws_ecs as ecs, aws_ec2 as ec2, aws_logs as logs, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { DeployPlan } from '../deploy-plan.ts';
import type { Database } from './database.ts';
import type { HighAvailability } from './high-availability.ts';
import type { Redis } from './redis.ts';

export interface WorkersProps {
  cluster: ecs.ICluster;
  vpc: ec2.IVpc;
  subnets: ec2.SubnetSelection;
  plan: DeployPlan & { queue: NonNullable<DeployPlan['queue']> };
  image: string;
  database: Database;
  /** --ha: RDS Proxy in front of the database; the workers connect through it, as the web servers. */
  proxy?: HighAvailability | undefined;
  broker: Redis;
  /** The database settings and secrets the web containers get (host, port, name, user, password). */
  databaseEnvironment: Record<string, string>;
  databaseSecrets: Record<string, ecs.Secret>;
}

/** SIGTERM to SIGKILL: a worker lets in-flight messages finish for 10 s, then releases them. */
const STOP_GRACE_S = 15;

export class Workers extends Construct {
  readonly service: ecs.FargateService;
  readonly securityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: WorkersProps) {
    super(scope, id);
    const { plan, vpc } = props;
    this.securityGroup = new ec2.SecurityGroup(this, 'Sg', { vpc, description: 'Links workers (rung 9): no ingress' });
    const task = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: plan.queue.size.cpuUnits,
      memoryLimitMiB: plan.queue.size.memoryMiB,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    task.addContainer('worker', {
      image: ecs.ContainerImage.fromRegistry(props.image),
      command: ['worker'],
      environment: {
        ...props.databaseEnvironment,
        HOST: '127.0.0.1',
        PORT: '3001',
        LOG_LEVEL: 'info',
        QUEUE_REDIS_HOST: props.broker.host,
        QUEUE_REDIS_PORT: props.broker.port,
        QUEUE_REDIS_TLS: '1',
      },
      secrets: { ...props.databaseSecrets, QUEUE_REDIS_AUTH: ecs.Secret.fromSecretsManager(props.broker.authToken) },
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'worker', logGroup }),
      stopTimeout: Duration.seconds(STOP_GRACE_S),
      healthCheck: {
        command: ['CMD', 'node', '-e', "fetch('http://127.0.0.1:3001/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"],
        interval: Duration.seconds(10),
        timeout: Duration.seconds(3),
        retries: 3,
        startPeriod: Duration.seconds(30),
      },
    });
    Validations.of(task).acknowledge({
      id: 'AwsSolutions::AwsSolutions-ECS2',
      reason: 'Only non-secret settings (host names, ports) are plain environment; every secret comes from Secrets Manager.',
    });
    this.service = new ecs.FargateService(this, 'Service', {
      cluster: props.cluster,
      taskDefinition: task,
      desiredCount: plan.queue.workers,
      vpcSubnets: props.subnets,
      securityGroups: [this.securityGroup],
      assignPublicIp: false,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { rollback: true },
    });
    props.database.allowFrom(this.securityGroup);
    props.proxy?.allowFrom(this.securityGroup);
    props.broker.allowFrom(this.securityGroup);
  }
}
