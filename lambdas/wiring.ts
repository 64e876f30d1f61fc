/**
 * What every function is wired to, built once per cold start from the deployment environment:
 * the engine config, the stores and queue (AWS adapters, or Redis for KV on ElastiCache), the
 * generation backend, the clock, the Powertools logger and metrics, and OpenTelemetry tracing. Tests build one with
 * `createWiring(overrides)` over memory or Redis adapters instead.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import type { LogItemMessage } from '@aws-lambda-powertools/logger/types';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { awsClientConfig } from '../lib/adapters/aws-clients';
import { ReferenceBackend } from '../lib/adapters/backend-reference';
import { fastestCrc32c } from '../lib/adapters/checksum-native';
import { RealClock } from '../lib/adapters/clock-real';
import { MemoryEventBus } from '../lib/adapters/events-memory';
import { SqsQueue } from '../lib/adapters/queue-sqs';
import { DynamoDbClaimStore } from '../lib/adapters/claims-dynamodb';
import { DynamoDbResultStore } from '../lib/adapters/result-dynamodb';
import { tracingFromEnv, type Tracing } from '../lib/adapters/telemetry';
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
import type { Crc32c } from '../lib/core/handoff/checksum';
import type { PrefillDeps, PrefillJob } from '../lib/core/engine/prefill-stage';
import type { RequestEvent, RequestRecord } from '../lib/core/engine/record';
import type { RoutingMode } from '../lib/core/engine/routing';
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
import type * as LambdaInvokeModuleNs from './wiring-lambda';
import type { LogSink, MetricsSink } from './observability';

/**
 * The payload of the asynchronous prefill invocation: ids and sizes only. Lambda copies a failed invocation's
 * payload to its on-failure destination (and from there to a 14-day dead-letter queue), so the prompt stays in
 * the results table (`prefillJobs`, until the request's deadline) and the prefill function reads it from there.
 */
export interface PrefillInvocation {
  readonly v: 1;
  readonly requestId: string;
  readonly promptTokens: number;
  readonly mode: RoutingMode;
  /** Epoch ms after which the request ends with a timeout. */
  readonly deadlineMs: number;
}

