/**
 * The CDK app's configuration: one typed object read from cdk.json context and `-c key=value` flags,
 * validated once here so constructs never parse strings. A bad value fails synth with a message that
 * names the context key and the allowed values.
 */
import { parseCorsOrigins } from '../core/api/cors';
import { ENGINE_DEFAULTS } from '../core/engine/config';
import { getModel, parsePool, parseStacks, ProfileError, type DevicePool } from '../core/emulator';
import {
  DYNAMODB_ITEM_LIMIT_BYTES,
  kvBlobBytes,
  maxPromptTokensForJobItem,
  prefillJobItemBytes,
  timeoutNeeds,
  VALKEY_MAX_VALUE_BYTES,
} from './sizing';

export type Profile = 'aws' | 'localstack';
export type KvStoreKind = 'elasticache' | 's3';
export type BackendKind = 'reference' | 'bedrock';
export type RemovalChoice = 'destroy' | 'retain';
/** `create`: the stack sets the region's API Gateway CloudWatch role (kept on destroy); `existing`: it uses the one set. */
export type CloudWatchRoleChoice = 'create' | 'existing';

/** A Lambda function's size: memory in MB, timeout in seconds. */
export interface FunctionSize {
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
}

export interface DisaggConfig {
  readonly profile: Profile;
  /** Emulated target model id (lib/core/emulator/models.ts). */
  readonly model: string;
  /** Pool specs as given (`trn2x16`), validated by the emulator's parsePool. */
  readonly prefillPool: string;
  readonly decodePool: string;
  /** `none` disables colocated routing. */
  readonly colocatedPool: string;
  /** Serving stacks, one per device family (lib/core/emulator/stacks.ts); empty: the newest of each. */
  readonly stack: string;
  /** Descriptors per decode invocation (SQS event-source batch size). */
  readonly decodeBatch: number;
  /** 1 sleeps emulated time in real time; 0 never sleeps. */
  readonly timeScale: number;
  readonly kvStore: KvStoreKind;
  readonly backend: BackendKind;
  /** Bedrock model id; required when backend=bedrock, null otherwise. */
  readonly bedrockModelId: string | null;
  readonly apiKeyRequired: boolean;
  /** Origins browser pages may call the API from (`*`: any); empty: no CORS. */
  readonly corsOrigins: readonly string[];
  /** Steady-state requests per second and burst for the stage and the usage plan. */
  readonly throttleRateLimit: number;
  readonly throttleBurstLimit: number;
  readonly removalPolicy: RemovalChoice;
  readonly api: FunctionSize;
  /** The streaming API function: it writes SSE until the request ends, so it outlives the buffered one. */
  readonly apiStreamTimeoutSeconds: number;
  readonly prefill: FunctionSize;
  readonly decode: FunctionSize;
  /** Receives before a handoff descriptor moves to the dead-letter queue. */
  readonly maxReceiveCount: number;
  readonly logRetentionDays: number;
  /** Off in a sandbox; on adds continuous backups of the results table. */
  readonly pointInTimeRecovery: boolean;
  /**
   * Off by default: AWS refuses a reservation that leaves fewer than 100 unreserved executions, and new accounts
   * often have a quota of 10 or 50 (README, "Reserved concurrency").
   */
  readonly reserveConcurrency: boolean;
  /** Zones for the VPC's two subnets (aws profile with ElastiCache); empty lets CDK pick the region's first two. */
  readonly availabilityZones: readonly string[];
  /** Lambda's retries of a failed asynchronous prefill invocation (0 to 2). */
  readonly prefillRetryAttempts: number;
  readonly apiGatewayCloudWatchRole: CloudWatchRoleChoice;
  readonly maxPromptTokens: number;
  readonly maxOutputTokens: number;
  /** Per-function error rate (percent of invocations) that raises the error alarm. */
  readonly errorRateAlarmPercent: number;
}

/** Anything else: an invalid context value. Synth fails with this message. */
export class DisaggConfigError extends Error {
  override readonly name = 'DisaggConfigError';
}

