/**
 * The contract between the CDK stack (which sets these environment variables on each function)
 * and the Lambda handlers (which read them). Pure data and parsing: infra imports it as a config
 * type, the handlers parse the environment with it once per cold start.
 */
import { engineConfig, type EngineConfig, type KvFailurePolicy } from './config';
import { CLOCK_LABEL, LATENCY_METRICS, METRIC, type LatencyKey } from './metric-catalogue';

export const DEPLOYMENT_ENV = {
  model: 'DISAGG_MODEL',
  prefillPool: 'DISAGG_PREFILL_POOL',
  decodePool: 'DISAGG_DECODE_POOL',
  /** Empty or "none" disables colocated routing. */
  colocatedPool: 'DISAGG_COLOCATED_POOL',
  timeScale: 'DISAGG_TIME_SCALE',
  decodeBatch: 'DISAGG_DECODE_BATCH',
  colocateBelow: 'DISAGG_COLOCATE_BELOW',
  maxPrefillQueue: 'DISAGG_MAX_PREFILL_QUEUE',
  maxDecodeQueue: 'DISAGG_MAX_DECODE_QUEUE',
  kvFailurePolicy: 'DISAGG_KV_FAILURE_POLICY',
  /** Serving stacks, one per device family (empty: the newest of each). */
  stack: 'DISAGG_STACK',
  /** 'elasticache' (Valkey over TLS) or 's3'. */
  kvStore: 'DISAGG_KV_STORE',
  /** rediss://host:port of the ElastiCache Serverless (Valkey) endpoint, when kvStore=elasticache. */
  redisUrl: 'DISAGG_REDIS_URL',
  /** S3 bucket for KV blobs, when kvStore=s3. */
  kvBucket: 'DISAGG_KV_BUCKET',
  /** The largest KV blob the KV store accepts (bytes); a larger one ends its request failed, kv_too_large. */
  kvMaxBlobBytes: 'DISAGG_KV_MAX_BLOB_BYTES',
  handoffQueueUrl: 'DISAGG_HANDOFF_QUEUE_URL',
  deadLetterQueueUrl: 'DISAGG_DLQ_URL',
  /** Receives of a descriptor before the decode function dead-letters it (the queue redrives one later). */
  maxReceiveCount: 'DISAGG_MAX_RECEIVE_COUNT',
  resultsTable: 'DISAGG_RESULTS_TABLE',
  /** Name of the prefill function the API invokes asynchronously. */
  prefillFunction: 'DISAGG_PREFILL_FUNCTION',
  /** 'reference' or 'bedrock'. */
  backend: 'DISAGG_BACKEND',
  bedrockModelId: 'DISAGG_BEDROCK_MODEL_ID',
  maxPromptTokens: 'DISAGG_MAX_PROMPT_TOKENS',
  maxOutputTokens: 'DISAGG_MAX_OUTPUT_TOKENS',
  /** Origins browser pages may call the API from, comma-separated, or `*` (the API functions only). */
  corsOrigins: 'DISAGG_CORS_ORIGINS',
} as const;

export type DeploymentEnvKey = keyof typeof DEPLOYMENT_ENV;

export interface DeploymentSettings {
  readonly engine: EngineConfig;
  readonly kvStore: 'elasticache' | 's3';
  readonly redisUrl: string | null;
  readonly kvBucket: string | null;
  /** Null: no limit but the store's own. */
  readonly kvMaxBlobBytes: number | null;
  readonly handoffQueueUrl: string | null;
  readonly deadLetterQueueUrl: string | null;
  readonly maxReceiveCount: number;
  readonly resultsTable: string | null;
  readonly prefillFunction: string | null;
  readonly backend: 'reference' | 'bedrock';
  readonly bedrockModelId: string | null;
  readonly maxPromptTokens: number;
  readonly maxOutputTokens: number;
  /** As set (comma-separated origins or `*`); the API function checks and applies it. Null: no CORS headers. */
  readonly corsOrigins: string | null;
}

/** SQS redrive's usual count, and the stack's default. */
const DEFAULT_MAX_RECEIVE_COUNT = 3;

export class DeploymentEnvError extends Error {
  override readonly name = 'DeploymentEnvError';
}

