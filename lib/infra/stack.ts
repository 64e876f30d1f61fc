/**
 * The whole pipeline as one stack: API -> prefill (async invoke) -> handoff queue + KV store -> decode ->
 * result store, with observability. Each concern is one construct; this file wires them and sets the
 * environment contract (DEPLOYMENT_ENV) every handler parses at cold start.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { ENGINE_DEFAULTS } from '../core/engine/config';
import { DEPLOYMENT_ENV, readDeploymentEnv } from '../core/engine/deployment-env';
import { grantBedrockInvoke } from './bedrock-access';
import { DisaggConfigError, poolConcurrency, type DisaggConfig } from './config';
import { DecodeStage } from './decode-stage';
import type { DisaggFunction } from './disagg-function';
import { InferenceApi } from './inference-api';
import { KvHandoff } from './kv-handoff';
import { Observability } from './observability';
import { PrefillStage } from './prefill-stage';
import { ResultStore } from './result-store';
import { kvCacheLimits, type KvCacheLimits } from './sizing';
import { bundledTokenizerFamily } from './tokenizer-family';

export interface DisaggStackProps extends StackProps {
  readonly config: DisaggConfig;
}

/** `Disagg-aws`, `Disagg-localstack`: one stack per profile, so both can live in one account. */
export function stackName(config: DisaggConfig): string {
  return `Disagg-${config.profile}`;
}

export class DisaggStack extends Stack {
  readonly config: DisaggConfig;
  readonly results: ResultStore;
  readonly handoff: KvHandoff;
  readonly prefill: PrefillStage;
  readonly decode: DecodeStage;
  readonly api: InferenceApi;
  readonly observability: Observability;
  /** Reserved concurrency per stage, derived from the emulated pools (undefined when not reserved). */
  readonly reservedConcurrency: { readonly prefill?: number; readonly decode?: number };
  /** What the KV cache is sized for (kvStore=elasticache), from the configured load (sizing.ts). */
  readonly cacheLimits: KvCacheLimits;

  constructor(scope: Construct, id: string, props: DisaggStackProps) {
    super(scope, id, props);
    const config = props.config;
    this.config = config;
    const removalPolicy = config.removalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const logs = { logRetentionDays: config.logRetentionDays, removalPolicy };
    // Every function bundles only the served model's tokenizer vocabulary.
    const bundling = { tokenizerFamily: bundledTokenizerFamily(config.model) };
    this.reservedConcurrency = config.reserveConcurrency
      ? { prefill: poolConcurrency(config.prefillPool), decode: poolConcurrency(config.decodePool) }
      : {};

    this.cacheLimits = kvCacheLimits(config, poolConcurrency(config.decodePool));
    this.results = new ResultStore(this, 'Results', {
      pointInTimeRecovery: config.pointInTimeRecovery,
      removalPolicy,
    });
    this.handoff = new KvHandoff(this, 'Handoff', {
      kvStore: config.kvStore,
      maxReceiveCount: config.maxReceiveCount,
      decodeTimeout: Duration.seconds(config.decode.timeoutSeconds),
      removalPolicy,
      bedrock: config.backend === 'bedrock',
      availabilityZones: config.availabilityZones,
      cacheLimits: this.cacheLimits,
    });
    const network = this.handoff.network?.functionNetwork;

    const common: Record<string, string> = {
      [DEPLOYMENT_ENV.model]: config.model,
      [DEPLOYMENT_ENV.prefillPool]: config.prefillPool,
      [DEPLOYMENT_ENV.decodePool]: config.decodePool,
      [DEPLOYMENT_ENV.colocatedPool]: config.colocatedPool,
      [DEPLOYMENT_ENV.timeScale]: String(config.timeScale),
      [DEPLOYMENT_ENV.decodeBatch]: String(config.decodeBatch),
      ...(config.stack ? { [DEPLOYMENT_ENV.stack]: config.stack } : {}),
      [DEPLOYMENT_ENV.backend]: config.backend,
      ...(config.bedrockModelId ? { [DEPLOYMENT_ENV.bedrockModelId]: config.bedrockModelId } : {}),
      [DEPLOYMENT_ENV.resultsTable]: this.results.table.tableName,
      [DEPLOYMENT_ENV.handoffQueueUrl]: this.handoff.queue.queueUrl,
      [DEPLOYMENT_ENV.maxPromptTokens]: String(config.maxPromptTokens),
      [DEPLOYMENT_ENV.maxOutputTokens]: String(config.maxOutputTokens),
      [DEPLOYMENT_ENV.deadLetterQueueUrl]: this.handoff.deadLetterQueue.queueUrl,
      [DEPLOYMENT_ENV.maxReceiveCount]: String(config.maxReceiveCount),
      ...this.handoff.environment,
    };

    this.prefill = new PrefillStage(this, 'PrefillStage', {
      size: config.prefill,
      environment: checked(common),
      reservedConcurrency: this.reservedConcurrency.prefill,
      // Past the request's deadline an invocation is for a request that is over; the failure handler ends it.
      maxEventAge: Duration.millis(Math.max(60_000, ENGINE_DEFAULTS.requestTimeoutMs)),
      retryAttempts: config.prefillRetryAttempts,
      deadLetterQueue: this.handoff.deadLetterQueue,
      network,
      ...logs,
      ...bundling,
    });
    this.decode = new DecodeStage(this, 'DecodeStage', {
      size: config.decode,
      environment: checked(common),
      queue: this.handoff.queue,
      batchSize: config.decodeBatch,
      reservedConcurrency: this.reservedConcurrency.decode,
      network,
      ...logs,
      ...bundling,
    });
    this.api = new InferenceApi(this, 'InferenceApi', {
      size: config.api,
      streamTimeoutSeconds: config.apiStreamTimeoutSeconds,
      cloudWatchRole: config.apiGatewayCloudWatchRole,
      environment: checked({
        ...common,
        [DEPLOYMENT_ENV.prefillFunction]: this.prefill.function.functionName,
        ...(config.corsOrigins.length > 0 ? { [DEPLOYMENT_ENV.corsOrigins]: config.corsOrigins.join(',') } : {}),
      }),
      // API Gateway response streaming is an AWS feature LocalStack does not emulate; there SSE is buffered.
      streaming: config.profile === 'aws',
      apiKeyRequired: config.apiKeyRequired,
      corsOrigins: config.corsOrigins,
      throttle: { rateLimit: config.throttleRateLimit, burstLimit: config.throttleBurstLimit },
      network,
      ...logs,
      ...bundling,
    });

    this.grantDataAccess(config);

    this.observability = new Observability(this, 'Observability', {
      dashboardName: `${this.stackName}-pipeline`,
      queue: this.handoff.queue,
      deadLetterQueue: this.handoff.deadLetterQueue,
      functions: {
        Api: this.api.function,
        ...(this.api.streamFunction ? { ApiStream: this.api.streamFunction } : {}),
        Prefill: this.prefill.function,
        PrefillFailures: this.prefill.failureFunction,
        Decode: this.decode.function,
      },
      api: this.api.api,
      errorRateAlarmPercent: config.errorRateAlarmPercent,
    });

    this.addOutputs();
  }

