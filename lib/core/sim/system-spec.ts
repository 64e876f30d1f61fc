/**
 * What system a simulation runs: `colocated:DEVxN[*R]` (R replicas, each of N devices doing both
 * phases) or `disagg:DEVxN[*R]+DEVxN[*R]` (a prefill pool, then a decode pool), and its options.
 */
import {
  checkFit,
  DEFAULT_COMPUTE,
  DEVICES,
  FitError,
  formatPool,
  parsePool,
  ProfileError,
  type ComputeOptions,
  type DevicePool,
  type FitReport,
  type LinkProfile,
  type ModelProfile,
} from '../emulator';
import type { AdmissionLimits } from '../engine/admission';
import { kvBudgetBytes } from '../engine/batching';
import { ENGINE_DEFAULTS } from '../engine/config';
import {
  DEFAULT_QUEUE_DISCIPLINE,
  isQueueDiscipline,
  QUEUE_DISCIPLINES,
  type QueueDiscipline,
} from '../engine/routing';

/** A bad system spec or option: the CLI exits 2 with the message. */
export class SystemSpecError extends ProfileError {
  override readonly name = 'SystemSpecError';
}

/** Identical replicas of one device pool. */
export interface ReplicatedPool {
  readonly pool: DevicePool;
  readonly replicas: number;
}

export type SystemSpec =
  | { readonly kind: 'colocated'; readonly colocated: ReplicatedPool }
  | { readonly kind: 'disaggregated'; readonly prefill: ReplicatedPool; readonly decode: ReplicatedPool };

const MAX_REPLICAS = 10_000;

function parseReplicated(text: string, whole: string): ReplicatedPool {
  const match = /^([^*]+?)(?:\*(\d+))?$/.exec(text.trim());
  if (!match)
    throw new SystemSpecError(`bad pool "${text}" in system "${whole}": expected DEVxN or DEVxN*R, e.g. trn2x16*2`);
  const replicas = match[2] === undefined ? 1 : Number(match[2]);
  if (!Number.isSafeInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) {
    throw new SystemSpecError(`bad replica count in "${text}" (system "${whole}"): expected 1 to ${MAX_REPLICAS}`);
  }
  return { pool: parsePool(match[1] as string), replicas };
}

/** Parses `colocated:h100x8*4` or `disagg:trn2x16*2+cs3x4*1` (R defaults to 1). */
export function parseSystemSpec(text: string): SystemSpec {
  const usage =
    'expected colocated:DEVxN[*R] or disagg:DEVxN[*R]+DEVxN[*R], e.g. colocated:h100x8*4 or disagg:trn2x16*2+cs3x4';
  const colon = text.indexOf(':');
  if (colon === -1) throw new SystemSpecError(`bad system "${text}": ${usage}`);
  const kind = text.slice(0, colon).trim().toLowerCase();
  const body = text.slice(colon + 1);
  if (kind === 'colocated') {
    if (body.includes('+'))
      throw new SystemSpecError(`bad system "${text}": a colocated system has one pool; ${usage}`);
    return { kind: 'colocated', colocated: parseReplicated(body, text) };
  }
  if (kind === 'disagg' || kind === 'disaggregated') {
    const parts = body.split('+');
    if (parts.length !== 2) {
      throw new SystemSpecError(
        `bad system "${text}": a disaggregated system has a prefill and a decode pool; ${usage}`,
      );
    }
    return {
      kind: 'disaggregated',
      prefill: parseReplicated(parts[0] as string, text),
      decode: parseReplicated(parts[1] as string, text),
    };
  }
  throw new SystemSpecError(`bad system "${text}": unknown kind "${kind}"; ${usage}`);
}

const replicated = (r: ReplicatedPool): string => `${formatPool(r.pool)}*${r.replicas}`;

/** The canonical spelling: `disagg:trn2x16*2+cs3x4*1`. */
export function formatSystemSpec(spec: SystemSpec): string {
  return spec.kind === 'colocated'
    ? `colocated:${replicated(spec.colocated)}`
    : `disagg:${replicated(spec.prefill)}+${replicated(spec.decode)}`;
}

/**
 * Service-level objectives a request must meet to count towards goodput. Defaults are for
 * interactive chat: the first token within 2 s keeps a user waiting no longer than a page load,
 * and 100 ms per token (10 tokens/s) is faster than people read (about 4-5 words/s).
 */
export interface Slo {
  readonly ttftMs: number;
  readonly tpotMs: number;
}

export const DEFAULT_SLO: Slo = { ttftMs: 2000, tpotMs: 100 };

