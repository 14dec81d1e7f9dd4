// The web tier: the image on ECS Fargate, one task per web server of the topology. Rung 1
// is one task; rung 2 and up scale on CPU (target tracking, web-autoscaling.ts) from the topology's count; rung 3
// and up put an ALB in front that checks /readyz and keeps a leaving task as long as the
// app's drain takes. The app's settings are plain environment; its secrets (database
// password, cookie secret, Redis AUTH tokens) come from Secrets Manager at task start.
import {
  aws_ec2 as ec2,
  aws_ecs as ecs,
  aws_elasticloadbalancingv2 as elbv2,
  aws_logs as logs,
  aws_s3 as s3,
  aws_secretsmanager as sm,
  Duration,
  Fn,
  RemovalPolicy,
  Validations,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { APP_PORT, type DeployPlan } from '../deploy-plan.ts';
import { DB_NAME, DB_USER, type Database } from './database.ts';
import type { HighAvailability } from './high-availability.ts';
import type { Redis } from './redis.ts';

export interface WebServiceProps {
  vpc: ec2.Vpc;
  subnets: ec2.SubnetSelection;
  plan: DeployPlan;
  image: string;
  database: Database;
  /** Rung 10: the shard clusters, in order (shard1 first). */
  shards?: Database[];
  /** --ha: writes go through RDS Proxy in front of the Multi-AZ primary. */
  proxy?: HighAvailability;
  cache: Redis | undefined;
  sessions: Redis | undefined;
  /** Rung 9: the broker; the web servers then log clicks for a relay beside each of them, and write the outbox. */
  broker?: Redis | undefined;
  /** An ACM certificate for HTTPS on the balancer; without one it listens on HTTP. */
  certificateArn: string | undefined;
  /** The stack's region when given (--region); access logs need it. */
  region: string | undefined;
}

/** Rung 9: the click log folder, a task volume shared by the web server and its relay (Dockerfile). */
const CLICK_LOG_DIR = '/var/ladder/clicklog';
const RELAY_PORT = 3002;

/** Where the image keeps the RDS CA bundle (Dockerfile). */
const RDS_CA = '/etc/ssl/certs/rds-global-bundle.pem';

export class WebService extends Construct {
  readonly service: ecs.FargateService;
  readonly securityGroup: ec2.SecurityGroup;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer | undefined;
  /** The app's container (a CDN in front sets its PUBLIC_URL). */
  readonly container: ecs.ContainerDefinition;
  readonly targetGroup: elbv2.ApplicationTargetGroup | undefined;
  /** The database settings and secrets of the app's containers (the workers get the same). */
  readonly databaseEnvironment: Record<string, string>;
  readonly databaseSecrets: Record<string, ecs.Secret>;

  constructor(scope: Construct, id: string, props: WebServiceProps) {
    super(scope, id);
    const { plan, vpc, database } = props;
    const cluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    this.securityGroup = new ec2.SecurityGroup(this, 'Sg', { vpc, description: 'Links web servers' });
    const appSecret = new sm.Secret(this, 'CookieSecret', {
      description: 'LADDER_SECRET: signs session cookies',
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
    });
    Validations.of(appSecret).acknowledge({
      id: 'AwsSolutions::AwsSolutions-SMG4',
      reason: 'Rotating the cookie secret logs every user out; it is rotated by hand, on purpose.',
    });

    const task = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: plan.web.size.cpuUnits,
      memoryLimitMiB: plan.web.size.memoryMiB,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    const primary = database.primary;
    const environment: Record<string, string> = {
      ...plan.env,
      DB_HOST: props.proxy ? props.proxy.endpoint : primary.dbInstanceEndpointAddress,
      DB_PORT: props.proxy ? '5432' : primary.dbInstanceEndpointPort,
      DB_NAME,
      DB_USER,
      DB_SSL_ROOT_CERT: RDS_CA,
    };
    if (database.replicas.length > 0) {
      environment.DB_REPLICA_HOSTS = Fn.join(
        ',',
        database.replicas.map((r) => `${r.dbInstanceEndpointAddress}:${r.dbInstanceEndpointPort}`),
      );
    }
    this.databaseEnvironment = {
      DB_HOST: environment.DB_HOST!,
      DB_PORT: environment.DB_PORT!,
      DB_NAME,
      DB_USER,
      DB_SSL_ROOT_CERT: RDS_CA,
      ...(plan.env.DATABASE_STATEMENTS ? { DATABASE_STATEMENTS: plan.env.DATABASE_STATEMENTS } : {}),
    };
    this.databaseSecrets = { DB_PASSWORD: ecs.Secret.fromSecretsManager(primary.secret!, 'password') };
    // Rung 10: each shard's endpoints (primary|replica...) and its own password; the image's
    // entrypoint builds DATABASE_SHARDS from them.
    const shards = props.shards ?? [];
    if (shards.length > 0) {
      environment.DB_SHARDS = Fn.join(
        ';',
        shards.map((s, i) =>
          Fn.join('', [
            `shard${i + 1}=`,
            Fn.join('|', [s.primary, ...s.replicas].map((n) => Fn.join(':', [n.dbInstanceEndpointAddress, n.dbInstanceEndpointPort]))),
          ]),
        ),
      );
      this.databaseEnvironment.DB_SHARDS = environment.DB_SHARDS;
      shards.forEach((s, i) => (this.databaseSecrets[`DB_SHARD${i + 1}_PASSWORD`] = ecs.Secret.fromSecretsManager(s.primary.secret!, 'password')));
    }
    const secrets: Record<string, ecs.Secret> = {
      ...this.databaseSecrets,
      LADDER_SECRET: ecs.Secret.fromSecretsManager(appSecret),
    };
    if (props.cache) {
      Object.assign(environment, {
        CACHE_REDIS_HOST: props.cache.host,
        CACHE_REDIS_PORT: props.cache.port,
        CACHE_REDIS_TLS: '1',
      });
      secrets.CACHE_REDIS_AUTH = ecs.Secret.fromSecretsManager(props.cache.authToken);
    }
    if (props.sessions) {
      Object.assign(environment, {
        SESSION_REDIS_HOST: props.sessions.host,
        SESSION_REDIS_PORT: props.sessions.port,
        SESSION_REDIS_TLS: '1',
      });
      secrets.SESSION_REDIS_AUTH = ecs.Secret.fromSecretsManager(props.sessions.authToken);
    }

    let scheme = 'http';
    if (plan.balancer) {
      const lb = new elbv2.ApplicationLoadBalancer(this, 'Lb', {
        vpc,
        internetFacing: true,
        vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
        dropInvalidHeaderFields: true,
      });
      // Access logs need the region's ELB log delivery account: only with --region.
      if (props.region !== undefined) {
        const accessLogs = new s3.Bucket(this, 'LbLogs', {
          encryption: s3.BucketEncryption.S3_MANAGED,
          enforceSSL: true,
          blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
          removalPolicy: RemovalPolicy.DESTROY,
          autoDeleteObjects: false,
          lifecycleRules: [{ expiration: Duration.days(30) }],
        });
        Validations.of(accessLogs).acknowledge({
          id: 'AwsSolutions::AwsSolutions-S1',
          reason:
            'This bucket only receives the balancer access logs; logging access to the log bucket itself would recurse.',
        });
        lb.logAccessLogs(accessLogs);
      } else {
        Validations.of(lb).acknowledge({
          id: 'AwsSolutions::AwsSolutions-ELB2',
          reason:
            "An environment-agnostic stack cannot name the region's log delivery account: synthesize with --region R for access logs.",
        });
      }
      this.loadBalancer = lb;
      scheme = props.certificateArn ? 'https' : 'http';
      // The app trusts X-Forwarded-* from inside the VPC only: that is where the balancer is.
      environment.TRUST_PROXY = vpc.vpcCidrBlock;
      environment.PUBLIC_URL = `${scheme}://${lb.loadBalancerDnsName}`;
    }

    this.container = task.addContainer('web', {
      image: ecs.ContainerImage.fromRegistry(props.image),
      portMappings: [{ containerPort: APP_PORT }],
      environment,
      secrets,
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'web', logGroup }),
      stopTimeout: Duration.seconds(plan.drain.stopGraceSeconds),
      healthCheck: {
        command: [
          'CMD',
          'node',
          '-e',
          `fetch('http://127.0.0.1:${APP_PORT}/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`,
        ],
        interval: Duration.seconds(10),
        timeout: Duration.seconds(3),
        retries: 3,
        startPeriod: Duration.seconds(30),
      },
    });
    if (props.broker) this.addRelay(task, props.image, props.broker, logGroup, plan);
    Validations.of(task).acknowledge({
      id: 'AwsSolutions::AwsSolutions-ECS2',
      reason:
        'Only non-secret settings (host names, ports, sizes) are plain environment; every secret comes from Secrets Manager.',
    });

    this.service = new ecs.FargateService(this, 'Service', {
      cluster,
      taskDefinition: task,
      desiredCount: plan.web.count,
      vpcSubnets: props.subnets,
      securityGroups: [this.securityGroup],
      // Without a balancer each task is reached on its own public address (rungs 1-2).
      assignPublicIp: !plan.balancer,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { rollback: true },
      ...(plan.balancer ? { healthCheckGracePeriod: Duration.seconds(60) } : {}),
    });
    database.allowFrom(this.securityGroup);
    for (const shard of props.shards ?? []) shard.allowFrom(this.securityGroup);
    props.proxy?.allowFrom(this.securityGroup);
    props.cache?.allowFrom(this.securityGroup);
    props.sessions?.allowFrom(this.securityGroup);
    props.broker?.allowFrom(this.securityGroup);

    if (this.loadBalancer) {
      const lb = this.loadBalancer;
      const listener = props.certificateArn
        ? lb.addListener('Https', {
            port: 443,
            certificates: [elbv2.ListenerCertificate.fromArn(props.certificateArn)],
            sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
          })
        : lb.addListener('Http', { port: 80 });
      if (props.certificateArn) lb.addRedirect({ sourcePort: 80, targetPort: 443 });
      this.targetGroup = listener.addTargets('Web', {
        port: APP_PORT,
        protocol: elbv2.ApplicationProtocol.HTTP,
        targets: [this.service],
        deregistrationDelay: Duration.seconds(plan.drain.deregistrationDelaySeconds),
        healthCheck: {
          path: '/readyz',
          interval: Duration.seconds(5),
          timeout: Duration.seconds(4),
          healthyThresholdCount: 2,
          unhealthyThresholdCount: 2,
          healthyHttpCodes: '200',
        },
      });
      Validations.of(lb).acknowledge({
        id: 'AwsSolutions::AwsSolutions-EC23',
        reason: 'The balancer is the public entry of the site: it must accept connections from anywhere.',
      });
    } else {
      this.securityGroup.addIngressRule(
        ec2.Peer.anyIpv4(),
        ec2.Port.tcp(APP_PORT),
        'Links, reached directly (no balancer below rung 3)',
      );
      Validations.of(this.securityGroup).acknowledge({
        id: 'AwsSolutions::AwsSolutions-EC23',
        reason: 'Below rung 3 there is no balancer: the web servers are the public entry, as locally.',
      });
    }
    // Autoscaling (rung 2 and up): web-autoscaling.ts, created by the stack.
  }

  /**
   * Rung 9: the web server appends each click to a log in a task volume before its 302, and
   * writes link events to the outbox; the relay, a second container of the same task, ships
   * that log and the outbox to the broker. When the task stops, the relay gets SIGTERM and
   * ships what the log holds before it exits (the volume goes with the task).
   */
  private addRelay(task: ecs.FargateTaskDefinition, image: string, broker: Redis, logGroup: logs.LogGroup, plan: DeployPlan): void {
    task.addVolume({ name: 'clicklog' });
    this.container.addEnvironment('CLICK_LOG_DIR', CLICK_LOG_DIR);
    this.container.addEnvironment('LADDER_OUTBOX', '1');
    this.container.addMountPoints({ containerPath: CLICK_LOG_DIR, sourceVolume: 'clicklog', readOnly: false });
    const relay = task.addContainer('relay', {
      image: ecs.ContainerImage.fromRegistry(image),
      command: ['relay'],
      environment: {
        ...this.databaseEnvironment,
        HOST: '127.0.0.1',
        PORT: String(RELAY_PORT),
        LOG_LEVEL: 'info',
        CLICK_LOG_DIR,
        RELAY_STATE_DIR: `${CLICK_LOG_DIR}/relay`,
        QUEUE_REDIS_HOST: broker.host,
        QUEUE_REDIS_PORT: broker.port,
        QUEUE_REDIS_TLS: '1',
      },
      secrets: { ...this.databaseSecrets, QUEUE_REDIS_AUTH: ecs.Secret.fromSecretsManager(broker.authToken) },
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'relay', logGroup }),
      stopTimeout: Duration.seconds(plan.drain.stopGraceSeconds),
      healthCheck: {
        command: ['CMD', 'node', '-e', `fetch('http://127.0.0.1:${RELAY_PORT}/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`],
        interval: Duration.seconds(10),
        timeout: Duration.seconds(3),
        retries: 3,
        startPeriod: Duration.seconds(30),
      },
    });
    relay.addMountPoints({ containerPath: CLICK_LOG_DIR, sourceVolume: 'clicklog', readOnly: false });
  }
}
