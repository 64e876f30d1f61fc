/**
 * What one deployment of the pipeline is: the emulated target model, its device pools and the
 * policies. Validated once at the edge (CLI flags, cdk.json context, Lambda environment).
 */
import {
  assertFits,
  defaultCompute,
  formatPool,
  getModel,
  parsePool,
  parseStacks,
  type ComputeOptions,
  type StackSelection,
  type DevicePool,
  type ModelProfile,
} from '../emulator';
import type { AdmissionLimits } from './admission';
import type { RoutingPolicy } from './routing';

/** What decode does when the KV blob is missing, expired or corrupt. */
export type KvFailurePolicy = 'fail' | 'recompute';

export interface EngineConfig {
  readonly model: ModelProfile;
  readonly prefillPool: DevicePool;
  readonly decodePool: DevicePool;
  /** The colocated baseline: one pool doing both phases. Null disables colocated routing. */
  readonly colocatedPool: DevicePool | null;
  readonly compute: ComputeOptions;
  /** 1 sleeps emulated time in real time; 0 never sleeps. */
  readonly timeScale: number;
  /** Largest running decode batch (continuous batching). */
  readonly decodeBatchMax: number;
  readonly routing: RoutingPolicy;
  readonly admission: AdmissionLimits;
  readonly kvFailurePolicy: KvFailurePolicy;
  /** KV blob lease: the backstop that frees a blob nobody consumed. */
  readonly kvTtlMs: number;
  /** How long request records stay readable. */
  readonly resultTtlMs: number;
  /** A request still running this long after it was received ends with a timeout error. */
  readonly requestTimeoutMs: number;
  /** A `tokens` timeline event every this many generated tokens. */
  readonly tokenEventEvery: number;
  /**
   * Decode saves a request's progress at most this often (its first token at once, its end always): the
   * staleness bound for a reader of the result store (the API function's stream, GET /v1/requests/{id}).
   */
  readonly progressSaveEveryMs: number;
  /** Decode checks a running request's cancellation marker this often: a cancel takes effect within it plus one step. */
  readonly cancelCheckEveryMs: number;
}

export interface EngineConfigInput {
  model?: string;
  prefill?: string;
  decode?: string;
  colocated?: string | null;
  timeScale?: number;
  decodeBatchMax?: number;
  colocateAtOrBelowTokens?: number;
  maxPrefillQueue?: number;
  maxDecodeQueue?: number;
  kvFailurePolicy?: KvFailurePolicy;
  /** Serving stacks, one per device family (`disagg estimate --stack`); default the newest of each. */
  stack?: string;
  kvTtlMs?: number;
  resultTtlMs?: number;
  requestTimeoutMs?: number;
}

/** The reference deployment: Llama 3.3 70B, prefill on one trn2.48xlarge, decode on four CS-3, H100 baseline. */
export const ENGINE_DEFAULTS = {
  model: 'llama-3.3-70b',
  prefill: 'trn2x16',
  decode: 'cs3x4',
  colocated: 'h100x8',
  timeScale: 1,
  decodeBatchMax: 32,
  colocateAtOrBelowTokens: 0,
  maxPrefillQueue: 64,
  maxDecodeQueue: 256,
  kvFailurePolicy: 'recompute',
  // Empty: the newest published stack of each device family.
  stack: '',
  kvTtlMs: 5 * 60_000,
  resultTtlMs: 60 * 60_000,
  requestTimeoutMs: 5 * 60_000,
} as const satisfies Required<EngineConfigInput>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function number(key: string, value: number, min: number, max: number, integer: boolean): number {
  if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new ConfigError(
      `${key} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}, got ${value}`,
    );
  }
  return value;
}

/** Builds a validated config; throws ConfigError naming the key and the allowed values. */
export function engineConfig(input: EngineConfigInput = {}): EngineConfig {
  const v = { ...ENGINE_DEFAULTS, ...stripUndefined(input) };
  const model = getModel(v.model);
  const prefillPool = parsePool(v.prefill);
  const decodePool = parsePool(v.decode);
  const colocatedPool = v.colocated === null || v.colocated === '' ? null : parsePool(v.colocated);
  const decodeBatchMax = number('decodeBatchMax', v.decodeBatchMax, 1, 4096, true);
  if (v.kvFailurePolicy !== 'fail' && v.kvFailurePolicy !== 'recompute') {
    throw new ConfigError(`kvFailurePolicy must be one of fail, recompute, got ${String(v.kvFailurePolicy)}`);
  }
  let stacks: StackSelection;
  try {
    stacks = parseStacks(v.stack);
  } catch (err) {
    throw new ConfigError(`stack: ${(err as Error).message}`);
  }
  // Weights at the precision the model's checkpoint is published in, on the chosen serving stacks.
  const compute = defaultCompute(model, { stacks });
  // Refuse a deployment whose pools cannot hold the model, with the emulator's numbers.
  const fitArgs = {
    model,
    weightDtype: compute.weightDtype,
    kvDtype: compute.kvDtype,
    contextTokens: Math.min(model.maxContext, 8192),
  };
  assertFits({ ...fitArgs, pool: prefillPool, batch: 1 });
  assertFits({ ...fitArgs, pool: decodePool, batch: 1 });
  if (colocatedPool) assertFits({ ...fitArgs, pool: colocatedPool, batch: 1 });
  return {
    model,
    prefillPool,
    decodePool,
    colocatedPool,
    compute,
    timeScale: number('timeScale', v.timeScale, 0, 1000, false),
    decodeBatchMax,
    routing: {
      colocateAtOrBelowTokens: number('colocateAtOrBelowTokens', v.colocateAtOrBelowTokens, 0, 10_000_000, true),
      colocatedAvailable: colocatedPool !== null,
    },
    admission: {
      maxPrefillQueue: number('maxPrefillQueue', v.maxPrefillQueue, 1, 1_000_000, true),
      maxDecodeQueue: number('maxDecodeQueue', v.maxDecodeQueue, 1, 1_000_000, true),
    },
    kvFailurePolicy: v.kvFailurePolicy,
    kvTtlMs: number('kvTtlMs', v.kvTtlMs, 1000, 7 * 86_400_000, true),
    resultTtlMs: number('resultTtlMs', v.resultTtlMs, 1000, 30 * 86_400_000, true),
    requestTimeoutMs: number('requestTimeoutMs', v.requestTimeoutMs, 100, 86_400_000, true),
    tokenEventEvery: 16,
    // The API function polls the result store every 100 ms (lambdas/wiring.ts), so saving more often shows nothing sooner.
    progressSaveEveryMs: 100,
    cancelCheckEveryMs: 100,
  };
}

/** Device pools by stage, as shown in responses: {"prefill": "trn2x16", "decode": "cs3x4"}. */
export function stageDevices(config: EngineConfig, mode: 'disaggregated' | 'colocated'): Record<string, string> {
  if (mode === 'colocated' && config.colocatedPool) return { colocated: formatPool(config.colocatedPool) };
  return { prefill: formatPool(config.prefillPool), decode: formatPool(config.decodePool) };
}

function stripUndefined<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, value]) => value !== undefined)) as Partial<T>;
}
