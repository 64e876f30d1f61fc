/**
 * What every function is wired to, built once per cold start from the deployment environment:
 * the engine config, the stores and queue (AWS adapters, or Redis for KV on ElastiCache), the
 * generation backend, the clock and the Powertools logger, metrics and tracer. Tests build one with
 * `createWiring(overrides)` over memory or Redis adapters instead.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import type { LogItemMessage } from '@aws-lambda-powertools/logger/types';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { awsClientConfig, s3ClientConfig } from '../lib/adapters/aws-clients';
import { BedrockBackend } from '../lib/adapters/backend-bedrock';
import { ReferenceBackend } from '../lib/adapters/backend-reference';
import { RealClock } from '../lib/adapters/clock-real';
import { MemoryEventBus } from '../lib/adapters/events-memory';
import { RedisKvStore } from '../lib/adapters/kv-redis';
import { S3KvStore } from '../lib/adapters/kv-s3';
import { SqsQueue } from '../lib/adapters/queue-sqs';
import { createRedis } from '../lib/adapters/redis-connection';
import { DynamoDbClaimStore } from '../lib/adapters/claims-dynamodb';
import { DynamoDbResultStore } from '../lib/adapters/result-dynamodb';
import { tokenizerFamily, type TokenizerFamily } from '../lib/adapters/tokenizers';
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_TOKENS } from '../lib/core/api/api-defaults';
import type { EngineConfig } from '../lib/core/engine/config';
import type { CancellationMarker, DecodeDeps } from '../lib/core/engine/decode-stage';
import {
  DEPLOYMENT_ENV,
  DeploymentEnvError,
  readDeploymentEnv,
  type DeploymentSettings,
} from '../lib/core/engine/deployment-env';
import type { ApiLimits } from '../lib/core/api/limits';
import type { PrefillDeps, PrefillJob } from '../lib/core/engine/prefill-stage';
import type { RequestEvent, RequestRecord } from '../lib/core/engine/record';
import type { TrackerDeps } from '../lib/core/engine/tracker';
import type {
  ClaimStore,
  Clock,
  EventBus,
  GenerationBackend,
  KvStore,
  Queue,
  ResultStore,
  Tokenizer,
} from '../lib/core/ports';
import { METRICS_NAMESPACE } from './metric-names';
import type { LogSink, MetricsSink } from './observability';

export interface Wiring {
  readonly settings: DeploymentSettings;
  readonly config: EngineConfig;
  readonly limits: ApiLimits;
  readonly maxBodyBytes: number;
  /** Family of the configured model's tokenizer, which counts prompt tokens. */
  readonly tokenizerFamily: TokenizerFamily;
  /**
   * A tokenizer to count prompts with instead of the family's (tests); omitted, the API function loads the
   * family's on first use. Only the API counts prompts, so the wiring never imports a vocabulary itself.
   */
  readonly promptTokenizer?: () => Promise<Tokenizer>;
  readonly kv: KvStore;
  readonly results: ResultStore<RequestRecord>;
  readonly cancellations: ResultStore<CancellationMarker>;
  /** Which decode invocation holds which request (conditional writes on the results table, under `claim#`). */
  readonly claims: ClaimStore;
  readonly queue: Queue;
  readonly backend: GenerationBackend;
  readonly clock: Clock;
  /** Across functions nobody subscribes (the API polls the result store); trackers still publish to it. */
  readonly events: EventBus<RequestEvent>;
  /** Starts the prefill function for a job without waiting for it (an asynchronous Lambda invoke). */
  readonly invokePrefill: (job: PrefillJob) => Promise<void>;
  readonly randomKey: () => string;
  /** Epoch ms with sub-ms precision: records are compared across functions. */
  readonly wallClockMs: () => number;
  readonly logger: LogSink;
  readonly metrics: MetricsSink;
  readonly tracer: Tracer;
  /** How often the API reads the record while it waits for a request. */
  readonly pollIntervalMs: number;
  /** How long a buffered API response waits before answering 202 (under the 29 s REST integration timeout). */
  readonly responseBudgetMs: number;
}

export type WiringOverrides = Partial<Omit<Wiring, 'settings' | 'config' | 'tokenizerFamily'>> & {
  /** The environment to read the deployment settings from (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Powertools service name when POWERTOOLS_SERVICE_NAME is not set. */
  readonly serviceName?: string;
};

