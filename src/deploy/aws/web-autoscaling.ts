// The web tier's autoscaling on AWS: ECS service autoscaling with a target-tracking policy
// on the service's CPU, at the same target as `ladder up --autoscale` (60% unless told), and
// a scale-in cooldown of the local scale-in window (300 s unless told): what the local
// autoscaler (src/launcher/autoscaler.ts) does with its HPA-style policy, Application Auto
// Scaling does here. Then what an operator watches: an alarm when the tier has sat at its
// ceiling (it can grow no more; capacity planning's trigger), and the tier's size against
// its CPU on the deployment's dashboard.
import { aws_cloudwatch as cw, aws_cloudwatch_actions as actions, aws_ecs as ecs, aws_sns as sns, Duration } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { DeployPlan } from '../deploy-plan.ts';

export interface WebAutoscalingProps {
  service: ecs.FargateService;
  plan: DeployPlan;
  /** Where the alarm goes (the deployment's alarm topic). */
  topic: sns.ITopic;
  /** The deployment's dashboard, which gains the tier's size and CPU. */
  dashboard: cw.Dashboard;
}

/** Scale out at most once a minute: a new task needs about that long to pull, start and pass its health checks. */
const SCALE_OUT_COOLDOWN = Duration.seconds(60);
const PERIOD = Duration.minutes(1);
/** Minutes at the ceiling before the alarm: longer than a burst the tier rides out. */
const AT_MAX_MINUTES = 15;

export class WebAutoscaling extends Construct {
  readonly atMaxAlarm: cw.Alarm;

  constructor(scope: Construct, id: string, props: WebAutoscalingProps) {
    super(scope, id);
    const { service, plan } = props;
    const scaling = service.autoScaleTaskCount({ minCapacity: plan.web.min, maxCapacity: plan.web.max });
    scaling.scaleOnCpuUtilization('Cpu', {
      targetUtilizationPercent: Math.round(plan.web.targetCpu * 100),
      scaleInCooldown: Duration.seconds(plan.web.scaleInWindowSeconds),
      scaleOutCooldown: SCALE_OUT_COOLDOWN,
    });

    // Container Insights (on for the cluster) counts the running tasks.
    const dimensionsMap = { ClusterName: service.cluster.clusterName, ServiceName: service.serviceName };
    const running = new cw.Metric({ namespace: 'ECS/ContainerInsights', metricName: 'RunningTaskCount', dimensionsMap, period: PERIOD, statistic: 'Maximum' });
    const desired = new cw.Metric({ namespace: 'ECS/ContainerInsights', metricName: 'DesiredTaskCount', dimensionsMap, period: PERIOD, statistic: 'Maximum' });
    this.atMaxAlarm = new cw.Alarm(this, 'AtMax', {
      metric: running,
      threshold: plan.web.max,
      evaluationPeriods: AT_MAX_MINUTES,
      datapointsToAlarm: AT_MAX_MINUTES,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      alarmDescription: `The web tier has run at its ceiling of ${plan.web.max} tasks for ${AT_MAX_MINUTES} minutes: autoscaling can add no more (raise the maximum, or find the bottleneck behind it)`,
    });
    const action = new actions.SnsAction(props.topic);
    this.atMaxAlarm.addAlarmAction(action);
    this.atMaxAlarm.addOkAction(action);

    const cpu = service.metricCpuUtilization({ period: PERIOD });
    props.dashboard.addWidgets(
      new cw.GraphWidget({
        title: `Web tasks (${plan.web.min}..${plan.web.max}) and CPU % (target ${Math.round(plan.web.targetCpu * 100)}%)`,
        left: [running.with({ label: 'running' }), desired.with({ label: 'desired' })],
        right: [cpu.with({ label: 'CPU %' })],
        rightAnnotations: [{ value: plan.web.targetCpu * 100, label: 'target' }],
        width: 12,
      }),
    );
  }
}