/** Retention values CloudWatch Logs accepts (days). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/** Stated defaults; profile-dependent ones (kvStore) are resolved in readConfig. */
export const CONFIG_DEFAULTS = {
  profile: 'aws',
  model: ENGINE_DEFAULTS.model,
  prefillPool: ENGINE_DEFAULTS.prefill,
  decodePool: ENGINE_DEFAULTS.decode,
  colocatedPool: ENGINE_DEFAULTS.colocated,
  stack: ENGINE_DEFAULTS.stack,
  decodeBatch: 8,
  timeScale: ENGINE_DEFAULTS.timeScale,
  kvStore: { aws: 'elasticache', localstack: 's3' },
  backend: 'reference',
  apiKeyRequired: true,
  corsOrigins: '',
  throttleRateLimit: 10,
  throttleBurstLimit: 20,
  removalPolicy: 'destroy',
  apiMemoryMb: 512,
  // Just under API Gateway's default 29 s integration timeout, so the function answers before the gateway gives up.
  apiTimeoutSeconds: 28,
  // The request deadline (5 min) plus a margin to write the last event: REST streaming allows up to 15 minutes.
  apiStreamTimeoutSeconds: 305,
  prefillMemoryMb: 1024,
  // A colocated request decodes inside the prefill function: 4,096 tokens on h100x8 take about 50 s emulated.
  prefillTimeoutSeconds: 90,
  decodeMemoryMb: 1024,
  decodeTimeoutSeconds: 120,
  maxReceiveCount: 3,
  logRetentionDays: 14,
  pointInTimeRecovery: false,
  reserveConcurrency: false,
  availabilityZones: '',
  prefillRetryAttempts: 2,
  apiGatewayCloudWatchRole: 'create',
  maxPromptTokens: 8192,
  maxOutputTokens: 4096,
  errorRateAlarmPercent: 5,
} as const;

/** Reads context values by key; `app.node.tryGetContext` fits. */
export type ContextReader = (key: string) => unknown;

/** Every context key this app reads, for documentation and for tests. */
export const CONFIG_KEYS = [
  'profile',
  'model',
  'prefillPool',
  'decodePool',
  'colocatedPool',
  'stack',
  'decodeBatch',
  'timeScale',
  'kvStore',
  'backend',
  'bedrockModelId',
  'apiKeyRequired',
  'corsOrigins',
  'throttleRateLimit',
  'throttleBurstLimit',
  'removalPolicy',
  'apiMemoryMb',
  'apiTimeoutSeconds',
  'apiStreamTimeoutSeconds',
  'prefillMemoryMb',
  'prefillTimeoutSeconds',
  'decodeMemoryMb',
  'decodeTimeoutSeconds',
  'maxReceiveCount',
  'logRetentionDays',
  'pointInTimeRecovery',
  'reserveConcurrency',
  'availabilityZones',
  'prefillRetryAttempts',
  'apiGatewayCloudWatchRole',
  'maxPromptTokens',
  'maxOutputTokens',
  'errorRateAlarmPercent',
] as const;

export type ConfigKey = (typeof CONFIG_KEYS)[number];

