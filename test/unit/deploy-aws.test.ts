// The AWS target: the CloudFormation each built rung synthesizes, asserted with
// aws-cdk-lib/assertions (the stack is built in memory, nothing is deployed).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { estimateCost, loadPrices } from '../../src/deploy/aws/cost.ts';
import { buildAwsApp } from '../../src/deploy/aws/synth-aws.ts';
import { drainOf, planOf, webSizeOf } from '../../src/deploy/deploy-plan.ts';
import { AUTOSCALE_DEFAULT_SCALE_IN_WINDOW_S, AUTOSCALE_DEFAULT_TARGET_CPU } from '../../src/topology/autoscale-config.ts';
import { buildTopology, RUNGS, type TopologyInput } from '../../src/topology/topology.ts';

// Rungs with aws artefacts to synthesize (the others are refused for that target).
const BUILT = RUNGS.filter((r) => r.built && (r.deployable?.includes('aws') ?? true)).map((r) => r.rung);
const cache = new Map<string, Template>();

function template(input: TopologyInput, extra: { region?: string; certificateArn?: string } = {}): Template {
  const key = JSON.stringify([input, extra]);
  let t = cache.get(key);
  if (!t) {
    const outDir = mkdtempSync(path.join(tmpdir(), 'ladder-aws-'));
    const { stack } = buildAwsApp(planOf(buildTopology(input)), { outDir, ...extra });
    t = Template.fromStack(stack);
    cache.set(key, t);
  }
  return t;
}

type Resources = Record<string, { Type: string; Properties?: Record<string, any> }>;
const resources = (t: Template, type: string): Resources => t.findResources(type) as Resources;
const webEnv = (t: Template): Record<string, unknown> => {
  const [task] = Object.values(resources(t, 'AWS::ECS::TaskDefinition'));
  const env = task!.Properties!.ContainerDefinitions[0].Environment as { Name: string; Value: unknown }[];
  return Object.fromEntries(env.map((e) => [e.Name, e.Value]));
};
const webSecrets = (t: Template): string[] => {
  const [task] = Object.values(resources(t, 'AWS::ECS::TaskDefinition'));
  return (task!.Properties!.ContainerDefinitions[0].Secrets as { Name: string }[]).map((s) => s.Name);
};

describe('deploy plan', () => {
  it('sizes follow --cpu as a hint, rounded up to a Fargate size', () => {
    expect(webSizeOf(undefined)).toEqual({ cpuUnits: 256, memoryMiB: 512 });
    expect(webSizeOf(0.2)).toEqual({ cpuUnits: 256, memoryMiB: 512 });
    expect(webSizeOf(0.3)).toEqual({ cpuUnits: 512, memoryMiB: 1024 });
    expect(webSizeOf(2)).toEqual({ cpuUnits: 2048, memoryMiB: 4096 });
  });

  it("the balancers' drain settings cover the app's whole shutdown", () => {
    const d = drainOf();
    expect(d.deregistrationDelaySeconds * 1000).toBeGreaterThanOrEqual(d.drainDelayMs + d.shutdownTimeoutMs);
    expect(d.stopGraceSeconds).toBeGreaterThan(d.preStopSeconds + d.deregistrationDelaySeconds);
  });
});

describe('cost estimate', () => {
  it('adds up its lines, grows with the rungs, and names the date of its prices', () => {
    const prices = loadPrices();
    expect(prices.date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    const totals = BUILT.map((rung) => {
      const e = estimateCost(planOf(buildTopology({ rung })), prices);
      const sum = Object.values(e.lines).reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - e.total)).toBeLessThan(0.01);
      expect(e.pricesDate).toBe(prices.date);
      return e;
    });
    // Every rung costs more than the one below, except rung 6: CloudFront has no idle cost.
    for (let i = 1; i < totals.length; i++) {
      if (BUILT[i] === 6) expect(totals[i]!.total).toBe(totals[i - 1]!.total);
      else expect(totals[i]!.total).toBeGreaterThan(totals[i - 1]!.total);
    }
    expect(totals[BUILT.indexOf(6)]!.lines.cdn).toBe(0);
    expect(totals[0]!.lines.balancer).toBe(0);
    expect(totals[2]!.lines.balancer).toBeGreaterThan(0);
    // One more replica costs one more instance.
    const four = estimateCost(planOf(buildTopology({ rung: 4 })), prices);
    const five = estimateCost(planOf(buildTopology({ rung: 4, replicas: 3 })), prices);
    expect(five.lines.database! - four.lines.database!).toBeCloseTo(four.lines.database! / 3, 1);
  });
});

