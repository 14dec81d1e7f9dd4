// CloudWatch for a deployment: alarms on what the local Prometheus rules watch (5xx rate and
// p99 at the balancer, replica lag, CPU of the web tier and the database) to an encrypted SNS
// topic, and one dashboard with the same figures. Without a balancer (rungs 1-2) the request
// figures live only in the app's /metrics, so those two alarms need rung 3.
import {
  aws_cloudwatch as cw,
  aws_cloudwatch_actions as actions,
  aws_elasticloadbalancingv2 as elbv2,
  aws_kms as kms,
  aws_sns as sns,
  Duration,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { Database } from './database.ts';
import type { WebService } from './web-service.ts';

export interface MonitoringProps {
  web: WebService;
  database: Database;
  dashboardName: string;
}

const PERIOD = Duration.minutes(1);

export class Monitoring extends Construct {
  readonly alarms: cw.Alarm[] = [];
  readonly topic: sns.Topic;
  readonly dashboard: cw.Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Alarms', {
      displayName: 'Ladder alarms',
      masterKey: kms.Alias.fromAliasName(this, 'SnsKey', 'alias/aws/sns'),
      enforceSSL: true,
    });
    const action = new actions.SnsAction(this.topic);
    const alarm = (name: string, metric: cw.IMetric, threshold: number, description: string): cw.Alarm => {
      const a = new cw.Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      a.addAlarmAction(action);
      a.addOkAction(action);
      this.alarms.push(a);
      return a;
    };

    const webCpu = props.web.service.metricCpuUtilization({ period: PERIOD });
    const dbCpu = props.database.primary.metricCPUUtilization({ period: PERIOD });
    alarm('WebCpu', webCpu, 80, 'Web tier CPU above 80% (autoscaling should be adding tasks)');
    alarm('DbCpu', dbCpu, 80, 'Primary database CPU above 80%');
    const widgets: cw.IWidget[] = [new cw.GraphWidget({ title: 'CPU %', left: [webCpu, dbCpu], width: 12 })];

    const tg = props.web.targetGroup;
    const lb = props.web.loadBalancer;
    if (tg && lb) {
      const requests = lb.metrics.requestCount({ period: PERIOD, statistic: 'Sum' });
      const errors = tg.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
        period: PERIOD,
        statistic: 'Sum',
      });
      const rate = new cw.MathExpression({
        expression: 'IF(req > 0, 100 * err / req, 0)',
        usingMetrics: { req: requests, err: errors },
        label: '5xx %',
        period: PERIOD,
      });
      const p99 = tg.metrics.targetResponseTime({ period: PERIOD, statistic: 'p99' });
      alarm('ErrorRate', rate, 1, 'More than 1% of responses are 5xx');
      alarm('LatencyP99', p99, 0.5, 'p99 response time above 500 ms');
      widgets.push(
        new cw.GraphWidget({ title: 'Requests and 5xx %', left: [requests], right: [rate], width: 12 }),
        new cw.GraphWidget({ title: 'p99 response time (s)', left: [p99], width: 12 }),
      );
    }
    // No label on the alarm's metric: a label turns the alarm into a metric-math one.
    const lags = props.database.replicas.map((r) =>
      r.metric('ReplicaLag', { period: PERIOD, statistic: 'Maximum' }),
    );
    lags.forEach((lag, i) =>
      alarm(`Replica${i + 1}Lag`, lag, 30, `replica${i + 1} is more than 30 s behind the primary`),
    );
    if (lags.length > 0)
      widgets.push(
        new cw.GraphWidget({
          title: 'Replica lag (s)',
          left: lags.map((l, i) => l.with({ label: `replica${i + 1}` })),
          width: 12,
        }),
      );

    this.dashboard = new cw.Dashboard(this, 'Dashboard', { dashboardName: props.dashboardName, widgets: [widgets] });
  }
}
