/**
 * Limits derived from the configuration instead of fixed in the constructs: how long each function must be
 * allowed to run for the worst request the config admits, and what the KV cache must accept (ECPU per second,
 * stored bytes, the largest blob) at the configured request rate. Pure arithmetic over the emulator and the
 * config, so the tests and the README quote the same numbers the stack sets.
 */
import { decodeStepTime, prefillTime, type DevicePool } from '../core/emulator';
import { ENGINE_DEFAULTS, engineConfig, type EngineConfig } from '../core/engine/config';
import type { DisaggConfig } from './config';

/** Emulated time is slept at timeScale; real work (the reference model, store writes) adds to it. */
const TIMEOUT_HEADROOM = 1.25;
/** Cold start, store round trips and the final record write, on top of the scaled emulated time. */
const TIMEOUT_FLOOR_SECONDS = 5;

/**
 * KV bytes per prompt token of the reference backend: 4 layers x (K and V) x 2 KV heads x 16 head dims x
 * 4-byte floats (lib/adapters/reference-model/config.ts); a test checks it against a real blob.
 */
export const REFERENCE_KV_BYTES_PER_TOKEN = 1024;
/** The blob header, the model id and one 8-byte header per layer chunk, rounded up. */
export const KV_BLOB_OVERHEAD_BYTES = 4096;

/**
 * ElastiCache Serverless limits (ElastiCache user guide, "Valkey and Redis OSS configuration and limits" and
 * "Scaling ElastiCache"): a single value is at most 512 MiB (proto-max-bulk-len); ECPU per second can be capped
 * from 1,000 to 15,000,000, data storage from 1 to 5,000 GB; a simple read or write costs 1 ECPU per KB moved.
 */
export const VALKEY_MAX_VALUE_BYTES = 512 * 1024 * 1024;
export const ECPU_LIMITS = { min: 1000, max: 15_000_000 } as const;
export const DATA_STORAGE_GB_LIMITS = { min: 1, max: 5000 } as const;
const ECPU_PER_KB = 1;
/** Above the computed need, so a load at the configured limits is never the one that gets throttled. */
const CACHE_HEADROOM = 1.25;

/** The engine config the handlers will build from this deployment (defaults for what the stack leaves unset). */
export function deploymentEngine(config: DisaggConfig): EngineConfig {
  return engineConfig({
    model: config.model,
    prefill: config.prefillPool,
    decode: config.decodePool,
    colocated: config.colocatedPool === 'none' ? null : config.colocatedPool,
    timeScale: config.timeScale,
    decodeBatchMax: config.decodeBatch,
    stack: config.stack,
  });
}

/** Emulated ms to prefill the longest prompt on `pool`. */
function longestPrefillMs(engine: EngineConfig, pool: DevicePool, config: DisaggConfig): number {
  return prefillTime(engine.model, pool, [{ newTokens: config.maxPromptTokens, cachedTokens: 0 }], engine.compute).ms;
}

/** Emulated ms of the longest request a colocated pool can be given: the longest prompt, then every output token. */
function worstColocatedMs(engine: EngineConfig, config: DisaggConfig): number {
  const pool = engine.colocatedPool;
  if (!pool) return 0;
  const prefill = longestPrefillMs(engine, pool, config);
  const lastStep = decodeStepTime(
    engine.model,
    pool,
    [config.maxPromptTokens + config.maxOutputTokens],
    engine.compute,
  ).ms;
  // Step time grows with context; the last step is the longest, so this bounds the sum.
  return prefill + config.maxOutputTokens * lastStep;
}

/** Emulated ms of the longest decode batch: decodeBatch requests at the longest context, every output token. */
function worstDecodeBatchMs(engine: EngineConfig, config: DisaggConfig): number {
  const contexts = Array.from({ length: config.decodeBatch }, () => config.maxPromptTokens + config.maxOutputTokens);
  return config.maxOutputTokens * decodeStepTime(engine.model, engine.decodePool, contexts, engine.compute).ms;
}

function scaledSeconds(emulatedMs: number, config: DisaggConfig): number {
  // A request that outlives its deadline is ended by the stage running it, so nothing runs past the deadline.
  const wallMs = Math.min(emulatedMs * config.timeScale, ENGINE_DEFAULTS.requestTimeoutMs);
  return Math.ceil((wallMs * TIMEOUT_HEADROOM) / 1000) + TIMEOUT_FLOOR_SECONDS;
}

export interface TimeoutNeeds {
  /** The prefill function runs colocated requests to the end (prefill and every decode step). */
  readonly prefillSeconds: number;
  readonly decodeSeconds: number;
  /** The streaming API function writes SSE until the request ends: up to its deadline. */
  readonly apiStreamSeconds: number;
}