describe('rung 10: an RDS primary per shard cluster beside the catalog', () => {
  it('the catalog alone, each shard with its replicas, reachable from the web tier, DB_SHARDS and a password per shard', () => {
    const t = template({ rung: 10, shards: 3, replicas: 1 });
    const dbs = resources(t, 'AWS::RDS::DBInstance');
    const replicas = Object.values(dbs).filter((d) => d.Properties!.SourceDBInstanceIdentifier !== undefined);
    expect(Object.keys(dbs).length).toBe(1 + 3 * 2);
    expect(replicas.length).toBe(3);
    for (const i of [1, 2, 3]) expect(Object.keys(dbs).some((id) => id.startsWith(`Shard${i}Primary`))).toBe(true);
    const task = Object.values(resources(t, 'AWS::ECS::TaskDefinition'))[0]!;
    const web = (task.Properties!.ContainerDefinitions as { Environment: { Name: string }[]; Secrets: { Name: string }[] }[])[0]!;
    expect(web.Environment.map((e) => e.Name)).toContain('DB_SHARDS');
    expect(web.Secrets.map((s) => s.Name)).toEqual(expect.arrayContaining(['DB_PASSWORD', 'DB_SHARD1_PASSWORD', 'DB_SHARD2_PASSWORD', 'DB_SHARD3_PASSWORD']));
    // Every shard's security group admits the web tier's, on 5432.
    const ingress = Object.values(resources(t, 'AWS::EC2::SecurityGroupIngress')).filter((r) => r.Properties!.FromPort === 5432);
    expect(ingress.length).toBeGreaterThanOrEqual(4);
  });
});