/** A stored KV blob larger than the KV store takes (ElastiCache Serverless: DISAGG_KV_MAX_BLOB_BYTES). */
export class KvTooLargeError extends Error {
  override readonly name = 'KvTooLargeError';
  constructor(
    readonly bytes: number,
    readonly limitBytes: number,
  ) {
    super(`the KV blob is ${bytes} bytes, over the ${limitBytes} bytes the KV store takes`);
  }
}

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
  /**
   * Starts prefill for a job without waiting for it: stores the job in `prefillJobs`, then sends the prefill
   * function a {@link PrefillInvocation} (ids and sizes) with `sendPrefillInvocation`.
   */
  readonly invokePrefill: (job: PrefillJob) => Promise<void>;
  /** Admitted requests' prompts, until prefill has run (results table, under `job#`). */
  readonly prefillJobs: ResultStore<PrefillJob>;
  /** The asynchronous Lambda invoke of the prefill function. */
  readonly sendPrefillInvocation: (invocation: PrefillInvocation) => Promise<void>;
  /** Where failed work is recorded as ids and sizes (the stack's dead-letter queue). */
  readonly deadLetterQueue: Queue;
  readonly randomKey: () => string;
  /** Epoch ms with sub-ms precision: records are compared across functions. */
  readonly wallClockMs: () => number;
  readonly logger: LogSink;
  readonly metrics: MetricsSink;
  /**
   * OpenTelemetry spans of each stage, exported over OTLP/HTTP where the OTEL_* environment points (an ADOT
   * collector layer, a collector in the VPC); off when it points nowhere. Not the X-Ray SDK, whose support ends
   * in February 2027: Lambda's active tracing still records each invocation without it.
   */
  readonly tracing: Tracing;
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
/** Stored prefill jobs (prompts) share it too. */
export const PREFILL_JOB_KEY_PREFIX = 'job#';
/** A stored job outlives its request's deadline by this much, so a late retry still finds it and ends the request. */
const PREFILL_JOB_GRACE_MS = 10 * 60_000;

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
  const tracing = overrides.tracing ?? tracingFromEnv(env, { serviceName });
  const logger = overrides.logger ?? powertoolsLogSink(new Logger({ serviceName }));
  const metrics = overrides.metrics ?? new Metrics({ namespace: METRICS_NAMESPACE, serviceName });
  const family = tokenizerFamily(config.model.id);
  // The SDK clients as they are: their calls show in the stage spans' timings, not as spans of their own.
  const traced: Traced = (client) => client;
  const dynamo = (): DynamoDBDocumentClient =>
    (sdkClients.dynamo ??= DynamoDBDocumentClient.from(traced(new DynamoDBClient(awsClientConfig(env, 'dynamodb'))), {
      marshallOptions: { removeUndefinedValues: true },
    }));
  const resultsTable = (): string => required(settings.resultsTable, 'resultsTable');
  // The KV store and backend modules this function uses, loaded now so their getters stay synchronous.
  const kvFactory = overrides.kv ? null : await kvStoreFactory(settings);
  const bedrock = overrides.backend ? null : await bedrockFactory(settings);

  // Each adapter is built on first use, so a function only needs the settings for what it touches.
  // The blob limit applies to a given store too: it is the deployment's, not the store's.
  let kv = overrides.kv ? limitBlobSize(overrides.kv, settings.kvMaxBlobBytes) : undefined;
  let results = overrides.results;
  let cancellations = overrides.cancellations;
  let claims = overrides.claims;
  let queue = overrides.queue;
  let deadLetterQueue = overrides.deadLetterQueue;
  let prefillJobs = overrides.prefillJobs;
  let backend = overrides.backend;
  const sqs = (): SQSClient => (sdkClients.sqs ??= traced(new SQSClient(awsClientConfig(env, 'sqs'))));
  const jobs = (): ResultStore<PrefillJob> =>
    (prefillJobs ??= new KeyPrefixedResultStore<PrefillJob>(
      new DynamoDbResultStore<PrefillJob>({ client: dynamo(), tableName: resultsTable() }),
      PREFILL_JOB_KEY_PREFIX,
    ));
  const sendPrefillInvocation =
    overrides.sendPrefillInvocation ??
    (async (invocation: PrefillInvocation) => {
      const { invokeAsync } = await lambdaInvokeModule();
      sdkClients.lambda = await invokeAsync(
        env,
        sdkClients.lambda,
        required(settings.prefillFunction, 'prefillFunction'),
        invocation,
      );
    });
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
      if (kv) return kv;
      if (!kvFactory) throw new Error(`the ${functionKindLabel()} function's bundle carries no KV store`);
      return (kv = limitBlobSize(kvFactory(settings, env, serviceName), settings.kvMaxBlobBytes));
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
        client: sqs(),
        queueUrl: required(settings.handoffQueueUrl, 'handoffQueueUrl'),
        ...(settings.deadLetterQueueUrl ? { deadLetterQueueUrl: settings.deadLetterQueueUrl } : {}),
      }));
    },
    get deadLetterQueue() {
      return (deadLetterQueue ??= new SqsQueue({
        client: sqs(),
        queueUrl: required(settings.deadLetterQueueUrl, 'deadLetterQueueUrl'),
      }));
    },
    get prefillJobs() {
      return jobs();
    },
    sendPrefillInvocation,
    get backend() {
      if (backend) return backend;
      if (settings.backend === 'bedrock') {
        if (!bedrock) throw new Error(`the ${functionKindLabel()} function's bundle carries no Bedrock backend`);
        return (backend = bedrock(env, required(settings.bedrockModelId, 'bedrockModelId')));
      }
      // Its output words are Llama 3 tokens whatever model is emulated, from a table: no vocabulary to load.
      return (backend = new ReferenceBackend({}));
    },
    clock: overrides.clock ?? new RealClock({ timeScale: config.timeScale }),
    events: overrides.events ?? new MemoryEventBus<RequestEvent>(),
    invokePrefill:
      overrides.invokePrefill ??
      (async (job) => {
        await jobs().put(job.requestId, job, Math.max(0, job.deadlineMs - Date.now()) + PREFILL_JOB_GRACE_MS);
        try {
          await sendPrefillInvocation(prefillInvocation(job));
        } catch (err) {
          // Nobody will read the prompt: drop it now rather than at its TTL.
          await jobs()
            .delete(job.requestId)
            .catch(() => undefined);
          throw err;
        }
      }),
    randomKey: overrides.randomKey ?? (() => randomBytes(18).toString('base64url')),
    wallClockMs: overrides.wallClockMs ?? (() => performance.timeOrigin + performance.now()),
    logger,
    metrics,
    tracing,
    pollIntervalMs: overrides.pollIntervalMs ?? POLL_INTERVAL_MS,
    responseBudgetMs: overrides.responseBudgetMs ?? RESPONSE_BUDGET_MS,
  };
}