/** Cancellation markers share the results table, under their own key prefix. */
export const CANCEL_KEY_PREFIX = 'cancel#';

/** Leaves margin under API Gateway's 29 s integration timeout for the final read and the response. */
const RESPONSE_BUDGET_MS = 25_000;
const POLL_INTERVAL_MS = 100;

// SDK and Redis clients: one per process, made on first use and reused by every invocation.
let sdkClients: {
  sqs?: SQSClient;
  s3?: S3Client;
  dynamo?: DynamoDBDocumentClient;
  lambda?: LambdaClient;
  bedrock?: BedrockRuntimeClient;
} = {};

export async function createWiring(overrides: WiringOverrides = {}): Promise<Wiring> {
  const env = overrides.env ?? process.env;
  const settings = readDeploymentEnv(env);
  const config = settings.engine;
  const serviceName = env.POWERTOOLS_SERVICE_NAME ?? overrides.serviceName ?? 'disagg';
  const tracer = overrides.tracer ?? new Tracer({ serviceName });
  const logger = overrides.logger ?? powertoolsLogSink(new Logger({ serviceName }));
  const metrics = overrides.metrics ?? new Metrics({ namespace: METRICS_NAMESPACE, serviceName });
  const family = tokenizerFamily(config.model.id);
  const traced = <T extends { send: unknown }>(client: T): T => tracer.captureAWSv3Client(client);
  const dynamo = (): DynamoDBDocumentClient =>
    (sdkClients.dynamo ??= DynamoDBDocumentClient.from(traced(new DynamoDBClient(awsClientConfig(env))), {
      marshallOptions: { removeUndefinedValues: true },
    }));
  const resultsTable = (): string => required(settings.resultsTable, 'resultsTable');

  // Each adapter is built on first use, so a function only needs the settings for what it touches.
  let kv = overrides.kv;
  let results = overrides.results;
  let cancellations = overrides.cancellations;
  let claims = overrides.claims;
  let queue = overrides.queue;
  let backend = overrides.backend;
  return {
    settings,
    config,
    limits: {
      maxPromptTokens: settings.maxPromptTokens,
      maxOutputTokens: settings.maxOutputTokens,
      defaultMaxTokens: DEFAULT_MAX_TOKENS,
    },
    maxBodyBytes: overrides.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    tokenizerFamily: family,
    ...(overrides.promptTokenizer ? { promptTokenizer: overrides.promptTokenizer } : {}),
    get kv() {
      return (kv ??= buildKvStore(settings, env, serviceName, traced));
    },
    get results() {
      return (results ??= new DynamoDbResultStore<RequestRecord>({ client: dynamo(), tableName: resultsTable() }));
    },
    get cancellations() {
      return (cancellations ??= new KeyPrefixedResultStore<CancellationMarker>(
        new DynamoDbResultStore<CancellationMarker>({ client: dynamo(), tableName: resultsTable() }),
        CANCEL_KEY_PREFIX,
      ));
    },
    get claims() {
      return (claims ??= new DynamoDbClaimStore({ client: dynamo(), tableName: resultsTable() }));
    },
    get queue() {
      return (queue ??= new SqsQueue({
        client: (sdkClients.sqs ??= traced(new SQSClient(awsClientConfig(env)))),
        queueUrl: required(settings.handoffQueueUrl, 'handoffQueueUrl'),
        ...(settings.deadLetterQueueUrl ? { deadLetterQueueUrl: settings.deadLetterQueueUrl } : {}),
      }));
    },
    get backend() {
      return (backend ??=
        settings.backend === 'bedrock'
          ? new BedrockBackend({
              client: (sdkClients.bedrock ??= traced(new BedrockRuntimeClient(awsClientConfig(env)))),
              modelId: required(settings.bedrockModelId, 'bedrockModelId'),
            })
          : // Its output words are Llama 3 tokens whatever model is emulated, from a table: no vocabulary to load.
            new ReferenceBackend({}));
    },
    clock: overrides.clock ?? new RealClock({ timeScale: config.timeScale }),
    events: overrides.events ?? new MemoryEventBus<RequestEvent>(),
    invokePrefill:
      overrides.invokePrefill ??
      (async (job) => {
        const client = (sdkClients.lambda ??= traced(new LambdaClient(awsClientConfig(env))));
        await client.send(
          new InvokeCommand({
            FunctionName: required(settings.prefillFunction, 'prefillFunction'),
            InvocationType: 'Event',
            Payload: new TextEncoder().encode(JSON.stringify(job)),
          }),
        );
      }),
    randomKey: overrides.randomKey ?? (() => randomBytes(18).toString('base64url')),
    wallClockMs: overrides.wallClockMs ?? (() => performance.timeOrigin + performance.now()),
    logger,
    metrics,
    tracer,
    pollIntervalMs: overrides.pollIntervalMs ?? POLL_INTERVAL_MS,
    responseBudgetMs: overrides.responseBudgetMs ?? RESPONSE_BUDGET_MS,
  };
}