  /** Least privilege, one statement per need; the tests walk every policy to hold this line. */
  private grantDataAccess(config: DisaggConfig): void {
    const all: DisaggFunction['function'][] = [
      this.prefill.function,
      this.prefill.failureFunction,
      this.decode.function,
      ...this.api.functions,
    ];
    for (const fn of all) this.results.grantReadWrite(fn);
    // Only the stages move KV blobs; the API and the failure handler never touch them.
    for (const fn of [this.prefill.function, this.decode.function]) {
      this.handoff.grantKvAccess(fn);
      const finding = this.handoff.kvObjectWildcardFinding;
      if (finding) {
        Validations.of(fn).acknowledge({
          id: finding,
          reason:
            'KV blobs live under random per-request keys in a bucket that holds nothing else; the grant is get, put and delete on the objects of that one bucket.',
        });
      }
    }
    // Prefill hands off. Decode dead-letters a descriptor on its last receive as ids and sizes, never the prompt
    // (the failure handler does the same for prefill, with the grant its own on-failure destination carries).
    this.prefill.function.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.handoff.queue.queueArn] }),
    );
    this.decode.function.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.handoff.deadLetterQueue.queueArn] }),
    );
    for (const fn of this.api.functions) {
      // Invoking the unqualified function only: no versions or aliases, so no `:*` resource.
      fn.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.prefill.function.functionArn] }),
      );
      // Admission reads the handoff queue's depth.
      fn.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['sqs:GetQueueAttributes'], resources: [this.handoff.queue.queueArn] }),
      );
    }
    if (config.backend === 'bedrock' && config.bedrockModelId) {
      for (const fn of [this.prefill.function, this.decode.function]) {
        grantBedrockInvoke(fn, fn, config.bedrockModelId);
      }
    }
  }

  private addOutputs(): void {
    new CfnOutput(this, 'ApiUrl', { value: this.api.api.url, description: 'Stage URL of the API (/healthz, /v1/...)' });
    new CfnOutput(this, 'OpenAiBaseUrl', {
      value: `${this.api.api.url}v1`,
      description: 'base_url for OpenAI-compatible clients',
    });
    if (this.api.apiKey) {
      new CfnOutput(this, 'ApiKeyId', {
        value: this.api.apiKey.keyId,
        description: 'API key id (not the value): aws apigateway get-api-key --api-key <id> --include-value',
      });
    }
    new CfnOutput(this, 'HandoffQueueUrl', { value: this.handoff.queue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.handoff.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'ResultsTableName', { value: this.results.table.tableName });
    if (this.handoff.bucket) new CfnOutput(this, 'KvBucketName', { value: this.handoff.bucket.bucketName });
    if (this.handoff.cache) {
      new CfnOutput(this, 'KvCacheEndpoint', { value: this.handoff.cache.attrEndpointAddress });
    }
    new CfnOutput(this, 'DashboardName', { value: this.observability.dashboard.dashboardName });
  }
}

/**
 * Parses a function's environment the way its handler will at cold start, so a deployment whose handlers
 * would refuse their config (a model that does not fit a pool, say) fails synth instead.
 */
function checked(environment: Record<string, string>): Record<string, string> {
  try {
    readDeploymentEnv(environment);
  } catch (error) {
    throw new DisaggConfigError(`invalid deployment: ${error instanceof Error ? error.message : String(error)}`);
  }
  return environment;
}