export interface SimOptions {
  readonly model: ModelProfile;
  readonly compute?: ComputeOptions;
  /** Network between the prefill and decode pools; default: the slower of their instance networks. */
  readonly link?: LinkProfile;
  /** LRU prefix cache per prefill (or colocated) replica. Default true. */
  readonly prefixCache?: boolean;
  /**
   * Conditional disaggregation (chooseMode): in a disaggregated system, prompts of at most this many
   * tokens are prefilled by a decode replica itself, stalling its batch. Default 0: never.
   */
  readonly colocateAtOrBelowTokens?: number;
  /**
   * Largest running decode batch per replica, for every pool (memory may hold it lower). Default per pool
   * (poolLimits): the serving stack's cap, at most what the pool's KV memory holds at the workload's lengths.
   */
  readonly decodeBatchMax?: number;
  /**
   * Queue discipline (routing.ts), the same for every pool: `shared` (default) or `jsq-tokens`.
   */
  readonly routing?: QueueDiscipline;
  /**
   * Tokens per step. Colocated replicas (and decode replicas prefilling short prompts) run chunked
   * prefill: each step carries the running batch's decode tokens plus prompt chunks up to this budget, so
   * a long prompt no longer stalls the batch for its whole prefill. Prefill replicas batch whole waiting
   * prompts into one pass up to this many new tokens (a longer prompt runs alone). 0: no chunking and one
   * prompt per prefill pass. Default per device (servingDefaults).
   */
  readonly chunkTokens?: number;
  /**
   * The `max_tokens` each request sends: the decode KV each request reserves is prompt + max_tokens, as
   * the live pipeline reserves it (batching.ts), not the answer's true length. An answer longer than this
   * stops at it. Default: the workload's longest answer (no answer is cut short), at most what the model's
   * context leaves after the prompt.
   */
  readonly maxTokens?: number;
  /**
   * Admission limits for the whole system, the same whatever its replica count: up to maxPrefillQueue
   * requests admitted and not yet through prefill, maxDecodeQueue handed off and not yet decoding.
   * Default 64 and 256 (the live pipeline's per-runtime defaults).
   */
  readonly admission?: AdmissionLimits;
  /**
   * Admission limits per replica, scaled by the replica count (prefill or colocated replicas for the
   * prefill queue, decode replicas for the decode queue). Kept for callers of the earlier rule; `admission`
   * wins when both are given.
   */
  readonly admissionPerReplica?: AdmissionLimits;
  readonly slo?: Slo;
  /** USD per hour for one CS-3 system; no public price exists, so cost needs it stated. */
  readonly cs3PricePerHour?: number;
  /**
   * Prompt + output tokens of the one request every replica must hold beside the weights (the fit
   * check); default the workload's median. Longer requests run if they fit, else are rejected.
   */
  readonly fitContextTokens?: number;
}

/** Options with defaults applied. */
export interface ResolvedSimOptions {
  readonly model: ModelProfile;
  readonly compute: ComputeOptions;
  readonly link: LinkProfile | undefined;
  readonly prefixCache: boolean;
  readonly colocateAtOrBelowTokens: number;
  /** The --decode-batch / --max-decode-batch override, else undefined (per pool: SimResult.limits). */
  readonly decodeBatchMax: number | undefined;
  readonly routing: QueueDiscipline;
  /** The override, else undefined (per pool: servingDefaults). */
  readonly chunkTokens: number | undefined;
  readonly maxTokens: number | undefined;
  /** Admission limits: per system (`perReplica` false), or per replica scaled by the replica count. */
  readonly admission: AdmissionLimits & { readonly perReplica: boolean };
  /** The same limits under their earlier name (per replica only when admissionPerReplica was given). */
  readonly admissionPerReplica: AdmissionLimits;
  readonly slo: Slo;
  readonly cs3PricePerHour: number | null;
  readonly fitContextTokens: number | undefined;
}

function whole(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new SystemSpecError(`${name} must be a whole number from ${min} to ${max}, got ${value}`);
  }
  return value;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new SystemSpecError(`${name} must be a positive number, got ${value}`);
  return value;
}

export function resolveSimOptions(opts: SimOptions): ResolvedSimOptions {
  const perReplica = opts.admission === undefined && opts.admissionPerReplica !== undefined;
  const admission = opts.admission ??
    opts.admissionPerReplica ?? {
      maxPrefillQueue: ENGINE_DEFAULTS.maxPrefillQueue,
      maxDecodeQueue: ENGINE_DEFAULTS.maxDecodeQueue,
    };
  const routing = opts.routing ?? DEFAULT_QUEUE_DISCIPLINE;
  if (!isQueueDiscipline(routing)) {
    throw new SystemSpecError(`routing must be one of ${QUEUE_DISCIPLINES.join(', ')}, got "${String(routing)}"`);
  }
  const limits = {
    maxPrefillQueue: whole('maxPrefillQueue', admission.maxPrefillQueue, 1, 1_000_000),
    maxDecodeQueue: whole('maxDecodeQueue', admission.maxDecodeQueue, 1, 1_000_000),
  };
  return {
    model: opts.model,
    compute: opts.compute ?? DEFAULT_COMPUTE,
    link: opts.link,
    prefixCache: opts.prefixCache ?? true,
    colocateAtOrBelowTokens: whole('colocateAtOrBelowTokens', opts.colocateAtOrBelowTokens ?? 0, 0, 10_000_000),
    decodeBatchMax:
      opts.decodeBatchMax === undefined ? undefined : whole('decodeBatchMax', opts.decodeBatchMax, 1, MAX_DECODE_BATCH),
    routing,
    chunkTokens: opts.chunkTokens === undefined ? undefined : whole('chunkTokens', opts.chunkTokens, 0, 1_000_000),
    maxTokens:
      opts.maxTokens === undefined ? undefined : whole('maxTokens', opts.maxTokens, 1, opts.model.maxContext - 1),
    admission: { ...limits, perReplica },
    admissionPerReplica: limits,
    slo: {
      ttftMs: positive('the TTFT SLO', opts.slo?.ttftMs ?? DEFAULT_SLO.ttftMs),
      tpotMs: positive('the TPOT SLO', opts.slo?.tpotMs ?? DEFAULT_SLO.tpotMs),
    },
    cs3PricePerHour: opts.cs3PricePerHour === undefined ? null : positive('cs3PricePerHour', opts.cs3PricePerHour),
    fitContextTokens:
      opts.fitContextTokens === undefined
        ? undefined
        : whole('fitContextTokens', opts.fitContextTokens, 1, opts.model.maxContext),
  };
}

