/**
 * The prefill stage: a function the API invokes asynchronously once per admitted request, and the function its
 * failed invocations go to. Lambda retries a failed or timed-out prefill invocation; when the retries are spent
 * or the event waited past its maximum age, the on-failure destination ends the request's record `failed`, so a
 * client never polls a request nobody will finish, and dead-letters the request's ids and sizes (never its prompt).
 */
import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { FunctionSize } from './config';
import { DisaggFunction, LAMBDA_ENTRIES, type FunctionNetwork } from './disagg-function';

/** The failure handler only reads and writes one record and sends one message. */
const FAILURE_HANDLER_SIZE: FunctionSize = { memoryMb: 256, timeoutSeconds: 30 };

/** Lambda's defaults for the failure handler's own invocations: two retries, then the dead-letter queue. */
const FAILURE_HANDLER_RETRIES = 2;

export interface PrefillStageProps {
  readonly size: FunctionSize;
  readonly environment: Readonly<Record<string, string>>;
  readonly reservedConcurrency?: number;
  /** An invocation still waiting after this long belongs to a request that has already timed out. */
  readonly maxEventAge: Duration;
  /** Lambda's retries of a failed invocation; each is idempotent (the prefill function claims the request). */
  readonly retryAttempts: number;
  /** Where the failure handler's own failures go, so they raise the dead-letter alarm instead of vanishing. */
  readonly deadLetterQueue: sqs.IQueue;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
  readonly network?: FunctionNetwork;
  readonly tokenizerFamily?: string;
}

export class PrefillStage extends Construct {
  readonly function: DisaggFunction['function'];
  readonly logGroup: DisaggFunction['logGroup'];
  /** The on-failure destination of every prefill invocation (handler `failureHandler`). */
  readonly failureFunction: DisaggFunction['function'];

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

    // Outside the VPC: it touches only the results table and the dead-letter queue, through public endpoints.
    this.failureFunction = new DisaggFunction(this, 'PrefillFailures', {
      entry: LAMBDA_ENTRIES.prefill,
      handler: 'failureHandler',
      description:
        'Disagg prefill failures: ends the record of a request whose prefill never finished, dead-letters its ids',
      size: FAILURE_HANDLER_SIZE,
      environment: props.environment,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
      tokenizerFamily: props.tokenizerFamily,
    }).function;
    this.failureFunction.configureAsyncInvoke({
      retryAttempts: FAILURE_HANDLER_RETRIES,
      maxEventAge: Duration.hours(1),
      onFailure: new destinations.SqsDestination(props.deadLetterQueue),
    });

    const failureFunction = this.failureFunction;
    this.function.configureAsyncInvoke({
      retryAttempts: props.retryAttempts,
      maxEventAge: props.maxEventAge,
      // LambdaDestination would also grant `<arn>:*` (every version and alias); only the unqualified function is invoked.
      onFailure: {
        bind: (_scope, source) => {
          source.addToRolePolicy(
            new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [failureFunction.functionArn] }),
          );
          return { destination: failureFunction.functionArn };
        },
      },
    });
  }

  /** Asynchronous invocation only is what the API needs; grantInvoke scopes it to this function. */
  grantInvoke(grantee: iam.IGrantable): void {
    this.function.grantInvoke(grantee);
  }
}