/** Builds the validated config from context; throws DisaggConfigError naming the key and what it allows. */
export function readConfig(context: ContextReader): DisaggConfig {
  const raw = (key: ConfigKey): unknown => {
    const value = context(key);
    return typeof value === 'string' && value.trim() === '' ? undefined : value;
  };
  const oneOf = <T extends string>(key: ConfigKey, allowed: readonly T[], fallback: T): T => {
    const value = raw(key) ?? fallback;
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value.trim())) {
      throw new DisaggConfigError(`${key} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
    }
    return value.trim() as T;
  };
  const num = (key: ConfigKey, fallback: number, min: number, max: number, integer = true): number => {
    const value = raw(key) ?? fallback;
    // Values from `-c key=value` arrive as strings; cdk.json may hold real numbers.
    const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value.trim()) : Number.NaN;
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      const kind = integer ? 'a whole number' : 'a number';
      throw new DisaggConfigError(`${key} must be ${kind} from ${min} to ${max} (got ${JSON.stringify(value)})`);
    }
    return n;
  };
  const bool = (key: ConfigKey, fallback: boolean): boolean => {
    const value = raw(key) ?? fallback;
    if (value === true || value === 'true') return true;
    if (value === false || value === 'false') return false;
    throw new DisaggConfigError(`${key} must be one of true, false (got ${JSON.stringify(value)})`);
  };
  const text = (key: ConfigKey, fallback: string): string => {
    const value = raw(key) ?? fallback;
    if (typeof value !== 'string')
      throw new DisaggConfigError(`${key} must be a string (got ${JSON.stringify(value)})`);
    return value.trim();
  };
  const pool = (key: ConfigKey, fallback: string): string => {
    const spec = text(key, fallback).toLowerCase();
    try {
      parsePool(spec);
    } catch (error) {
      throw new DisaggConfigError(`${key}: ${profileMessage(error)}`);
    }
    return spec;
  };
  const stacks = (key: ConfigKey, fallback: string): string => {
    const spec = text(key, fallback).toLowerCase();
    try {
      parseStacks(spec);
    } catch (error) {
      throw new DisaggConfigError(`${key}: ${profileMessage(error)}`);
    }
    return spec;
  };

  const d = CONFIG_DEFAULTS;
  const profile = oneOf<Profile>('profile', ['aws', 'localstack'], d.profile);
  const model = text('model', d.model);
  try {
    getModel(model);
  } catch (error) {
    throw new DisaggConfigError(`model: ${profileMessage(error)}`);
  }
  const colocatedSpec = text('colocatedPool', d.colocatedPool).toLowerCase();
  const colocatedPool = colocatedSpec === 'none' ? 'none' : pool('colocatedPool', d.colocatedPool);

  // ElastiCache Serverless is not emulated by LocalStack, so that profile only offers S3.
  const kvStores: readonly KvStoreKind[] = profile === 'localstack' ? ['s3'] : ['elasticache', 's3'];
  const kvStore = oneOf<KvStoreKind>('kvStore', kvStores, d.kvStore[profile]);

  const backend = oneOf<BackendKind>('backend', ['reference', 'bedrock'], d.backend);
  const bedrockModelId = raw('bedrockModelId') === undefined ? null : text('bedrockModelId', '');
  if (backend === 'bedrock' && bedrockModelId === null) {
    throw new DisaggConfigError(
      'bedrockModelId is required when backend=bedrock (e.g. -c bedrockModelId=meta.llama3-1-70b-instruct-v1:0)',
    );
  }
  if (bedrockModelId !== null && !/^[a-z0-9.:-]+$/i.test(bedrockModelId)) {
    throw new DisaggConfigError(
      `bedrockModelId must be a Bedrock model id such as meta.llama3-1-70b-instruct-v1:0 (got ${JSON.stringify(bedrockModelId)})`,
    );
  }

  const throttleRateLimit = num('throttleRateLimit', d.throttleRateLimit, 1, 10_000);
  const throttleBurstLimit = num('throttleBurstLimit', d.throttleBurstLimit, 1, 5_000);
  const apiTimeoutSeconds = num('apiTimeoutSeconds', d.apiTimeoutSeconds, 1, 900);
  const decodeTimeoutSeconds = num('decodeTimeoutSeconds', d.decodeTimeoutSeconds, 1, 900);
  const logRetentionDays = num('logRetentionDays', d.logRetentionDays, 1, 3653);
  if (!(LOG_RETENTION_DAYS as readonly number[]).includes(logRetentionDays)) {
    throw new DisaggConfigError(
      `logRetentionDays must be one of ${LOG_RETENTION_DAYS.join(', ')} (got ${JSON.stringify(raw('logRetentionDays'))})`,
    );
  }

  const config: DisaggConfig = {
    profile,
    model,
    prefillPool: pool('prefillPool', d.prefillPool),
    decodePool: pool('decodePool', d.decodePool),
    colocatedPool,
    stack: stacks('stack', d.stack),
    // SQS event sources take up to 10,000 messages per batch when a batching window is set.
    decodeBatch: num('decodeBatch', d.decodeBatch, 1, 10_000),
    timeScale: num('timeScale', d.timeScale, 0, 1000, false),
    kvStore,
    backend,
    bedrockModelId,
    apiKeyRequired: bool('apiKeyRequired', d.apiKeyRequired),
    corsOrigins: origins(raw('corsOrigins') ?? d.corsOrigins),
    throttleRateLimit,
    throttleBurstLimit,
    removalPolicy: oneOf<RemovalChoice>('removalPolicy', ['destroy', 'retain'], d.removalPolicy),
    // Lambda allows 128 MB to 10,240 MB and up to 900 s.
    api: { memoryMb: num('apiMemoryMb', d.apiMemoryMb, 128, 10_240), timeoutSeconds: apiTimeoutSeconds },
    apiStreamTimeoutSeconds: num('apiStreamTimeoutSeconds', d.apiStreamTimeoutSeconds, 1, 900),
    prefill: {
      memoryMb: num('prefillMemoryMb', d.prefillMemoryMb, 128, 10_240),
      timeoutSeconds: num('prefillTimeoutSeconds', d.prefillTimeoutSeconds, 1, 900),
    },
    decode: { memoryMb: num('decodeMemoryMb', d.decodeMemoryMb, 128, 10_240), timeoutSeconds: decodeTimeoutSeconds },
    // SQS redrive accepts 1 to 1000 receives.
    maxReceiveCount: num('maxReceiveCount', d.maxReceiveCount, 1, 1000),
    logRetentionDays,
    pointInTimeRecovery: bool('pointInTimeRecovery', d.pointInTimeRecovery),
    reserveConcurrency: bool('reserveConcurrency', d.reserveConcurrency),
    availabilityZones: zones(text('availabilityZones', d.availabilityZones)),
    // Lambda allows 0 to 2 retries of an asynchronous invocation.
    prefillRetryAttempts: num('prefillRetryAttempts', d.prefillRetryAttempts, 0, 2),
    apiGatewayCloudWatchRole: oneOf<CloudWatchRoleChoice>(
      'apiGatewayCloudWatchRole',
      ['create', 'existing'],
      d.apiGatewayCloudWatchRole,
    ),
    maxPromptTokens: num('maxPromptTokens', d.maxPromptTokens, 1, 10_000_000),
    maxOutputTokens: num('maxOutputTokens', d.maxOutputTokens, 1, 10_000_000),
    errorRateAlarmPercent: num('errorRateAlarmPercent', d.errorRateAlarmPercent, 0, 100, false),
  };
  checkSizing(config);
  return config;
}

/** `-c corsOrigins=https://a.example,https://b.example` (or `*`), or a list in cdk.json. */
function origins(value: unknown): readonly string[] {
  const list =
    typeof value === 'string'
      ? value
      : Array.isArray(value) && value.every((v) => typeof v === 'string')
        ? (value as string[])
        : null;
  if (list === null) {
    throw new DisaggConfigError(
      `corsOrigins must be origins, comma-separated or a list (got ${JSON.stringify(value)})`,
    );
  }
  try {
    return parseCorsOrigins(list, 'corsOrigins');
  } catch (error) {
    throw new DisaggConfigError((error as Error).message);
  }
}

/** `us-east-1a,us-east-1b`: at least two zone names of one region (ElastiCache Serverless needs two subnets). */
function zones(spec: string): readonly string[] {
  if (spec === '') return [];
  const list = spec.split(',').map((zone) => zone.trim().toLowerCase());
  const bad = list.find((zone) => !AZ_NAME.test(zone));
  if (bad !== undefined) {
    throw new DisaggConfigError(
      `availabilityZones must be zone names such as us-east-1a,us-east-1b (got ${JSON.stringify(bad)})`,
    );
  }
  if (new Set(list).size !== list.length || list.length < 2) {
    throw new DisaggConfigError(
      `availabilityZones needs at least two different zones, for the cache's two subnets (got ${JSON.stringify(spec)})`,
    );
  }
  const regions = new Set(list.map((zone) => zone.slice(0, -1)));
  if (regions.size !== 1) {
    throw new DisaggConfigError(`availabilityZones must all be in one region (got ${JSON.stringify(spec)})`);
  }
  return list;
}

const AZ_NAME = /^[a-z]{2}(-[a-z]+)+-\d+[a-z]$/;

/**
 * The sizes the config implies, checked before anything is synthesized: each function's timeout must cover
 * the worst request the config admits, and the stores must accept the largest prompt and KV blob.
 */
function checkSizing(config: DisaggConfig): void {
  let needs: ReturnType<typeof timeoutNeeds>;
  try {
    needs = timeoutNeeds(config);
  } catch (error) {
    // The engine refuses the pools (a model that does not fit): the same words the handlers would use.
    throw new DisaggConfigError(`invalid deployment: ${error instanceof Error ? error.message : String(error)}`);
  }
  const scale = `at timeScale ${config.timeScale}`;
  if (config.prefill.timeoutSeconds < needs.prefillSeconds) {
    throw new DisaggConfigError(
      `prefillTimeoutSeconds must be at least ${needs.prefillSeconds} for this deployment (got ${config.prefill.timeoutSeconds}): ` +
        `the prefill function runs a colocated request to its last token, and a ${config.maxPromptTokens}-token prompt ` +
        `with ${config.maxOutputTokens} output tokens on ${config.colocatedPool} takes that long ${scale}; ` +
        'raise it, or lower maxPromptTokens / maxOutputTokens / timeScale',
    );
  }
  if (config.decode.timeoutSeconds < needs.decodeSeconds) {
    throw new DisaggConfigError(
      `decodeTimeoutSeconds must be at least ${needs.decodeSeconds} for this deployment (got ${config.decode.timeoutSeconds}): ` +
        `a batch of ${config.decodeBatch} requests generating ${config.maxOutputTokens} tokens on ${config.decodePool} ` +
        `takes that long ${scale}; raise it, or lower decodeBatch / maxOutputTokens / timeScale`,
    );
  }
  const jobBytes = prefillJobItemBytes(config.maxPromptTokens);
  if (jobBytes > DYNAMODB_ITEM_LIMIT_BYTES) {
    throw new DisaggConfigError(
      `maxPromptTokens ${config.maxPromptTokens} is too large for this deployment: the API keeps each prompt in the ` +
        `results table until prefill has run (so the asynchronous invocation, which a failure copies to the ` +
        `dead-letter queue, carries ids only), and a prompt that long can take ${jobBytes} bytes, over DynamoDB's ` +
        `${DYNAMODB_ITEM_LIMIT_BYTES}-byte item limit; use at most ${maxPromptTokensForJobItem()}`,
    );
  }
  const blobBytes = kvBlobBytes(config, config.maxPromptTokens);
  if (config.kvStore === 'elasticache' && blobBytes > VALKEY_MAX_VALUE_BYTES) {
    throw new DisaggConfigError(
      `maxPromptTokens ${config.maxPromptTokens} makes KV blobs of ${blobBytes} bytes, over the ${VALKEY_MAX_VALUE_BYTES}-byte ` +
        'value limit of ElastiCache Serverless; lower maxPromptTokens or use kvStore=s3',
    );
  }
}

/**
 * Concurrent executions a pool stands for: one per instance (or CS-3 system) the pool occupies, rounded
 * up, at least 1. trn2x16 is one trn2.48xlarge, so prefill gets 1; cs3x4 is four CS-3 systems, so decode
 * gets 4. A pool without a count (`trn2`) is one instance's worth, which is how devices per instance is read.
 */
export function poolConcurrency(spec: string): number {
  const pool: DevicePool = parsePool(spec);
  const devicesPerInstance = parsePool(pool.device).count;
  return Math.max(1, Math.ceil(pool.count / devicesPerInstance));
}

function profileMessage(error: unknown): string {
  if (error instanceof ProfileError) return error.message;
  throw error;
}