/** The invocation that carries a job: what the prefill function needs to find it, nothing of the prompt. */
export function prefillInvocation(job: PrefillJob): PrefillInvocation {
  return {
    v: 1,
    requestId: job.requestId,
    promptTokens: job.promptIds.length,
    mode: job.mode,
    deadlineMs: job.deadlineMs,
  };
}

let coldStart: Promise<Wiring> | null = null;

/** This execution environment, as a claim owner; each delivery's claim adds its own sequence number. */
const WORKER_ID = randomUUID();

/**
 * A decode claim lapses 30 s after its last renewal (renewed every 10 s while decoding), so a crashed
 * invocation's request is taken over well within the handoff queue's visibility timeout (decode timeout + 30 s).
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

/**
 * The KV blobs' checksum in prefill and decode: the native CRC-32C their bundles ship for the function's
 * architecture (lib/infra/bundling-options.ts), else the JavaScript one with a warning in the function's log.
 * Loaded on first use, once per process: the API function, which checksums nothing, never loads it.
 */
function kvChecksum(w: Wiring): Crc32c {
  return fastestCrc32c((line) => w.logger.warn(line)).crc32c;
}

export function prefillDeps(w: Wiring): PrefillDeps {
  return {
    clock: w.clock,
    backend: w.backend,
    kv: w.kv,
    queue: w.queue,
    randomKey: w.randomKey,
    crc32c: kvChecksum(w),
  };
}

export function decodeDeps(w: Wiring): DecodeDeps {
  return {
    clock: w.clock,
    backend: w.backend,
    kv: w.kv,
    cancellations: w.cancellations,
    wallClockMs: w.wallClockMs,
    crc32c: kvChecksum(w),
    claims: { store: w.claims, workerId: WORKER_ID, leaseMs: DECODE_CLAIM_LEASE_MS },
  };
}

type Traced = <T extends { send: unknown }>(client: T) => T;
type LambdaInvokeModule = typeof LambdaInvokeModuleNs;
type Env = Readonly<Record<string, string | undefined>>;
type KvFactory = (settings: DeploymentSettings, env: Env, serviceName: string) => KvStore;
type BedrockFactory = (env: Env, modelId: string) => GenerationBackend;

// The bundle-time constants (esbuild define, lib/infra/bundling-options.ts) are written out literally in each
// condition, so esbuild substitutes them, folds the condition to false where this function never takes the branch,
// and leaves that branch's module out of the bundle. Unbundled (tests, the embedded server) they are undefined and
// every branch can load.

function functionKindLabel(): string {
  return process.env.DISAGG_BUNDLE_FUNCTION ?? 'this';
}

