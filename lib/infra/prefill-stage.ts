/**
 * The prefill stage: a function the API invokes asynchronously once per admitted request. Its reserved
 * concurrency is the emulated prefill pool's size in instances, so Lambda queues what the pool could not
 * run at once, as the hardware would.
 */
import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { FunctionSize } from './config';
import { DisaggFunction, LAMBDA_ENTRIES, type FunctionNetwork } from './disagg-function';

export interface PrefillStageProps {
  readonly size: FunctionSize;
  readonly environment: Readonly<Record<string, string>>;
  readonly reservedConcurrency?: number;
  /** An invocation still waiting after this long belongs to a request that has already timed out. */
  readonly maxEventAge: Duration;
  /** Where failed or expired invocations go, so they raise the dead-letter alarm instead of vanishing. */
  readonly failureQueue: sqs.IQueue;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
  readonly network?: FunctionNetwork;
  readonly tokenizerFamily?: string;
}

export class PrefillStage extends Construct {
  readonly function: DisaggFunction['function'];
  readonly logGroup: DisaggFunction['logGroup'];

  constructor(scope: Construct, id: string, props: PrefillStageProps) {
    super(scope, id);
    const fn = new DisaggFunction(this, 'Prefill', {
      entry: LAMBDA_ENTRIES.prefill,
      description: 'Disagg prefill stage: prompt -> KV blob in the KV store + handoff descriptor on the queue',
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
    this.function.configureAsyncInvoke({
      // A retry would hand off the same request twice; the request's own deadline is the recovery path.
      retryAttempts: 0,
      maxEventAge: props.maxEventAge,
      onFailure: new destinations.SqsDestination(props.failureQueue),
    });
  }

  /** Asynchronous invocation only is what the API needs; grantInvoke scopes it to this function. */
  grantInvoke(grantee: iam.IGrantable): void {
    this.function.grantInvoke(grantee);
  }
}
