import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { LATENCY_METRIC_NAMES, METRIC_NAMES, METRIC_NAMESPACE, METRIC_SERVICE } from '../../lib/infra/metric-names';
import { AWS, LOCALSTACK, resourcesOf, synth } from './synth';

describe('ResultStore', () => {
  it('is an on-demand table keyed by pk with the expiresAt TTL and AWS-managed encryption', () => {
    const { template } = synth(AWS);
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      SSESpecification: { SSEEnabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: false },
    });
  });

  it('turns on point-in-time recovery with pointInTimeRecovery=true', () => {
    synth({ ...AWS, pointInTimeRecovery: 'true' }).template.hasResourceProperties('AWS::DynamoDB::Table', {
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
  });

  it('is deleted with the stack by default and retained with removalPolicy=retain', () => {
    synth(AWS).template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
    synth({ ...AWS, removalPolicy: 'retain' }).template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
    });
  });
});

describe('Observability', () => {
  for (const [profile, context, functions] of [
    ['aws', AWS, 5],
    ['localstack', LOCALSTACK, 4],
  ] as const) {
    it(`builds one dashboard with the latency metrics, queue depth and age, DLQ and Lambda errors (${profile})`, () => {
      const { template } = synth(context);
      template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
      const body = JSON.stringify(Object.values(resourcesOf(template, 'AWS::CloudWatch::Dashboard'))[0]?.Properties);
      for (const name of Object.values(METRIC_NAMES)) expect(body).toContain(`\\"${METRIC_NAMESPACE}\\",\\"${name}\\"`);
      // Latencies as the handlers emit them: the Prometheus name, service, and the clock, emulated beside measured.
      for (const name of [LATENCY_METRIC_NAMES.ttft, LATENCY_METRIC_NAMES.tpot, LATENCY_METRIC_NAMES.e2e]) {
        for (const clock of ['emulated', 'measured']) {
          expect(body).toContain(
            `\\"${METRIC_NAMESPACE}\\",\\"${name}\\",\\"clock\\",\\"${clock}\\",\\"service\\",\\"${METRIC_SERVICE}\\"`,
          );
        }
      }
      for (const outcome of ['completed', 'failed', 'cancelled', 'rejected']) {
        expect(body).toContain(`\\"outcome\\",\\"${outcome}\\"`);
      }
      for (const metric of [
        'ApproximateNumberOfMessagesVisible',
        'ApproximateAgeOfOldestMessage',
        'Errors',
        'Invocations',
      ]) {
        expect(body).toContain(metric);
      }
      expect(body).toContain('\\"service\\",\\"disagg\\"');
      // One error-rate alarm per function plus the dead-letter alarm.
      template.resourceCountIs('AWS::CloudWatch::Alarm', functions + 1);
    });
  }

  it('alarms as soon as one message reaches the dead-letter queue', () => {
    const { template, stack } = synth(AWS);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Namespace: 'AWS/SQS',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: {
            'Fn::GetAtt': [stack.getLogicalId(stack.handoff.deadLetterQueue.node.defaultChild as never), 'QueueName'],
          },
        },
      ],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  it('alarms on each function error rate above the configured percent', () => {
    const { template } = synth({ ...AWS, errorRateAlarmPercent: '2' });
    const alarms = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm')).filter((a) =>
      /100 \* \w+Errors \/ \w+Invocations/.test(JSON.stringify(a.Properties?.Metrics ?? '')),
    );
    expect(alarms).toHaveLength(5);
    for (const alarm of alarms) {
      expect(alarm.Properties).toMatchObject({ Threshold: 2, ComparisonOperator: 'GreaterThanThreshold' });
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([
        Match.objectLike({ MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'Errors' }) }) }),
      ]),
    });
  });
});
