/**
 * What an operator watches: emulated against measured latency and requests by outcome (the handlers' custom
 * metrics, under the embedded server's Prometheus names), the handoff
 * queue's depth and age, the dead-letter queue, and function errors; alarms on any dead letter and on a
 * function's error rate.
 */
import { Duration } from 'aws-cdk-lib';
import type * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  LATENCY_METRIC_NAMES,
  METRIC_DIMENSIONS,
  METRIC_NAMES,
  METRIC_NAMESPACE,
  METRIC_SERVICE,
  type MetricName,
} from './metric-names';

const PERIOD = Duration.minutes(1);

export interface ObservabilityProps {
  readonly dashboardName: string;
  readonly queue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  /** Functions by display name, in dashboard order. */
  readonly functions: Readonly<Record<string, lambda.IFunction>>;
  readonly api: apigateway.RestApi;
  /** Percent of a function's invocations that fail before its alarm fires. */
  readonly errorRateAlarmPercent: number;
}

export class Observability extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly deadLetterAlarm: cloudwatch.Alarm;
  /** One per function, by display name. */
  readonly errorRateAlarms: Readonly<Record<string, cloudwatch.Alarm>>;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const custom = (
      name: MetricName,
      statistic: string,
      dimensions: Record<string, string> = {},
      label = `${name} ${statistic}`,
    ): cloudwatch.Metric =>
      new cloudwatch.Metric({
        namespace: METRIC_NAMESPACE,
        metricName: name,
        // Powertools Metrics adds the service as the default dimension; the handlers add clock or outcome.
        dimensionsMap: { service: METRIC_SERVICE, ...dimensions },
        statistic,
        period: PERIOD,
        label,
      });
    /** A latency's p50 and p90, emulated and measured side by side (in ms: the handlers emit seconds). */
    const latency = (key: keyof typeof LATENCY_METRIC_NAMES): cloudwatch.IMetric[] =>
      (['emulated', 'measured'] as const).flatMap((clock) =>
        ['p50', 'p90'].map((p) => {
          // Ids are unique within a graph.
          const id = `${key}${clock}${p}`;
          return new cloudwatch.MathExpression({
            expression: `${id} * 1000`,
            usingMetrics: { [id]: custom(LATENCY_METRIC_NAMES[key], p, { [METRIC_DIMENSIONS.clock]: clock }) },
            period: PERIOD,
            label: `${clock} ${p}`,
          });
        }),
      );

    const deadLetters = props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: PERIOD,
      statistic: 'Maximum',
    });
    this.deadLetterAlarm = new cloudwatch.Alarm(this, 'DeadLetterAlarm', {
      alarmDescription: 'A handoff descriptor or prefill invocation failed for good: inspect the dead-letter queue.',
      metric: deadLetters,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    const errorRateAlarms: Record<string, cloudwatch.Alarm> = {};
    const errorRates: cloudwatch.IMetric[] = [];
    for (const [name, fn] of Object.entries(props.functions)) {
      // Ids are unique per function because all the rates share one graph.
      const key = `${name.charAt(0).toLowerCase()}${name.slice(1)}`;
      const errorRate = new cloudwatch.MathExpression({
        expression: `IF(${key}Invocations > 0, 100 * ${key}Errors / ${key}Invocations, 0)`,
        usingMetrics: {
          [`${key}Errors`]: fn.metricErrors({ period: PERIOD, statistic: 'Sum' }),
          [`${key}Invocations`]: fn.metricInvocations({ period: PERIOD, statistic: 'Sum' }),
        },
        period: PERIOD,
        label: `${name} error %`,
      });
      errorRates.push(errorRate);
      errorRateAlarms[name] = new cloudwatch.Alarm(this, `${name}ErrorRateAlarm`, {
        alarmDescription: `The ${name} function fails more than ${props.errorRateAlarmPercent}% of its invocations.`,
        metric: errorRate,
        threshold: props.errorRateAlarmPercent,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        // Three bad minutes out of five: one cold-start failure does not page anyone.
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }
    this.errorRateAlarms = errorRateAlarms;

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { dashboardName: props.dashboardName });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'TTFT (ms): emulated vs measured', left: latency('ttft'), width: 8 }),
      new cloudwatch.GraphWidget({ title: 'TPOT (ms): emulated vs measured', left: latency('tpot'), width: 8 }),
      new cloudwatch.GraphWidget({ title: 'End-to-end (ms): emulated vs measured', left: latency('e2e'), width: 8 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Requests by outcome',
        left: (['completed', 'failed', 'cancelled', 'rejected'] as const).map((outcome) =>
          custom(METRIC_NAMES.requests, 'Sum', { [METRIC_DIMENSIONS.outcome]: outcome }, outcome),
        ),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'KV handoff (ms): emulated vs measured',
        left: latency('transfer'),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'KV bytes handed off, and tokens',
        left: [custom(METRIC_NAMES.kvHandoffBytes, 'Sum', {}, 'KV bytes')],
        right: [
          custom(METRIC_NAMES.promptTokens, 'Sum', {}, 'prompt tokens'),
          custom(METRIC_NAMES.generationTokens, 'Sum', {}, 'output tokens'),
        ],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Handoff queue',
        left: [props.queue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum' })],
        right: [props.queue.metricApproximateAgeOfOldestMessage({ period: PERIOD, statistic: 'Maximum' })],
        width: 8,
      }),
      new cloudwatch.AlarmWidget({ title: 'Dead-letter queue depth', alarm: this.deadLetterAlarm, width: 8 }),
      new cloudwatch.GraphWidget({
        title: 'API Gateway',
        left: [props.api.metricCount({ period: PERIOD }), props.api.metricServerError({ period: PERIOD })],
        right: [props.api.metricLatency({ period: PERIOD, statistic: 'p90' })],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Lambda errors',
        left: Object.entries(props.functions).map(([name, fn]) =>
          fn.metricErrors({ period: PERIOD, statistic: 'Sum', label: name }),
        ),
        width: 12,
      }),
      new cloudwatch.GraphWidget({ title: 'Lambda error rate (%)', left: errorRates, width: 12 }),
    );
  }
}