/** The largest decode batch a flag may ask for. */
export const MAX_DECODE_BATCH = 4096;

/**
 * A serving stack's scheduler defaults for a pool's device. GPUs: vLLM V1's OpenAI API-server defaults
 * (vllm-project/vllm, vllm/engine/arg_utils.py, EngineArgs batch defaults): on GPUs of at least 70 GiB other
 * than A100 (H100, H200, B200), max_num_batched_tokens 8192 and max_num_seqs 1024; on other hardware 2048
 * and 256. Trainium and CS-3 stacks publish no such default: they take vLLM's other-hardware values.
 */
export interface ServingDefaults {
  /** Tokens per step (max_num_batched_tokens): the chunked-prefill budget. */
  readonly chunkTokens: number;
  /** Running sequences per replica (max_num_seqs). */
  readonly maxSeqs: number;
  readonly source: string;
}

const VLLM_SOURCE = 'vLLM V1 API-server defaults (vllm/engine/arg_utils.py)';

export function servingDefaults(pool: DevicePool): ServingDefaults {
  const device = DEVICES[pool.device];
  if (device.family === 'gpu' && device.memoryBytes >= 70 * 2 ** 30 && pool.device !== 'a100') {
    return { chunkTokens: 8192, maxSeqs: 1024, source: `${VLLM_SOURCE}, GPUs of 70 GiB or more` };
  }
  const which = device.family === 'gpu' ? 'other GPUs' : `other hardware (no published ${device.name} default)`;
  return { chunkTokens: 2048, maxSeqs: 256, source: `${VLLM_SOURCE}, ${which}` };
}

export interface SystemFit {
  /** Context of the one request each replica was checked to hold, and whether it came from the workload (its median). */
  readonly contextTokens: number;
  readonly contextFromWorkload: boolean;
  readonly pools: readonly { readonly role: PoolRole; readonly report: FitReport }[];
  /** KV bytes a decode (or colocated) replica holds beside the weights: the batching policy's budget. */
  readonly decodeKvBudgetBytes: number;
}

export type PoolRole = 'prefill' | 'decode' | 'colocated';

/** A replica that cannot hold the model, with what was checked and what to change. */
export class SystemFitError extends FitError {
  constructor(report: FitReport, role: PoolRole, spec: string, checked: string) {
    super(report);
    this.message =
      `${this.message} [${role} replica of ${spec}, checked for ${checked}; ` +
      'add devices, or state the request size to hold with --fit-context]';
  }
}

/**
 * Each replica must hold the weights plus ONE request of `contextTokens`: a prefill replica runs one
 * prompt at a time, and a decode or colocated replica sizes its batch by the memory left
 * (batching.ts), so no full batch at a long context is reserved. Throws SystemFitError (the CLI exits 2).
 */
export function assertSystemFits(
  spec: SystemSpec,
  opts: ResolvedSimOptions,
  contextTokens: number,
  contextFromWorkload: boolean,
): SystemFit {
  const pools: { role: PoolRole; pool: DevicePool }[] =
    spec.kind === 'colocated'
      ? [{ role: 'colocated', pool: spec.colocated.pool }]
      : [
          { role: 'prefill', pool: spec.prefill.pool },
          { role: 'decode', pool: spec.decode.pool },
        ];
  const what = contextFromWorkload ? "the workload's median prompt + output" : 'the stated fit context';
  const reports = pools.map(({ role, pool }) => {
    const report = checkFit({
      model: opts.model,
      pool,
      weightDtype: opts.compute.weightDtype,
      kvDtype: opts.compute.kvDtype,
      batch: 1,
      contextTokens,
    });
    if (!report.fits) {
      const checked = `one request of ${contextTokens} tokens (${what})`;
      throw new SystemFitError(report, role, formatSystemSpec(spec), checked);
    }
    return { role, report };
  });
  const batchPool = spec.kind === 'colocated' ? spec.colocated.pool : spec.decode.pool;
  return {
    contextTokens,
    contextFromWorkload,
    pools: reports,
    decodeKvBudgetBytes: kvBudgetBytes(opts.model, batchPool, opts.compute),
  };
}
