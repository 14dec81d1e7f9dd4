// The VPC of a deployment: two AZs; public subnets for the entry (the balancer, or the web
// servers themselves while there is none), private subnets with one NAT for web servers
// behind a balancer, isolated subnets (no route out) for Postgres and Redis. Flow logs on.
import { aws_ec2 as ec2, aws_logs as logs, RemovalPolicy } from 'aws-cdk-lib';
import { Construct } from 'constructs';

export interface NetworkProps {
  /** Web servers sit in private subnets behind a balancer (rung 3 and up), else in public ones. */
  privateWeb: boolean;
}

export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  /** Where the web servers' tasks run. */
  readonly webSubnets: ec2.SubnetSelection;
  readonly dataSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    const subnets: ec2.SubnetConfiguration[] = [
      { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
      { name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
    ];
    if (props.privateWeb)
      subnets.push({ name: 'web', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr('10.0.0.0/16'),
      maxAzs: 2,
      // One NAT: the web servers pull the image and reach nothing else outside; a second
      // would only matter in an AZ outage (high availability is rung 8).
      natGateways: props.privateWeb ? 1 : 0,
      subnetConfiguration: subnets,
    });
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: ec2.FlowLogTrafficType.REJECT,
    });
    this.webSubnets = {
      subnetType: props.privateWeb ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PUBLIC,
    };
  }
}