describe('AWS stacks of the built rungs', () => {
  it.each(BUILT)(
    'rung %i: no public database, everything encrypted at rest, data reachable from the web tier only',
    (rung) => {
      const t = template({ rung });
      const dbs = resources(t, 'AWS::RDS::DBInstance');
      expect(Object.keys(dbs).length).toBeGreaterThan(0);
      for (const [id, db] of Object.entries(dbs)) {
        expect(db.Properties!.PubliclyAccessible, id).toBe(false);
        expect(db.Properties!.StorageEncrypted, id).toBe(true);
        if (db.Properties!.SourceDBInstanceIdentifier !== undefined) {
          // A replica's source must be this stack's (encrypted) primary.
          const src = JSON.stringify(db.Properties!.SourceDBInstanceIdentifier);
          expect(
            Object.keys(dbs).some((pid) => src.includes(`"Ref":"${pid}"`)),
            id,
          ).toBe(true);
        }
      }
      for (const [id, rg] of Object.entries(resources(t, 'AWS::ElastiCache::ReplicationGroup'))) {
        expect(rg.Properties!.AtRestEncryptionEnabled, id).toBe(true);
        expect(rg.Properties!.TransitEncryptionEnabled, id).toBe(true);
        expect(JSON.stringify(rg.Properties!.AuthToken), id).toMatch(/resolve:secretsmanager/);
      }
      // TLS to Postgres is forced.
      t.hasResourceProperties('AWS::RDS::DBParameterGroup', { Parameters: { 'rds.force_ssl': '1' } });
      // Data ports open only to another security group (the web tier's), never to an address range.
      const ingress = Object.values(resources(t, 'AWS::EC2::SecurityGroupIngress')).filter((r) =>
        [5432, 6379].includes(r.Properties!.FromPort),
      );
      expect(ingress.length).toBeGreaterThan(0);
      for (const r of ingress) {
        expect(r.Properties!.SourceSecurityGroupId).toBeDefined();
        expect(r.Properties!.CidrIp).toBeUndefined();
      }
      for (const sg of Object.values(resources(t, 'AWS::EC2::SecurityGroup'))) {
        if (!/Postgres|Redis|cache|sessions/i.test(String(sg.Properties!.GroupDescription))) continue;
        expect(sg.Properties!.SecurityGroupIngress ?? []).toEqual([]);
      }
      // Secrets reach the app from Secrets Manager, never as plain environment.
      expect(Object.keys(webEnv(t)).filter((k) => /PASSWORD|SECRET|AUTH/.test(k))).toEqual([]);
      expect(webSecrets(t)).toEqual(expect.arrayContaining(['DB_PASSWORD', 'LADDER_SECRET']));
      expect(JSON.stringify(t.toJSON())).not.toMatch(/MasterUserPassword"\s*:\s*"[^{]/);
    },
  );

  it('rung 1: one web task and one RDS PostgreSQL 15 instance, no balancer, no autoscaling', () => {
    const t = template({ rung: 1 });
    t.resourceCountIs('AWS::ECS::Service', 1);
    t.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 1, LaunchType: 'FARGATE' });
    t.resourceCountIs('AWS::RDS::DBInstance', 1);
    t.hasResourceProperties('AWS::RDS::DBInstance', {
      Engine: 'postgres',
      EngineVersion: Match.stringLikeRegexp('^15'),
    });
    t.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 0);
    t.resourceCountIs('AWS::ApplicationAutoScaling::ScalableTarget', 0);
    t.resourceCountIs('AWS::ElastiCache::ReplicationGroup', 0);
    t.resourceCountIs('AWS::EC2::NatGateway', 0);
    // A VPC over two AZs with isolated subnets for the data.
    t.resourceCountIs('AWS::EC2::Subnet', 4);
  });

  it('rung 2: the web servers scale on CPU from the topology count (target tracking)', () => {
    const t = template({ rung: 2, web: 3 });
    t.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 3 });
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      MinCapacity: 3,
      MaxCapacity: 6,
    });
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({ TargetValue: 60 }),
    });
    t.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 0);
  });

  it('rung 3: an ALB checking /readyz, deregistration delay matching the drain, web tasks in private subnets', () => {
    const t = template({ rung: 3 });
    t.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 1);
    t.resourceCountIs('AWS::ECS::Service', 1);
    const d = drainOf();
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      HealthCheckPath: '/readyz',
      Port: 3000,
      TargetGroupAttributes: Match.arrayWith([
        { Key: 'deregistration_delay.timeout_seconds', Value: String(d.deregistrationDelaySeconds) },
      ]),
    });
    t.hasResourceProperties('AWS::ECS::Service', {
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }) },
    });
    t.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [Match.objectLike({ StopTimeout: d.stopGraceSeconds })],
    });
    const env = webEnv(t);
    expect(env.DRAIN_DELAY_MS).toBe(String(d.drainDelayMs));
    expect(env.TRUST_PROXY).toBeDefined();
    expect(env.PUBLIC_URL).toBeDefined();
    t.resourceCountIs('AWS::RDS::DBInstance', 1);
  });

  it('rung 4: one read replica per topology replica, passed to the app', () => {
    const t = template({ rung: 4 });
    const replicas = Object.values(resources(t, 'AWS::RDS::DBInstance')).filter(
      (r) => r.Properties!.SourceDBInstanceIdentifier !== undefined,
    );
    expect(replicas).toHaveLength(2);
    expect(JSON.stringify(webEnv(t).DB_REPLICA_HOSTS)).toMatch(/DatabaseReplica1.*DatabaseReplica2/);
    const three = Object.values(resources(template({ rung: 4, replicas: 3 }), 'AWS::RDS::DBInstance'));
    expect(three.filter((r) => r.Properties!.SourceDBInstanceIdentifier !== undefined)).toHaveLength(3);
    // Alarms on replica lag, one per replica.
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ReplicaLag' });
    expect(
      Object.values(resources(t, 'AWS::CloudWatch::Alarm')).filter(
        (a) => a.Properties!.MetricName === 'ReplicaLag',
      ),
    ).toHaveLength(2);
  });

  it('rung 5: ElastiCache Redis for the cache tier (LRU), none for sessions; --no-cache drops it', () => {
    const t = template({ rung: 5 });
    t.resourceCountIs('AWS::ElastiCache::ReplicationGroup', 1);
    t.hasResourceProperties('AWS::ElastiCache::ParameterGroup', {
      Properties: { 'maxmemory-policy': 'allkeys-lru' },
    });
    const env = webEnv(t);
    expect(env.CACHE_REDIS_HOST).toBeDefined();
    expect(env.SESSION_REDIS_HOST).toBeUndefined();
    expect(webSecrets(t)).toContain('CACHE_REDIS_AUTH');
    template({ rung: 5, cache: false }).resourceCountIs('AWS::ElastiCache::ReplicationGroup', 0);
  });

  it('rung 6: CloudFront in front of the balancer: assets cached, API and dashboard not, pages as the origin says', () => {
    const t = template({ rung: 6 });
    t.resourceCountIs('AWS::CloudFront::Distribution', 1);
    const [dist] = Object.values(resources(t, 'AWS::CloudFront::Distribution'));
    const cfg = dist!.Properties!.DistributionConfig;
    const behaviours = Object.fromEntries((cfg.CacheBehaviors as any[]).map((b) => [b.PathPattern, b]));
    // Managed policies: CachingOptimized for hashed assets, CachingDisabled for the API and personal pages.
    expect(behaviours['/static/*'].CachePolicyId).toBe('658327ea-f89d-4fab-a63d-7e88639e58f6');
    expect(behaviours['/static/*'].AllowedMethods).toEqual(['GET', 'HEAD']);
    for (const p of ['/api/*', '/dashboard*']) {
      expect(behaviours[p].CachePolicyId, p).toBe('4135ea2d-6df8-44a3-9df3-4b5a84be39ad');
      expect(behaviours[p].AllowedMethods, p).toContain('POST');
    }
    expect(cfg.ViewerCertificate ?? { MinimumProtocolVersion: 'TLSv1.2_2021' }).toBeDefined();
    expect(cfg.Logging).toBeDefined();
    // Every other path: the origin's Cache-Control decides, nothing is cached without it, and
    // the session cookie is in the key (a logged-in request never shares an anonymous entry).
    const [policy] = Object.values(resources(t, 'AWS::CloudFront::CachePolicy'));
    const pc = policy!.Properties!.CachePolicyConfig;
    expect(pc.DefaultTTL).toBe(0);
    expect(pc.MinTTL).toBe(0);
    expect(pc.ParametersInCacheKeyAndForwardedToOrigin.CookiesConfig).toEqual({ CookieBehavior: 'whitelist', Cookies: ['ladder_sid'] });
    expect(JSON.stringify(cfg.DefaultCacheBehavior.CachePolicyId)).toContain('"Ref"');
    // The entry and the short URLs are CloudFront's.
    expect(JSON.stringify(webEnv(t).PUBLIC_URL)).toMatch(/DomainName/);
    expect(JSON.stringify(t.toJSON().Outputs.EntryUrl.Value)).toMatch(/DomainName/);
    // Below rung 6, none; with a region, Origin Shield there.
    template({ rung: 5 }).resourceCountIs('AWS::CloudFront::Distribution', 0);
    const shielded = template({ rung: 6 }, { region: 'eu-west-1' });
    const [d2] = Object.values(resources(shielded, 'AWS::CloudFront::Distribution'));
    expect(d2!.Properties!.DistributionConfig.Origins[0].OriginShield).toEqual({ Enabled: true, OriginShieldRegion: 'eu-west-1' });
  });

  it('rung 7: a second ElastiCache for sessions that never evicts, with the CDN of rung 6 in front', () => {
    const t = template({ rung: 7 });
    t.resourceCountIs('AWS::ElastiCache::ReplicationGroup', 2);
    t.hasResourceProperties('AWS::ElastiCache::ParameterGroup', {
      Properties: { 'maxmemory-policy': 'noeviction' },
    });
    expect(webEnv(t).SESSION_REDIS_HOST).toBeDefined();
    expect(webSecrets(t)).toEqual(expect.arrayContaining(['SESSION_REDIS_AUTH', 'CACHE_REDIS_AUTH']));
    expect(t.toJSON().Description).not.toMatch(/without/);
    t.resourceCountIs('AWS::CloudFront::Distribution', 1);
  });

  it('rung 9: a broker that never evicts, the workers as their own service, a relay beside each web server', () => {
    const t = template({ rung: 9, workers: 3 });
    const groups = Object.values(resources(t, 'AWS::ElastiCache::ReplicationGroup'));
    expect(groups).toHaveLength(3); // cache, sessions, broker
    t.hasResourceProperties('AWS::ElastiCache::ParameterGroup', { Description: 'Ladder message broker (BullMQ)', Properties: { 'maxmemory-policy': 'noeviction' } });
    const services = Object.values(resources(t, 'AWS::ECS::Service'));
    expect(services.map((s) => s.Properties!.DesiredCount).sort()).toEqual([2, 3]);
    const tasks = Object.values(resources(t, 'AWS::ECS::TaskDefinition'));
    const containers = tasks.flatMap((task) => task.Properties!.ContainerDefinitions as { Name: string; Command?: string[]; Environment: { Name: string; Value: unknown }[]; Secrets: { Name: string }[]; MountPoints?: { ContainerPath: string }[] }[]);
    const byName = (n: string) => containers.find((c) => c.Name === n)!;
    expect(byName('worker').Command).toEqual(['worker']);
    expect(byName('relay').Command).toEqual(['relay']);
    for (const n of ['worker', 'relay']) {
      expect(byName(n).Secrets.map((s) => s.Name).sort()).toEqual(['DB_PASSWORD', 'QUEUE_REDIS_AUTH']);
      expect(byName(n).Environment.filter((e) => /PASSWORD|SECRET|AUTH/.test(e.Name))).toEqual([]);
    }
    // The web server and its relay share the click log folder; the web server writes the outbox.
    expect(webEnv(t)).toMatchObject({ CLICK_LOG_DIR: '/var/ladder/clicklog', LADDER_OUTBOX: '1' });
    for (const n of ['web', 'relay']) expect(byName(n).MountPoints).toEqual([expect.objectContaining({ ContainerPath: '/var/ladder/clicklog', SourceVolume: 'clicklog' })]);
    // Below rung 9 none of it.
    const seven = template({ rung: 7 });
    expect(Object.keys(webEnv(seven))).not.toContain('CLICK_LOG_DIR');
    expect(Object.values(resources(seven, 'AWS::ECS::Service'))).toHaveLength(1);
  });

  it('CloudWatch: 5xx rate, p99, CPU alarms to an encrypted topic, and a dashboard', () => {
    const t = template({ rung: 4 });
    const alarms = Object.values(resources(t, 'AWS::CloudWatch::Alarm'));
    expect(
      alarms.some((a) => JSON.stringify(a.Properties!.Metrics ?? '').includes('HTTPCode_Target_5XX_Count')),
    ).toBe(true);
    expect(
      alarms.some(
        (a) => a.Properties!.ExtendedStatistic === 'p99' && a.Properties!.MetricName === 'TargetResponseTime',
      ),
    ).toBe(true);
    expect(alarms.filter((a) => a.Properties!.MetricName === 'CPUUtilization')).toHaveLength(2);
    for (const a of alarms) expect(a.Properties!.AlarmActions).toHaveLength(1);
    t.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    t.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('autoscaling: target tracking at the local autoscaler\'s target CPU and scale-in window, an alarm at the ceiling, the tier on the dashboard', () => {
    const t = template({ rung: 3 });
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        TargetValue: AUTOSCALE_DEFAULT_TARGET_CPU * 100,
        ScaleInCooldown: AUTOSCALE_DEFAULT_SCALE_IN_WINDOW_S,
        ScaleOutCooldown: 60,
        PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' },
      }),
    });
    const atMax = Object.values(resources(t, 'AWS::CloudWatch::Alarm')).filter((a) => a.Properties!.MetricName === 'RunningTaskCount');
    expect(atMax).toHaveLength(1);
    expect(atMax[0]!.Properties).toMatchObject({
      Namespace: 'ECS/ContainerInsights',
      Threshold: 4,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 15,
    });
    expect(atMax[0]!.Properties!.AlarmActions).toHaveLength(1);
    const [dashboard] = Object.values(resources(t, 'AWS::CloudWatch::Dashboard'));
    const body = JSON.stringify(dashboard!.Properties!.DashboardBody);
    expect(body).toMatch(/RunningTaskCount/);
    expect(body).toMatch(/target 60%/);
    // Rung 1 runs one task: nothing to scale, no alarm at a ceiling.
    expect(Object.values(resources(template({ rung: 1 }), 'AWS::CloudWatch::Alarm')).filter((a) => a.Properties!.MetricName === 'RunningTaskCount')).toHaveLength(0);
  });

  it('autoscaling follows --autoscale MIN:MAX, --target-cpu and --scale-in-window', () => {
    const t = template({ rung: 3, autoscale: { range: '2:6', targetCpu: 0.5, scaleInWindowSeconds: 120 } });
    t.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 2 });
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 2, MaxCapacity: 6 });
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({ TargetValue: 50, ScaleInCooldown: 120 }),
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'RunningTaskCount', Threshold: 6 });
  });

  it('HTTPS when given a certificate, and access logs when given a region', () => {
    const arn = 'arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0000-1111-2222-333344445555';
    const t = template({ rung: 3 }, { region: 'eu-west-1', certificateArn: arn });
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'HTTPS',
      Certificates: [{ CertificateArn: arn }],
    });
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'access_logs.s3.enabled', Value: 'true' }]),
    });
    expect(JSON.stringify(webEnv(t).PUBLIC_URL)).toMatch(/https:\/\//);
  });
});

