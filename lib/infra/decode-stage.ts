/**
 * The decode stage: a function fed by the handoff queue in batches (the decode batch), reporting
 * per-message failures so one poison descriptor does not retry the whole batch. Its reserved concurrency
 * is the number of emulated decode systems.
 */
import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { FunctionSize } from './config';
import { DisaggFunction, LAMBDA_ENTRIES, type FunctionNetwork } from './disagg-function';

/** Short, so a lone request is not held back waiting for a full batch. */
export const DECODE_BATCHING_WINDOW = Duration.seconds(1);

export interface DecodeStageProps {
  readonly size: FunctionSize;
  readonly environment: Readonly<Record<string, string>>;
  readonly queue: sqs.IQueue;
  readonly batchSize: number;
  readonly reservedConcurrency?: number;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
  readonly network?: FunctionNetwork;
  readonly tokenizerFamily?: string;
}

export class DecodeStage extends Construct {
  readonly function: DisaggFunction['function'];
  readonly logGroup: DisaggFunction['logGroup'];
  readonly eventSource: sources.SqsEventSource;

  constructor(scope: Construct, id: string, props: DecodeStageProps) {
    super(scope, id);
    const fn = new DisaggFunction(this, 'Decode', {
      entry: LAMBDA_ENTRIES.decode,
      description: 'Disagg decode stage: handoff descriptors -> KV blob -> batched token generation -> results',
      size: props.size,
      environment: props.environment,
      reservedConcurrency: props.reservedConcurrency,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      network: props.network,
      tokenizerFamily: props.tokenizerFamily,
    });
    this.function = fn.function;
    this.logGroup = fn.logGroup;
    this.eventSource = new sources.SqsEventSource(props.queue, {
      batchSize: props.batchSize,
      maxBatchingWindow: DECODE_BATCHING_WINDOW,
      reportBatchItemFailures: true,
      // Pollers stay within the reserved concurrency, so throttling never burns receives toward the DLQ (minimum 2).
      maxConcurrency:
        props.reservedConcurrency !== undefined && props.reservedConcurrency >= 2
          ? props.reservedConcurrency
          : undefined,
    });
    this.function.addEventSource(this.eventSource);
  }
}