/** Parses the environment a handler runs in; a bad value names the variable and the allowed values. */
export function readDeploymentEnv(env: Readonly<Record<string, string | undefined>>): DeploymentSettings {
  const get = (key: DeploymentEnvKey): string | undefined => {
    const value = env[DEPLOYMENT_ENV[key]];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const num = (key: DeploymentEnvKey): number | undefined => {
    const raw = get(key);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new DeploymentEnvError(`${DEPLOYMENT_ENV[key]} must be a number, got "${raw}"`);
    return n;
  };
  const oneOf = <T extends string>(key: DeploymentEnvKey, allowed: readonly T[], fallback: T): T => {
    const raw = get(key) ?? fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      throw new DeploymentEnvError(`${DEPLOYMENT_ENV[key]} must be one of ${allowed.join(', ')}, got "${raw}"`);
    }
    return raw as T;
  };
  const positive = (key: DeploymentEnvKey): number | undefined => {
    const n = num(key);
    if (n !== undefined && !(Number.isInteger(n) && n >= 1)) {
      throw new DeploymentEnvError(`${DEPLOYMENT_ENV[key]} must be a whole number of at least 1, got "${get(key)}"`);
    }
    return n;
  };
  const colocated = get('colocatedPool');
  const engine = engineConfig({
    model: get('model'),
    prefill: get('prefillPool'),
    decode: get('decodePool'),
    colocated: colocated === undefined ? undefined : colocated === 'none' ? null : colocated,
    timeScale: num('timeScale'),
    decodeBatchMax: num('decodeBatch'),
    colocateAtOrBelowTokens: num('colocateBelow'),
    maxPrefillQueue: num('maxPrefillQueue'),
    maxDecodeQueue: num('maxDecodeQueue'),
    kvFailurePolicy: oneOf<KvFailurePolicy>('kvFailurePolicy', ['fail', 'recompute'], 'recompute'),
    stack: get('stack'),
  });
  const kvStore = oneOf('kvStore', ['elasticache', 's3'] as const, 's3');
  const settings: DeploymentSettings = {
    engine,
    kvStore,
    redisUrl: get('redisUrl') ?? null,
    kvBucket: get('kvBucket') ?? null,
    kvMaxBlobBytes: positive('kvMaxBlobBytes') ?? null,
    handoffQueueUrl: get('handoffQueueUrl') ?? null,
    deadLetterQueueUrl: get('deadLetterQueueUrl') ?? null,
    maxReceiveCount: positive('maxReceiveCount') ?? DEFAULT_MAX_RECEIVE_COUNT,
    resultsTable: get('resultsTable') ?? null,
    prefillFunction: get('prefillFunction') ?? null,
    backend: oneOf('backend', ['reference', 'bedrock'] as const, 'reference'),
    bedrockModelId: get('bedrockModelId') ?? null,
    maxPromptTokens: num('maxPromptTokens') ?? 8192,
    maxOutputTokens: num('maxOutputTokens') ?? 4096,
    corsOrigins: get('corsOrigins') ?? null,
  };
  if (kvStore === 'elasticache' && settings.redisUrl === null) {
    throw new DeploymentEnvError(`${DEPLOYMENT_ENV.redisUrl} is required when ${DEPLOYMENT_ENV.kvStore}=elasticache`);
  }
  if (kvStore === 's3' && settings.kvBucket === null) {
    throw new DeploymentEnvError(`${DEPLOYMENT_ENV.kvBucket} is required when ${DEPLOYMENT_ENV.kvStore}=s3`);
  }
  if (settings.backend === 'bedrock' && settings.bedrockModelId === null) {
    throw new DeploymentEnvError(`${DEPLOYMENT_ENV.bedrockModelId} is required when ${DEPLOYMENT_ENV.backend}=bedrock`);
  }
  return settings;
}

/**
 * The custom CloudWatch metrics the handlers emit (Powertools Metrics, EMF) and the stack's dashboard and
 * alarms read: the same namespace, service and names on both sides, or the dashboard's series stay empty. The
 * names are the embedded server's Prometheus names (metric-catalogue.ts); latencies carry a `clock` dimension
 * (emulated or measured) and requests an `outcome` one, beside Powertools' `service`.
 */
export const DEPLOYMENT_METRICS = {
  namespace: 'Disagg',
  /** POWERTOOLS_SERVICE_NAME on every function; Powertools adds it as the `service` dimension. */
  service: 'disagg',
  latency: Object.fromEntries(Object.entries(LATENCY_METRICS).map(([key, metric]) => [key, metric.name])) as {
    readonly [K in LatencyKey]: (typeof LATENCY_METRICS)[K]['name'];
  },
  names: {
    requests: METRIC.requests,
    promptTokens: METRIC.promptTokens,
    generationTokens: METRIC.generationTokens,
    kvHandoffBytes: METRIC.kvHandoffBytes,
  },
  dimensions: { clock: CLOCK_LABEL, outcome: 'outcome' },
} as const;