describe('--ha (high-availability.ts)', () => {
  it('costs the standby, the second cache nodes and the proxy', () => {
    const plain = estimateCost(planOf(buildTopology({ rung: 7 })), loadPrices());
    const ha = estimateCost(planOf(buildTopology({ rung: 7, ha: true })), loadPrices());
    expect(ha.lines.database).toBeGreaterThan(plain.lines.database!);
    expect(ha.lines.redis).toBeCloseTo(2 * plain.lines.redis!, 2);
    expect(ha.lines.proxy).toBeGreaterThan(0);
    expect(plain.lines.proxy).toBeUndefined();
  });

  it('makes the primary Multi-AZ, puts RDS Proxy in front of it for the web tier, and unnamed statements', () => {
    const t = template({ rung: 4, ha: true });
    const instances = Object.values(resources(t, 'AWS::RDS::DBInstance'));
    const primary = instances.find((i) => i.Properties!.SourceDBInstanceIdentifier === undefined)!;
    expect(primary.Properties!.MultiAZ).toBe(true);
    // Read replicas stay single-zone: a lost one is a lost reader, not an outage.
    for (const r of instances.filter((i) => i !== primary)) expect(r.Properties!.MultiAZ).not.toBe(true);
    t.resourceCountIs('AWS::RDS::DBProxy', 1);
    t.hasResourceProperties('AWS::RDS::DBProxy', { EngineFamily: 'POSTGRESQL', RequireTLS: true });
    t.hasResourceProperties('AWS::RDS::DBProxyTargetGroup', { DBInstanceIdentifiers: Match.anyValue() });
    const env = webEnv(t);
    expect(JSON.stringify(env.DB_HOST)).toMatch(/Proxy/);
    expect(env.DATABASE_STATEMENTS).toBe('unnamed');
    // Without --ha none of it.
    const plain = template({ rung: 4 });
    plain.resourceCountIs('AWS::RDS::DBProxy', 0);
    expect(webEnv(plain).DATABASE_STATEMENTS).toBeUndefined();
  });

  it('gives each ElastiCache group a replica in another zone with automatic failover', () => {
    const t = template({ rung: 7, ha: true });
    const groups = Object.values(resources(t, 'AWS::ElastiCache::ReplicationGroup'));
    expect(groups).toHaveLength(2); // the cache tier and the sessions
    for (const g of groups) {
      expect(g.Properties).toMatchObject({ NumCacheClusters: 2, AutomaticFailoverEnabled: true, MultiAZEnabled: true });
    }
    for (const g of Object.values(resources(template({ rung: 7 }), 'AWS::ElastiCache::ReplicationGroup'))) {
      expect(g.Properties).toMatchObject({ NumCacheClusters: 1, AutomaticFailoverEnabled: false });
    }
  });

  it('lets only the web tier reach the proxy, and only the proxy (and the web tier) reach Postgres', () => {
    const t = template({ rung: 4, ha: true });
    const ingress = Object.values(resources(t, 'AWS::EC2::SecurityGroupIngress')).filter((r) => r.Properties!.FromPort === 5432);
    expect(ingress.length).toBeGreaterThanOrEqual(2);
    for (const r of ingress) expect(r.Properties!.SourceSecurityGroupId).toBeDefined();
    expect(JSON.stringify(ingress)).not.toMatch(/0\.0\.0\.0/);
  });
});