let coldStart: Promise<Wiring> | null = null;

/** This execution environment, as a claim owner; each delivery's claim adds its own sequence number. */
const WORKER_ID = randomUUID();

/**
 * A decode claim lapses 30 s after its last renewal (renewed every 10 s while decoding), so a crashed
 * invocation's request is taken over well within the handoff queue's visibility timeout (6 x 120 s).
 */
const DECODE_CLAIM_LEASE_MS = 30_000;

/** The process's wiring from `process.env`, built on the first invocation and kept for the next ones. */
export function defaultWiring(serviceName: string): () => Promise<Wiring> {
  return () => {
    coldStart ??= createWiring({ serviceName }).catch((err: unknown) => {
      // A bad environment is retried on the next invocation rather than cached as a failure.
      coldStart = null;
      throw err;
    });
    return coldStart;
  };
}

/** Forgets the cached clients (tests that build wirings against different endpoints). */
export function resetClients(): void {
  sdkClients = {};
}

export function trackerDeps(w: Wiring): TrackerDeps {
  return { results: w.results, events: w.events, wallClockMs: w.wallClockMs };
}

export function prefillDeps(w: Wiring): PrefillDeps {
  return { clock: w.clock, backend: w.backend, kv: w.kv, queue: w.queue, randomKey: w.randomKey };
}

export function decodeDeps(w: Wiring): DecodeDeps {
  return {
    clock: w.clock,
    backend: w.backend,
    kv: w.kv,
    cancellations: w.cancellations,
    wallClockMs: w.wallClockMs,
    claims: { store: w.claims, workerId: WORKER_ID, leaseMs: DECODE_CLAIM_LEASE_MS },
  };
}

function buildKvStore(
  settings: DeploymentSettings,
  env: Readonly<Record<string, string | undefined>>,
  serviceName: string,
  traced: <T extends { send: unknown }>(client: T) => T,
): KvStore {
  if (settings.kvStore === 'elasticache') {
    const redis = createRedis({
      url: required(settings.redisUrl, 'redisUrl'),
      connectionName: serviceName,
      // Connect on the first command: a function that never touches KV never opens a socket.
      lazyConnect: true,
    });
    return new RedisKvStore({ redis });
  }
  const client = (sdkClients.s3 ??= traced(new S3Client(s3ClientConfig(env))));
  return new S3KvStore({ client, bucket: required(settings.kvBucket, 'kvBucket') });
}

/** Attributes become top-level keys of the structured log line. */
function powertoolsLogSink(logger: Logger): LogSink {
  return {
    debug: (message, attributes = {}) => logger.debug({ message, ...attributes } as LogItemMessage),
    info: (message, attributes = {}) => logger.info({ message, ...attributes } as LogItemMessage),
    warn: (message, attributes = {}) => logger.warn({ message, ...attributes } as LogItemMessage),
    error: (message, attributes = {}) => logger.error({ message, ...attributes } as LogItemMessage),
  };
}

function required(value: string | null, key: keyof typeof DEPLOYMENT_ENV): string {
  if (value === null) throw new DeploymentEnvError(`${DEPLOYMENT_ENV[key]} must be set for this function`);
  return value;
}

/** A view of a result store whose ids all carry a prefix, so two kinds of item share one table. */
class KeyPrefixedResultStore<T> implements ResultStore<T> {
  constructor(
    private readonly inner: ResultStore<T>,
    private readonly prefix: string,
  ) {}

  put(id: string, record: T, ttlMs: number): Promise<void> {
    return this.inner.put(this.prefix + id, record, ttlMs);
  }

  get(id: string): Promise<T | null> {
    return this.inner.get(this.prefix + id);
  }

  delete(id: string): Promise<void> {
    return this.inner.delete(this.prefix + id);
  }
}