/** The KV store module the deployment names, or null in the API function (which never touches KV). */
async function kvStoreFactory(settings: DeploymentSettings): Promise<KvFactory | null> {
  if (
    settings.kvStore === 'elasticache' &&
    process.env.DISAGG_BUNDLE_FUNCTION !== 'api' &&
    (process.env.DISAGG_BUNDLE_KV_STORE === undefined || process.env.DISAGG_BUNDLE_KV_STORE === 'elasticache')
  ) {
    const { elasticacheKvStore } = await import('./wiring-kv-elasticache');
    return (s, _env, serviceName) => elasticacheKvStore(required(s.redisUrl, 'redisUrl'), serviceName);
  }
  if (
    settings.kvStore === 's3' &&
    process.env.DISAGG_BUNDLE_FUNCTION !== 'api' &&
    (process.env.DISAGG_BUNDLE_KV_STORE === undefined || process.env.DISAGG_BUNDLE_KV_STORE === 's3')
  ) {
    const { s3KvStore } = await import('./wiring-kv-s3');
    return (s, env) => {
      const { store, client } = s3KvStore(env, required(s.kvBucket, 'kvBucket'), sdkClients.s3);
      sdkClients.s3 = client;
      return store;
    };
  }
  if (process.env.DISAGG_BUNDLE_FUNCTION === 'api') return null;
  throw new DeploymentEnvError(
    `${DEPLOYMENT_ENV.kvStore}=${settings.kvStore}, but this function was bundled for ` +
      `${DEPLOYMENT_ENV.kvStore}=${String(process.env.DISAGG_BUNDLE_KV_STORE)}: redeploy the stack after changing kvStore`,
  );
}

/** The Bedrock backend when the deployment uses it (never in the API function, which generates nothing). */
async function bedrockFactory(settings: DeploymentSettings): Promise<BedrockFactory | null> {
  if (settings.backend !== 'bedrock') return null;
  if (
    process.env.DISAGG_BUNDLE_FUNCTION !== 'api' &&
    (process.env.DISAGG_BUNDLE_BACKEND === undefined || process.env.DISAGG_BUNDLE_BACKEND === 'bedrock')
  ) {
    const { bedrockBackend } = await import('./wiring-bedrock');
    return (env, modelId) => {
      const { backend, client } = bedrockBackend(env, modelId, sdkClients.bedrock);
      sdkClients.bedrock = client;
      return backend;
    };
  }
  if (process.env.DISAGG_BUNDLE_FUNCTION === 'api') return null;
  throw new DeploymentEnvError(
    `${DEPLOYMENT_ENV.backend}=bedrock, but this function was bundled for ` +
      `${DEPLOYMENT_ENV.backend}=${String(process.env.DISAGG_BUNDLE_BACKEND)}: redeploy the stack after changing backend`,
  );
}

/** The Lambda invoke, which only the API function uses (to start prefill). */
async function lambdaInvokeModule(): Promise<LambdaInvokeModule> {
  if (process.env.DISAGG_BUNDLE_FUNCTION === undefined || process.env.DISAGG_BUNDLE_FUNCTION === 'api') {
    return import('./wiring-lambda');
  }
  throw new Error(
    `the ${functionKindLabel()} function's bundle carries no Lambda client: only the API invokes prefill`,
  );
}

/** Refuses blobs over the store's limit with KvTooLargeError, before any bytes are sent. */
function limitBlobSize(store: KvStore, limitBytes: number | null): KvStore {
  if (limitBytes === null) return store;
  return {
    put: (key, bytes, ttlMs) =>
      bytes.length > limitBytes
        ? Promise.reject(new KvTooLargeError(bytes.length, limitBytes))
        : store.put(key, bytes, ttlMs),
    get: (key) => store.get(key),
    delete: (key) => store.delete(key),
    count: () => store.count(),
  };
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