/** The shortest timeout each function needs for the worst request this config admits. */
export function timeoutNeeds(config: DisaggConfig): TimeoutNeeds {
  const engine = deploymentEngine(config);
  const disaggregatedPrefillMs = longestPrefillMs(engine, engine.prefillPool, config);
  return {
    prefillSeconds: scaledSeconds(Math.max(disaggregatedPrefillMs, worstColocatedMs(engine, config)), config),
    decodeSeconds: scaledSeconds(worstDecodeBatchMs(engine, config), config),
    apiStreamSeconds: Math.ceil(ENGINE_DEFAULTS.requestTimeoutMs / 1000) + TIMEOUT_FLOOR_SECONDS,
  };
}

export interface KvCacheLimits {
  /** The largest KV blob a request of this config hands over (the longest prompt). */
  readonly maxRequestBlobBytes: number;
  /** The largest blob the cache takes; a request whose KV is larger ends failed with kv_too_large. */
  readonly maxBlobBytes: number;
  /** Requests per second at the API's limit (the usage plan's burst, or its rate if higher). */
  readonly peakRequestsPerSecond: number;
  /** Each request writes its blob once and reads it once. */
  readonly ecpuPerSecond: number;
  /** Blobs waiting for decode (admission's decode queue limit) plus those in running decode batches. */
  readonly dataStorageGb: number;
  /** Blobs the storage figure holds. */
  readonly blobsInFlight: number;
}

/** KV bytes of one request's blob with this backend (the bedrock backend hands no KV over). */
export function kvBlobBytes(config: DisaggConfig, promptTokens: number): number {
  if (config.backend === 'bedrock') return 0;
  return promptTokens * REFERENCE_KV_BYTES_PER_TOKEN + KV_BLOB_OVERHEAD_BYTES;
}

/**
 * What the ElastiCache Serverless cache must accept for this config: ECPU per second for the peak request rate
 * with the largest blobs, and storage for every blob that can be waiting at once, both with 25% headroom.
 */
export function kvCacheLimits(config: DisaggConfig, decodeConcurrency: number): KvCacheLimits {
  const maxRequestBlobBytes = kvBlobBytes(config, config.maxPromptTokens);
  const peakRequestsPerSecond = Math.max(config.throttleRateLimit, config.throttleBurstLimit);
  const blobKb = Math.ceil(maxRequestBlobBytes / 1024);
  const ecpuPerSecond = clamp(
    Math.ceil(peakRequestsPerSecond * 2 * blobKb * ECPU_PER_KB * CACHE_HEADROOM),
    ECPU_LIMITS.min,
    ECPU_LIMITS.max,
  );
  const blobsInFlight = ENGINE_DEFAULTS.maxDecodeQueue + config.decodeBatch * decodeConcurrency;
  const dataStorageGb = clamp(
    Math.ceil((blobsInFlight * maxRequestBlobBytes * CACHE_HEADROOM) / 1e9),
    DATA_STORAGE_GB_LIMITS.min,
    DATA_STORAGE_GB_LIMITS.max,
  );
  // One write may not cost more ECPUs than the cache may spend in a second.
  const maxBlobBytes = Math.min(VALKEY_MAX_VALUE_BYTES, (ecpuPerSecond / ECPU_PER_KB) * 1024);
  return { maxRequestBlobBytes, maxBlobBytes, peakRequestsPerSecond, ecpuPerSecond, dataStorageGb, blobsInFlight };
}

/**
 * DynamoDB's item limit (400 KB, names and values): the API stores each admitted prompt as one item of the
 * results table until prefill has read it.
 */
export const DYNAMODB_ITEM_LIMIT_BYTES = 400 * 1024;
/**
 * A prompt token costs at most its id in JSON (7 bytes) plus the API's character budget per token (8 characters,
 * 3 UTF-8 bytes each at most for one UTF-16 unit); the rest of the job (sampling, ids, keys) fits in 16 KB.
 */
const JOB_BYTES_PER_TOKEN = 7 + 8 * 3;
const JOB_FIXED_BYTES = 16 * 1024;

/** The most the stored prefill job of a prompt this long can take. */
export function prefillJobItemBytes(promptTokens: number): number {
  return JOB_FIXED_BYTES + promptTokens * JOB_BYTES_PER_TOKEN;
}

/** The longest prompt whose prefill job is sure to fit in one item. */
export function maxPromptTokensForJobItem(): number {
  return Math.floor((DYNAMODB_ITEM_LIMIT_BYTES - JOB_FIXED_BYTES) / JOB_BYTES_PER_TOKEN);
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
