/**
 * The timing model: pure functions from (model, devices, work, serving stack) to emulated device time in ms.
 *
 * One forward pass (a prefill, a decode step, a speculative verification) on a device with HBM:
 *
 *   pass = step overhead + layers x (matmuls + attention + elementwise + 2 all-reduces + layer overhead) + head + hops
 *   matmul    = max(FLOPs / (TP x peak x matmul eff), weight bytes / (TP x HBM bandwidth x bandwidth eff)) + kernel floor
 *   attention = max(attention FLOPs / (TP x peak x attention eff), KV bytes read / (TP x HBM bandwidth x bandwidth eff))
 *               (peak: 16-bit, or in prefill FP8 where the stack runs FP8 context attention over an FP8 KV cache)
 *   all-reduce = (base + per-hop x log2 ranks) + 2 (TP-1)/TP x activation bytes / (link bandwidth x link eff)
 *
 * On a wafer (CS-3), weights stay in SRAM laid out layer by layer, so a token's time is its walk:
 *
 *   pass = step overhead + layers x (latency + resident bytes per wafer / (SRAM bandwidth x read eff))
 *          + FLOPs / (peak x matmul eff) (pipelined over the systems) + KV read + hops between systems
 *
 * Factors are per serving stack and device (factors.ts, fitted in calibration/). Transfer time is KV bytes /
 * min(sender, receiver network bandwidth) + latency, optionally overlapped layer by layer with prefill.
 */
import { DEVICES, type DeviceFamily, type DeviceId, type DeviceProfile } from './devices';
import {
  FITTED_ACCEPTANCE,
  FITTED_BANDS,
  FITTED_FACTORS,
  type FactorTable,
  type HbmFactors,
  type WaferFactors,
} from './factors';
import { LINKS, type LinkProfile } from './links';
import {
  attentionFlops,
  DTYPE_BYTES,
  kvBytesForContext,
  mlpMatrices,
  parameterCounts,
  weightBytes,
  weightPartBytes,
  type Dtype,
  type ModelProfile,
} from './models';
import { poolLayout, ProfileError, type DevicePool, type PoolLayout } from './pool';
import { expectedTokensPerStep, type SpeculativeOptions } from './speculative';
import {
  DEFAULT_STACKS,
  factorSource,
  factorStackOf,
  STACKS,
  stackFor,
  type StackId,
  type StackProfile,
  type StackSelection,
} from './stacks';

type MoeDispatch = StackProfile['moeDispatch'];

const MS = 1000;
const US = 1e-6;
/** Activations crossing a collective or a pipeline boundary are BF16. */
const ACTIVATION_BYTES = 2;
/** Prompt chunk that fills a pipeline in prefill (chunked prefill, as in vLLM and Neuron's NxDI). */
const PREFILL_PIPELINE_CHUNK_TOKENS = 2048;

/** Which end of the cross-validated error band to charge (see bands in factors.ts). */
export type TimingBand = 'mid' | 'low' | 'high';

export interface ComputeOptions {
  readonly weightDtype: Dtype;
  readonly kvDtype: Dtype;
  /** The serving stack each device family runs. */
  readonly stacks: StackSelection;
  readonly factors: FactorTable;
  /** Acceptance rates of the providers' speculative decoding (factors.ts FITTED_ACCEPTANCE). */
  readonly acceptance: Readonly<Record<string, number>>;
  /** 'low' and 'high' scale device time by the family's cross-validated error band. */
  readonly band: TimingBand;
}

export const DEFAULT_COMPUTE: ComputeOptions = {
  weightDtype: 'bf16',
  kvDtype: 'bf16',
  stacks: DEFAULT_STACKS,
  factors: FITTED_FACTORS,
  acceptance: FITTED_ACCEPTANCE,
  band: 'mid',
};

/** The default compute options for a model: weights at the precision its checkpoint is published in. */
export function defaultCompute(model: ModelProfile, overrides: Partial<ComputeOptions> = {}): ComputeOptions {
  return { ...DEFAULT_COMPUTE, weightDtype: model.nativeWeightDtype, ...overrides };
}

function peakFlops(device: DeviceProfile, dtype: Dtype): number {
  // FP8 (and INT8, MXFP4) weights run on the FP8 tensor path where there is one, else at the BF16 rate.
  const lowPrecision = dtype === 'fp8' || dtype === 'int8' || dtype === 'mxfp4';
  return lowPrecision && device.fp8Flops !== null ? device.fp8Flops : device.bf16Flops;
}

export interface ResolvedFactors<F> {
  readonly factors: F;
  readonly stack: StackId;
  /** The device the factors were measured on (differs from the pool's when borrowed). */
  readonly source: DeviceId;
  readonly borrowed: boolean;
}

/**
 * Resolved factors per compute options (compared by identity: options are read-only once made) and device.
 * Every emulated pass resolves them, so a decode step charged per token would otherwise redo the stack search.
 */
const resolvedFactors = new WeakMap<ComputeOptions, Map<DeviceId, ResolvedFactors<HbmFactors | WaferFactors>>>();

/** The factors a device runs with under the chosen stacks. */
export function resolveFactors(device: DeviceId, opts: ComputeOptions): ResolvedFactors<HbmFactors | WaferFactors> {
  let byDevice = resolvedFactors.get(opts);
  if (byDevice === undefined) {
    byDevice = new Map();
    resolvedFactors.set(opts, byDevice);
  }
  let resolved = byDevice.get(device);
  if (resolved === undefined) {
    resolved = resolveFactorsUncached(device, opts);
    byDevice.set(device, resolved);
  }
  return resolved;
}

function resolveFactorsUncached(device: DeviceId, opts: ComputeOptions): ResolvedFactors<HbmFactors | WaferFactors> {
  const stack = stackFor(device, opts.stacks);
  const source = factorSource(stack, device);
  // A stack without factors of its own runs those of the stack it names (stacks.ts factorsOf).
  const owner = factorStackOf(stack).id;
  const factors = opts.factors[owner]?.[source.device];
  if (factors === undefined) {
    throw new ProfileError(`serving stack "${owner}" has no fitted factors for "${source.device}"`);
  }
  return { factors, stack: stack.id, source: source.device, borrowed: source.borrowed };
}

/** The relative error band of a device's predictions: calibrated devices, or devices borrowing factors. */
export function bandFor(device: DeviceId, opts: ComputeOptions): number {
  const { borrowed } = resolveFactors(device, opts);
  const band = FITTED_BANDS[DEVICES[device].family as DeviceFamily];
  return borrowed ? band.borrowed : band.calibrated;
}

function bandScale(device: DeviceId, opts: ComputeOptions): number {
  if (opts.band === 'mid') return 1;
  const band = bandFor(device, opts);
  return opts.band === 'low' ? Math.exp(-band) : Math.exp(band);
}

/** Weight bytes read by a forward pass of `tokensInBatch` tokens: MoE reads only the experts some token routes to. */
export function weightBytesRead(model: ModelProfile, tokensInBatch: number, dtype: Dtype): number {
  const p = parameterCounts(model);
  if (!model.moe) return weightBytes(model, dtype);
  const bytes = weightPartBytes(dtype);
  const routedAll = p.expertParams * model.moe.experts * p.moeLayers;
  const touched = expectedExpertsTouched(model, tokensInBatch);
  const otherBytes = weightBytes(model, dtype) - routedAll * bytes.mlp;
  return otherBytes + touched * p.expertParams * p.moeLayers * bytes.mlp;
}

/** Expected distinct experts hit by n tokens each picking k of E uniformly. */
function expectedExpertsTouched(model: ModelProfile, tokens: number): number {
  if (!model.moe) return 0;
  const { experts, activeExperts } = model.moe;
  return experts * (1 - Math.pow(1 - activeExperts / experts, tokens));
}

/**
 * NxD's MoE dispatch constants (aws-neuron/neuronx-distributed, modules/moe/model_utils.py): selective loading
 * below one expert load per expert on average, and dropless blocks of 512 tokens.
 */
const NXD_SELECTIVE_LOADING_THRESHOLD = 1;
const NXD_BLOCK_SIZE = 512;

/** What one MoE layer's routed experts compute (token-expert rows) and read (expert weight copies). */
interface RoutedWork {
  readonly rows: number;
  readonly expertReads: number;
}

/**
 * The routed experts' work for `tokens` tokens of a pass whose sequences advance one token each (`oneEach`:
 * decode) or several (prefill, speculative verification).
 *
 * `grouped` (GPU fused MoE): exactly the routed rows, reading the experts some token picked.
 * `nxd`, as ExpertMLPsV2.forward dispatches (neuronx-distributed, modules/moe/expert_mlps_v2.py):
 *  - fewer routed rows than experts: selective loading, one expert load per routed row, duplicates included;
 *  - otherwise a decode step, or a pass with fewer routed rows than a block: every token through every expert;
 *  - otherwise dropless blockwise: each expert's rows padded to whole blocks of 512, every block computed.
 */
function routedExpertWork(model: ModelProfile, dispatch: MoeDispatch, tokens: number, oneEach: boolean): RoutedWork {
  if (!model.moe) return { rows: 0, expertReads: 0 };
  const { experts, activeExperts } = model.moe;
  const routed = tokens * activeExperts;
  const touched = expectedExpertsTouched(model, tokens);
  if (dispatch === 'grouped') return { rows: routed, expertReads: touched };
  if (routed / experts < NXD_SELECTIVE_LOADING_THRESHOLD) return { rows: routed, expertReads: routed };
  if (oneEach || routed < NXD_BLOCK_SIZE) return { rows: tokens * experts, expertReads: experts };
  // Routing taken as uniform: each touched expert holds routed / touched rows, padded to whole blocks.
  const blocks = touched * Math.ceil(routed / touched / NXD_BLOCK_SIZE);
  return { rows: blocks * NXD_BLOCK_SIZE, expertReads: touched };
}

/** One sequence's share of a forward pass: tokens computed now, after tokens whose KV is already cached. */
export interface PassSequence {
  readonly newTokens: number;
  readonly contextTokens: number;
}

export type PassKind = 'prefill' | 'decode';

export interface PassBreakdown {
  readonly ms: number;
  /** Matrix multiplies and attention (the larger of their compute and memory time, per kernel). */
  readonly kernelMs: number;
  /** Collectives and pipeline hops. */
  readonly communicationMs: number;
  /** Fixed costs of the stack: per pass, per layer, per sequence, kernel floors; on a wafer, layer latency. */
  readonly overheadMs: number;
  readonly flops: number;
}

const EMPTY_PASS: PassBreakdown = { ms: 0, kernelMs: 0, communicationMs: 0, overheadMs: 0, flops: 0 };

/** The work of one pass, summed over its sequences. */
interface PassWork {
  readonly tokens: number;
  readonly sequences: number;
  /** Positions whose logits are computed: each prompt's last in prefill, every new token in decode. */
  readonly logits: number;
  readonly attentionFlops: number;
  readonly kvBytesRead: number;
}

function passWork(model: ModelProfile, seqs: readonly PassSequence[], kind: PassKind, kvDtype: Dtype): PassWork {
  let tokens = 0;
  let sequences = 0;
  let flops = 0;
  let kv = 0;
  for (const s of seqs) {
    if (s.newTokens <= 0) continue;
    tokens += s.newTokens;
    sequences += 1;
    flops += attentionFlops(model, s.newTokens, s.contextTokens);
    kv += kvBytesForContext(model, s.contextTokens + s.newTokens, kvDtype);
  }
  return {
    tokens,
    sequences,
    logits: kind === 'prefill' ? sequences : tokens,
    attentionFlops: flops,
    kvBytesRead: kv,
  };
}

/** The time of one forward pass on a pool (one replica). */
export function forwardPassTime(
  model: ModelProfile,
  pool: DevicePool,
  seqs: readonly PassSequence[],
  kind: PassKind,
  opts: ComputeOptions = DEFAULT_COMPUTE,
): PassBreakdown {
  const work = passWork(model, seqs, kind, opts.kvDtype);
  if (work.tokens === 0) return EMPTY_PASS;
  return passFromWork(model, pool, work, kind, opts, new HbmLayerCache());
}

function passFromWork(
  model: ModelProfile,
  pool: DevicePool,
  work: PassWork,
  kind: PassKind,
  opts: ComputeOptions,
  cache: HbmLayerCache,
): PassBreakdown {
  const f = resolveFactors(pool.device, opts).factors;
  const parts =
    f.kind === 'wafer'
      ? waferParts(waferConstants(model, pool, f, opts), kind, work)
      : hbmParts(hbmConstants(model, pool, f, opts), kind, work, cache);
  return breakdownOf(parts, bandScale(pool.device, opts));
}

/** One matrix multiply's shape per layer: K x N weights, read at `bytesPerParam`. */
interface Gemm {
  readonly k: number;
  readonly n: number;
  readonly bytesPerParam: number;
}

/** The matrix multiplies of one dense layer (attention projections and MLP) and of one MoE layer's non-expert part. */
function layerGemms(model: ModelProfile, dtype: Dtype): { attention: Gemm[]; denseMlp: Gemm[] } {
  const b = weightPartBytes(dtype);
  const h = model.hiddenSize;
  const attention: Gemm[] = [
    { k: h, n: (model.heads + 2 * model.kvHeads) * model.headDim, bytesPerParam: b.other },
    { k: model.heads * model.headDim, n: h, bytesPerParam: b.other },
  ];
  const up = model.mlp === 'gated' ? 2 * model.intermediateSize : model.intermediateSize;
  const denseMlp: Gemm[] = [
    { k: h, n: up, bytesPerParam: b.mlp },
    { k: model.intermediateSize, n: h, bytesPerParam: b.mlp },
  ];
  return { attention, denseMlp };
}

/** Per-token-count parts of an HBM pass, memoized by the simulator's fast path. */
class HbmLayerCache {
  readonly byTokens = new Map<number, { gemmS: number; flops: number }>();
}

function hbmPass(
  model: ModelProfile,
  pool: DevicePool,
  work: PassWork,
  kind: PassKind,
  f: HbmFactors,
  opts: ComputeOptions,
  cache: HbmLayerCache,
): PassBreakdown {
  return breakdownOf(hbmParts(hbmConstants(model, pool, f, opts), kind, work, cache));
}

/** A pass's terms in seconds (its ms already summed), as hbmParts and waferParts give them. */
interface PassParts {
  ms: number;
  kernelS: number;
  communicationS: number;
  overheadS: number;
  flops: number;
}

/** The pass's breakdown in ms, device times scaled by `scale` (the error band's; x 1 leaves a time as it is). */
function breakdownOf(parts: PassParts, scale = 1): PassBreakdown {
  return {
    ms: parts.ms * scale,
    kernelMs: parts.kernelS * MS * scale,
    communicationMs: parts.communicationS * MS * scale,
    overheadMs: parts.overheadS * MS * scale,
    flops: parts.flops,
  };
}

/** What an HBM pass's time takes from its model, pool and factors alone (the same for every pass). */
interface HbmConstants {
  readonly model: ModelProfile;
  readonly device: DeviceProfile;
  readonly f: HbmFactors;
  readonly t: number;
  readonly ranks: number;
  readonly stages: number;
  readonly peak: number;
  readonly bw: number;
  /** Attention's compute and memory rates over the tensor-parallel group; prefill's compute rate on its own. */
  readonly attentionRate: number;
  readonly prefillAttentionRate: number;
  readonly kvRate: number;
  /** Elementwise activation values per token (the bytes are these x tokens x ACTIVATION_BYTES). */
  readonly elementwisePerToken: number;
  /** Fixed cost of a prefill pass and of a decode step, s. */
  readonly prefillStepS: number;
  readonly decodeStepS: number;
  /** hbmGemms' inputs: the layers' multiplies (layerGemmTerms), the MoE layers and experts, the head's bytes. */
  readonly gemmTerms: Float64Array;
  readonly moeLayers: number;
  readonly expertParams: number;
  readonly mlpBytes: number;
  readonly headBytes: number;
  /** How the pool's stack runs the routed experts (routedExpertWork). */
  readonly dispatch: MoeDispatch;
  /** Times a decode pass reads each byte of its KV cache (decodeKvReadMultiple). */
  readonly decodeKvReads: number;
}

/**
 * Times a decode pass's attention reads each byte of the KV cache on `stack`: once, or, where the decode kernel
 * runs one thread block per query head and a grouped-query model's query heads do not share their KV head's
 * reads, once per query head of the group (heads / KV heads; 1 for a multi-head model). TensorRT-LLM before
 * its XQA kernels did so: NVIDIA/TensorRT-LLM issue 407 (2023-11-16) reports that its generation kernel loads
 * the KV cache num_heads / num_heads_kv times from global memory, the v0.5 gpt_attention.md describes that
 * masked MHA kernel as one CUDA thread block per head, and the release notes bring "MMHA optimization for MQA
 * and GQA" and the XQA kernel's FP8 KV cache in 0.7.1, and the Hopper XQA kernels for LLaMA 2 70B in 0.10.0.
 */
export function decodeKvReadMultiple(model: ModelProfile, stack: StackProfile): number {
  return stack.decodeKvReads === 'per-query-head' ? model.heads / model.kvHeads : 1;
}

/**
 * Peak rate of prefill (context) attention: the FP8 tensor rate where the stack runs FP8 context FMHA over an FP8
 * KV cache on a device with an FP8 path (stacks.ts, contextAttention), else the 16-bit rate.
 */
export function contextAttentionFlops(device: DeviceProfile, stack: StackProfile, kvDtype: Dtype): number {
  return stack.contextAttention === 'kv-dtype' && kvDtype === 'fp8' && device.fp8Flops !== null
    ? device.fp8Flops
    : device.bf16Flops;
}

function hbmConstants(model: ModelProfile, pool: DevicePool, f: HbmFactors, opts: ComputeOptions): HbmConstants {
  const device = DEVICES[pool.device];
  const layout = poolLayout(pool);
  const t = layout.tensorParallel;
  const ranks = t * device.ranksPerDevice;
  const bw = device.memoryBandwidth * f.bandwidthEfficiency;
  const activeIntermediate = model.moe
    ? (model.moe.activeExperts + model.moe.sharedExperts) * model.moe.expertIntermediate
    : model.intermediateSize;
  const p = parameterCounts(model);
  const bytes = weightPartBytes(opts.weightDtype);
  const stack = STACKS[resolveFactors(pool.device, opts).stack];
  return {
    model,
    device,
    f,
    t,
    ranks,
    stages: layout.pipelineStages,
    peak: peakFlops(device, opts.weightDtype),
    bw,
    attentionRate: t * device.bf16Flops * f.attentionEfficiency,
    prefillAttentionRate: t * contextAttentionFlops(device, stack, opts.kvDtype) * f.attentionEfficiency,
    kvRate: t * bw,
    elementwisePerToken: f.elementwiseVectors * model.hiddenSize + (mlpMatrices(model) * activeIntermediate) / t,
    prefillStepS: (f.prefillOverheadUs + f.prefillOverheadPerHopUs * Math.log2(ranks)) * US,
    decodeStepS: (f.stepOverheadUs + f.stepOverheadPerHopUs * Math.log2(ranks)) * US,
    gemmTerms: layerGemmTerms(model, opts.weightDtype),
    moeLayers: p.moeLayers,
    expertParams: p.expertParams,
    mlpBytes: bytes.mlp,
    headBytes: model.hiddenSize * model.vocabSize * bytes.vocab,
    dispatch: stack.moeDispatch,
    decodeKvReads: decodeKvReadMultiple(model, stack),
  };
}

/** A pass's terms; one object reused (callers read it before the next pass). */
const partsScratch: PassParts = { ms: 0, kernelS: 0, communicationS: 0, overheadS: 0, flops: 0 };

function hbmParts(c: HbmConstants, kind: PassKind, work: PassWork, cache: HbmLayerCache): PassParts {
  const { model, device, f, t, ranks } = c;
  const n = work.tokens;

  // Matrix multiplies of all layers and the head, memoized per token count and (NxD's MoE dispatch only)
  // whether every sequence advances by one token: they depend on nothing else.
  const oneEach = c.dispatch === 'nxd' && model.moe !== null && n === work.sequences;
  const key = (n * 1e6 + work.logits) * 2 + (oneEach ? 1 : 0);
  let g = cache.byTokens.get(key);
  if (g === undefined) {
    g = hbmGemms(c, n, work.logits, oneEach);
    cache.byTokens.set(key, g);
  }

  // Attention over the KV actually read, all layers: the larger of its compute and its memory time.
  const kvBytes = kind === 'decode' ? work.kvBytesRead * c.decodeKvReads : work.kvBytesRead;
  const attentionRate = kind === 'prefill' ? c.prefillAttentionRate : c.attentionRate;
  const attentionS = Math.max(work.attentionFlops / attentionRate, kvBytes / c.kvRate);
  const elementwiseBytes = n * c.elementwisePerToken * ACTIVATION_BYTES;
  const elementwiseS = (model.layers * elementwiseBytes) / c.bw;
  const activationBytes = n * model.hiddenSize * ACTIVATION_BYTES;
  const allReduceS = ranks > 1 ? 2 * model.layers * allReduceSeconds(activationBytes, device, t, ranks, f) : 0;
  const layerOverheadS = model.layers * (f.layerOverheadUs + f.sequenceOverheadUs * work.sequences) * US;
  const stepS = kind === 'prefill' ? c.prefillStepS : c.decodeStepS;

  // Pipeline stages run one after another; chunked prefill overlaps them ((chunks + stages - 1) / (chunks x stages)).
  const exposed = pipelineFactor(kind, n, c.stages);
  const kernelS = (g.gemmS + attentionS + elementwiseS) * exposed;
  const layersS = kernelS + (allReduceS + layerOverheadS) * exposed;
  const hopsS = pipelineHopsSeconds(model, device, c.stages, n);
  const out = partsScratch;
  out.ms = (stepS + layersS + hopsS) * MS;
  out.kernelS = kernelS;
  out.communicationS = allReduceS * exposed + hopsS;
  out.overheadS = stepS + layerOverheadS * exposed;
  out.flops = g.flops + work.attentionFlops;
  return out;
}

/**
 * The dense matrix multiplies of every layer, as (k, n, bytes per parameter, layers) in a flat array: the
 * attention projections over all layers, then the dense MLP over the dense layers (layerGemms' order).
 */
function layerGemmTerms(model: ModelProfile, dtype: Dtype): Float64Array {
  const shapes = layerGemms(model, dtype);
  const denseLayers = model.layers - parameterCounts(model).moeLayers;
  const terms: number[] = [];
  for (const shape of shapes.attention) terms.push(shape.k, shape.n, shape.bytesPerParam, model.layers);
  for (const shape of shapes.denseMlp) terms.push(shape.k, shape.n, shape.bytesPerParam, denseLayers);
  return Float64Array.from(terms);
}

/** Matrix multiplies of a pass over `n` tokens: all layers, plus the output head for `logits` positions. */
function hbmGemms(c: HbmConstants, n: number, logits: number, oneEach: boolean): { gemmS: number; flops: number } {
  const { model, t, peak, bw, f } = c;
  const terms = c.gemmTerms;
  let seconds = 0;
  let flops = 0;
  // One device's share of each multiply (gemmSeconds of FLOPs / t and bytes / t).
  for (let j = 0; j < terms.length; j += 4) {
    const k = terms[j] as number;
    const cols = terms[j + 1] as number;
    const layers = terms[j + 3] as number;
    const fl = 2 * n * k * cols;
    seconds += layers * gemmSeconds(fl / t, (k * cols * (terms[j + 2] as number)) / t, peak, bw, f);
    flops += layers * fl;
  }
  if (model.moe) {
    const moeLayers = c.moeLayers;
    const expert = c.expertParams;
    // Routed experts as one multiply over the rows the stack computes, reading the expert copies it loads.
    const routed = routedExpertWork(model, c.dispatch, n, oneEach);
    const routedFlops = 2 * routed.rows * expert;
    const routedBytes = routed.expertReads * expert * c.mlpBytes;
    seconds += moeLayers * gemmSeconds(routedFlops / t, routedBytes / t, peak, bw, f);
    flops += moeLayers * routedFlops;
    if (model.moe.sharedExperts > 0) {
      const sharedFlops = 2 * n * model.moe.sharedExperts * expert;
      const sharedBytes = model.moe.sharedExperts * expert * c.mlpBytes;
      seconds += moeLayers * gemmSeconds(sharedFlops / t, sharedBytes / t, peak, bw, f);
      flops += moeLayers * sharedFlops;
    }
  }
  // Output head: only the positions whose logits are sampled.
  const headFlops = 2 * logits * model.hiddenSize * model.vocabSize;
  const headS = gemmSeconds(headFlops / t, c.headBytes / t, peak, bw, f);
  return { gemmS: seconds + headS, flops: flops + headFlops };
}

/**
 * One device's share of a matrix multiply: the larger of its compute and memory time, and never less than
 * the shortest kernel the stack runs (launch tail and wave quantisation bound tiny multiplies).
 */
function gemmSeconds(flops: number, bytes: number, peak: number, bandwidth: number, f: HbmFactors): number {
  return Math.max(flops / (peak * f.matmulEfficiency), bytes / bandwidth, f.kernelFloorUs * US);
}

/** The time of one all-reduce of `bytes` over `t` devices (`ranks` collective ranks). */
function allReduceSeconds(bytes: number, device: DeviceProfile, t: number, ranks: number, f: HbmFactors): number {
  const link = LINKS[device.intraLink];
  const latency = (f.allReduceBaseUs + f.allReducePerHopUs * Math.log2(ranks)) * US;
  const bandwidth = t > 1 ? ((2 * (t - 1)) / t) * (bytes / (link.bandwidth * f.linkEfficiency)) : 0;
  return latency + bandwidth;
}

/**
 * Calibration handles on the kernel model: one device's share of a matrix multiply of `tokens` rows against
 * a K x N weight shard, and one all-reduce of `bytes` over `workers` devices, in ms.
 */
export function matmulMs(
  deviceId: DeviceId,
  f: HbmFactors,
  tokens: number,
  k: number,
  n: number,
  dtype: Dtype,
): number {
  const device = DEVICES[deviceId];
  const flops = 2 * tokens * k * n;
  const bytes = k * n * weightPartBytes(dtype).other;
  const bandwidth = device.memoryBandwidth * f.bandwidthEfficiency;
  return gemmSeconds(flops, bytes, peakFlops(device, dtype), bandwidth, f) * MS;
}

export function allReduceMs(deviceId: DeviceId, f: HbmFactors, bytes: number, workers: number): number {
  const device = DEVICES[deviceId];
  return allReduceSeconds(bytes, device, workers, workers * device.ranksPerDevice, f) * MS;
}

/**
 * How much of a pass's layer time a pipeline of `stages` exposes: all of it for one chunk (a token crosses
 * the stages in turn), (chunks + stages - 1) / (chunks x stages) when a prompt's chunks overlap.
 */
function pipelineFactor(kind: PassKind, tokens: number, stages: number): number {
  if (stages <= 1) return 1;
  const chunks = kind === 'prefill' ? Math.max(1, Math.ceil(tokens / PREFILL_PIPELINE_CHUNK_TOKENS)) : 1;
  return (chunks + stages - 1) / (chunks * stages);
}

/** Activations handed from one pipeline stage (instance or CS-3 system) to the next. */
function pipelineHopsSeconds(model: ModelProfile, device: DeviceProfile, stages: number, tokens: number): number {
  if (stages <= 1) return 0;
  const link = LINKS[device.interLink];
  const bytes = tokens * model.hiddenSize * ACTIVATION_BYTES;
  return (stages - 1) * (link.latency + bytes / link.bandwidth);
}

/**
 * Wafer-scale pass. Each system holds `layers / systems` layers; within a wafer every layer owns cores in
 * proportion to its bytes, so each layer takes its latency plus the time its region reads the bytes
 * resident on that wafer. Computation pipelines across systems: one token crosses them in turn, a batch
 * (or a chunked prompt) keeps them all busy.
 */
function waferPass(
  model: ModelProfile,
  pool: DevicePool,
  work: PassWork,
  kind: PassKind,
  f: WaferFactors,
  opts: ComputeOptions,
): PassBreakdown {
  return breakdownOf(waferParts(waferConstants(model, pool, f, opts), kind, work));
}

/** What a wafer pass's time takes from its model, pool and factors alone (the same for every pass). */
interface WaferConstants {
  readonly systems: number;
  /** The pass's fixed cost plus its layers' walk (latency and resident reads), summed as the pass sums them. */
  readonly fixedS: number;
  /** Dense FLOPs per token, and the head's per logit (linearFlops). */
  readonly flopsPerToken: number;
  readonly headFlopsPerLogit: number;
  readonly computeRate: number;
  readonly kvRate: number;
  /** Times a decode pass reads each byte of its KV cache (decodeKvReadMultiple). */
  readonly decodeKvReads: number;
  readonly hopLatencyS: number;
  readonly hiddenSize: number;
  readonly linkBandwidth: number;
}

function waferConstants(model: ModelProfile, pool: DevicePool, f: WaferFactors, opts: ComputeOptions): WaferConstants {
  const device = DEVICES[pool.device];
  const systems = pool.count;
  const residentPerWafer = weightBytes(model, opts.weightDtype) / systems;
  const layerS =
    model.layers * (f.layerLatencyUs * US + residentPerWafer / (device.memoryBandwidth * f.residentReadEfficiency));
  const stepS = f.stepOverheadUs * US;
  const p = parameterCounts(model);
  return {
    systems,
    fixedS: stepS + layerS,
    flopsPerToken: 2 * (p.active - p.embedding - p.outputHead),
    headFlopsPerLogit: 2 * p.outputHead,
    computeRate: device.bf16Flops * f.matmulEfficiency,
    kvRate: device.memoryBandwidth * f.kvBandwidthEfficiency,
    decodeKvReads: decodeKvReadMultiple(model, STACKS[resolveFactors(pool.device, opts).stack]),
    hopLatencyS: f.hopLatencyUs * US,
    hiddenSize: model.hiddenSize,
    linkBandwidth: LINKS[device.interLink].bandwidth,
  };
}

function waferParts(w: WaferConstants, kind: PassKind, work: PassWork): PassParts {
  const systems = w.systems;
  const tokens = work.tokens;
  // Dense FLOPs of the weight multiplies: active parameters per token, the head only where logits are taken.
  const flops = w.flopsPerToken * tokens + w.headFlopsPerLogit * work.logits + work.attentionFlops;
  const units = kind === 'prefill' ? Math.max(1, Math.ceil(tokens / PREFILL_PIPELINE_CHUNK_TOKENS)) : tokens;
  const overlap = (units + systems - 1) / (units * systems);
  const computeS = (flops / w.computeRate) * overlap;
  const kvS = (kind === 'decode' ? work.kvBytesRead * w.decodeKvReads : work.kvBytesRead) / w.kvRate;
  // Hops between systems: the fitted hand-over latency plus the activations over the system I/O.
  const hopsS = (systems - 1) * (w.hopLatencyS + (tokens * w.hiddenSize * ACTIVATION_BYTES) / w.linkBandwidth);
  const out = partsScratch;
  out.ms = (w.fixedS + computeS + kvS + hopsS) * MS;
  out.kernelS = computeS + kvS;
  out.communicationS = hopsS;
  out.overheadS = w.fixedS;
  out.flops = flops;
  return out;
}

/** Token counts whose decode-pass terms a timer keeps (a step of up to 1,024 tokens: batch x queries). */
const DECODE_TERMS_TOKENS = 1024;

/**
 * waferParts(w, 'decode', work).ms for a decode pass of `work.tokens` tokens, each with its logits, the terms
 * that depend on the token count alone (dense FLOPs, pipeline overlap, hops) kept in `terms` (3 per count, 0:
 * not yet), with the same operations in the same order.
 */
function waferDecodeMs(w: WaferConstants, terms: Float64Array, work: PassWork): number {
  const tokens = work.tokens;
  if (tokens >= DECODE_TERMS_TOKENS || work.logits !== tokens) return waferParts(w, 'decode', work).ms;
  const at = 3 * tokens;
  if (!((terms[at + 1] as number) > 0)) {
    const systems = w.systems;
    terms[at] = w.flopsPerToken * tokens + w.headFlopsPerLogit * tokens;
    terms[at + 1] = (tokens + systems - 1) / (tokens * systems);
    terms[at + 2] = (systems - 1) * (w.hopLatencyS + (tokens * w.hiddenSize * ACTIVATION_BYTES) / w.linkBandwidth);
  }
  const computeS = (((terms[at] as number) + work.attentionFlops) / w.computeRate) * (terms[at + 1] as number);
  const kvS = (work.kvBytesRead * w.decodeKvReads) / w.kvRate;
  return (w.fixedS + computeS + kvS + (terms[at + 2] as number)) * MS;
}

/**
 * A speculative draft's pass: a full copy on one device of the pool, no collectives, fused into the
 * target's step (no step overhead of its own), as NxD Inference's fused speculation runs it.
 */
export function draftPassTime(
  draft: ModelProfile,
  pool: DevicePool,
  seqs: readonly PassSequence[],
  opts: ComputeOptions = DEFAULT_COMPUTE,
): PassBreakdown {
  const work = passWork(draft, seqs, 'decode', opts.kvDtype);
  if (work.tokens === 0) return EMPTY_PASS;
  const raw = rawDraftPass(draft, pool, work, opts, new HbmLayerCache());
  return { ...raw, ms: raw.ms * bandScale(pool.device, opts) };
}

/** A draft's factors: the target's, without the fixed costs a fused draft does not pay. One object per table. */
const draftFactorCache = new WeakMap<HbmFactors | WaferFactors, HbmFactors | WaferFactors>();

function draftFactors(f: HbmFactors | WaferFactors): HbmFactors | WaferFactors {
  let d = draftFactorCache.get(f);
  if (d === undefined) {
    d =
      f.kind === 'wafer'
        ? { ...f, stepOverheadUs: 0 }
        : {
            ...f,
            stepOverheadUs: 0,
            prefillOverheadUs: 0,
            stepOverheadPerHopUs: 0,
            prefillOverheadPerHopUs: 0,
            allReduceBaseUs: 0,
            allReducePerHopUs: 0,
          };
    draftFactorCache.set(f, d);
  }
  return d;
}

/** A pool's constant pass terms, for whichever kind of device it has. */
interface PassConstants {
  readonly wafer: WaferConstants | null;
  readonly hbm: HbmConstants | null;
}

function passConstants(
  model: ModelProfile,
  pool: DevicePool,
  f: HbmFactors | WaferFactors,
  opts: ComputeOptions,
): PassConstants {
  return f.kind === 'wafer'
    ? { wafer: waferConstants(model, pool, f, opts), hbm: null }
    : { wafer: null, hbm: hbmConstants(model, pool, f, opts) };
}

/** The pass's time before the error band's scale, as waferPass or hbmPass gives it. */
function rawPassMs(c: PassConstants, kind: PassKind, work: PassWork, cache: HbmLayerCache): number {
  return c.wafer ? waferParts(c.wafer, kind, work).ms : hbmParts(c.hbm as HbmConstants, kind, work, cache).ms;
}

/** A pass's work, filled in place by the timers below (one object per timer, no allocation per pass). */
interface MutablePassWork {
  tokens: number;
  sequences: number;
  logits: number;
  attentionFlops: number;
  kvBytesRead: number;
}

/**
 * A fresh work object. The FLOPs and bytes start as a double (NaN; every pass sets them before use), so the
 * object's shape does not change when they first outgrow a small integer, which would discard the optimized
 * code that reads it.
 */
const emptyWork = (): MutablePassWork => ({
  tokens: 0,
  sequences: 0,
  logits: 0,
  attentionFlops: Number.NaN,
  kvBytesRead: Number.NaN,
});

/**
 * One pool's forward passes for callers that time many (the simulator's prefills and chunked steps):
 * forwardPassTime(...).ms, with the pool's constant terms computed once, its matrix-multiply memo kept
 * across passes, and the pass's sequences summed as they are added (passWork's sums, in the same order).
 * Use: timer.start().add(newTokens, contextTokens)...ms().
 */
export class PassTimer {
  private readonly constants: PassConstants;
  private readonly bandScale: number;
  private readonly cache = new HbmLayerCache();
  private readonly work = emptyWork();

  constructor(
    private readonly model: ModelProfile,
    pool: DevicePool,
    private readonly kind: PassKind,
    private readonly opts: ComputeOptions = DEFAULT_COMPUTE,
  ) {
    this.constants = passConstants(model, pool, resolveFactors(pool.device, opts).factors, opts);
    this.bandScale = bandScale(pool.device, opts);
  }

  start(): this {
    const w = this.work;
    w.tokens = 0;
    w.sequences = 0;
    w.attentionFlops = 0;
    w.kvBytesRead = 0;
    return this;
  }

  /** One sequence: `newTokens` computed after `contextTokens` whose KV is there (a prompt's cached prefix). */
  add(newTokens: number, contextTokens: number): this {
    if (newTokens <= 0) return this;
    const w = this.work;
    w.tokens += newTokens;
    w.sequences += 1;
    w.attentionFlops += attentionFlops(this.model, newTokens, contextTokens);
    w.kvBytesRead += kvBytesForContext(this.model, contextTokens + newTokens, this.opts.kvDtype);
    return this;
  }

  /** The pass's time, ms (0 with no tokens to compute). */
  ms(): number {
    const w = this.work;
    if (w.tokens === 0) return 0;
    w.logits = this.kind === 'prefill' ? w.sequences : w.tokens;
    const ms = rawPassMs(this.constants, this.kind, w, this.cache);
    return this.bandScale === 1 ? ms : ms * this.bandScale;
  }
}

/** A draft's pass before the error band's scale: the callers apply it (bandScale). */
function rawDraftPass(
  draft: ModelProfile,
  pool: DevicePool,
  work: PassWork,
  opts: ComputeOptions,
  cache: HbmLayerCache,
): PassBreakdown {
  const one: DevicePool = { device: pool.device, count: 1 };
  const f = draftFactors(resolveFactors(pool.device, opts).factors);
  return f.kind === 'wafer'
    ? waferPass(draft, one, work, 'decode', f, opts)
    : hbmPass(draft, one, work, 'decode', f, opts, cache);
}

export interface PrefillItem {
  /** Prompt tokens to compute. */
  readonly newTokens: number;
  /** Prompt tokens whose KV is already cached (a reused prefix): attended to, not recomputed. */
  readonly cachedTokens: number;
}

export type PrefillBreakdown = PassBreakdown;
export type DecodeBreakdown = PassBreakdown;

/** Time to prefill a batch of prompts on a pool (one replica): one pass that also yields each first token. */
export function prefillTime(
  model: ModelProfile,
  pool: DevicePool,
  batch: readonly PrefillItem[],
  opts: ComputeOptions = DEFAULT_COMPUTE,
): PrefillBreakdown {
  return forwardPassTime(
    model,
    pool,
    batch.map((item) => ({ newTokens: item.newTokens, contextTokens: item.cachedTokens })),
    'prefill',
    opts,
  );
}

/**
 * Time of one decode step for a batch: each request adds `queryTokens` (1, or k+1 when verifying
 * speculative drafts) at its context length.
 */
export function decodeStepTime(
  model: ModelProfile,
  pool: DevicePool,
  contexts: readonly number[],
  opts: ComputeOptions = DEFAULT_COMPUTE,
  queryTokens = 1,
): DecodeBreakdown {
  return forwardPassTime(
    model,
    pool,
    contexts.map((context) => ({ newTokens: queryTokens, contextTokens: context })),
    'decode',
    opts,
  );
}

/**
 * Decode step time from a batch's totals, for callers that step millions of times (the simulator).
 * For one query token per request it equals decodeStepTime: the per-request terms it aggregates (KV bytes,
 * attention keys) are integers, whose floating-point sums are exact in any order, and the rest is the
 * same pass formula (passFromWork). Matrix-multiply terms are memoized per batch size. With speculative
 * decoding it gives the time per output token as decodeBatchTokenTime does (k draft passes and one
 * verification of k + 1 tokens per round, over the tokens a round keeps).
 */
export class DecodeStepTimer {
  /** Keys a windowed layer attends to at most; Infinity when the model has no windowed layers. */
  readonly window: number;
  private readonly windowedLayers: number;
  private readonly globalLayers: number;
  private readonly kvBytesPerLayerToken: number;
  private readonly attentionFlopsPerKey: number;
  private readonly cache = new HbmLayerCache();
  private readonly draftCache = new HbmLayerCache();
  private readonly verifyCache = new HbmLayerCache();
  /** Output tokens a speculative round keeps, on average (fixed for the timer's draft). */
  private readonly tokensPerRound: number;
  /** The error band's scale of the pool's device time (passFromWork's and the draft's). */
  private readonly bandScale: number;
  /**
   * The pass's constant terms, so a step computes only what its shape changes, with the same
   * floating-point operations as passFromWork's waferPass or hbmPass.
   */
  private readonly target: PassConstants;
  /** The same for the speculative draft's pass (a full copy on one device, fused: draftFactors). */
  private readonly draftTarget: PassConstants | null;
  private readonly work = emptyWork();
  /** On a wafer, the target's and the draft's per-token-count decode terms (waferDecodeMs). */
  private readonly targetTerms = new Float64Array(3 * DECODE_TERMS_TOKENS);
  private readonly draftTerms = new Float64Array(3 * DECODE_TERMS_TOKENS);
  /**
   * The draft's KV bytes per layer and token, and its attention FLOPs per key. Doubles from the start (NaN until
   * the constructor sets them), so their products with a step's key count are compiled as double multiplies: as
   * small integers they would overflow once the contexts grow long, discarding the optimized step code.
   */
  private readonly draftKvPerLayerToken: number = Number.NaN;
  private readonly draftFlopsPerKey: number = Number.NaN;

  constructor(
    private readonly model: ModelProfile,
    private readonly pool: DevicePool,
    private readonly opts: ComputeOptions = DEFAULT_COMPUTE,
    private readonly speculative: SpeculativeOptions | null = null,
  ) {
    this.window = model.attentionWindow ? model.attentionWindow.window : Infinity;
    this.windowedLayers = model.attentionWindow ? model.attentionWindow.layers : 0;
    this.globalLayers = model.layers - this.windowedLayers;
    this.kvBytesPerLayerToken = 2 * model.kvHeads * model.headDim * DTYPE_BYTES[opts.kvDtype];
    this.attentionFlopsPerKey = 4 * model.heads * model.headDim;
    this.tokensPerRound = speculative ? expectedTokensPerStep(speculative.draftTokens, speculative.acceptanceRate) : 1;
    const f = resolveFactors(pool.device, opts).factors;
    this.bandScale = bandScale(pool.device, opts);
    this.target = passConstants(model, pool, f, opts);
    const draft = speculative?.draft.model;
    this.draftTarget = draft ? passConstants(draft, { device: pool.device, count: 1 }, draftFactors(f), opts) : null;
    this.draftKvPerLayerToken = draft ? 2 * draft.kvHeads * draft.headDim * DTYPE_BYTES[opts.kvDtype] : 0;
    this.draftFlopsPerKey = draft ? 4 * draft.heads * draft.headDim : 0;
  }

  /**
   * One step for `requests` requests of one query token each. `contextSum` is the sum of their
   * contexts; `windowedKeySum` the sum of min(context + 1, window), the keys a windowed layer reads and
   * attends to (ignored for models without windowed attention). `windowedContextSum` is accepted for
   * callers written against the earlier signature and not needed.
   */
  stepMs(requests: number, contextSum: number, _windowedContextSum = 0, windowedKeySum = 0): number {
    if (requests === 0) return 0;
    const spec = this.speculative;
    if (!spec) return this.passMs(requests, 1, contextSum, windowedKeySum, this.cache);
    // Verification: k + 1 queries per request after its context; query j (1-based) sees context + j keys.
    const q = spec.draftTokens + 1;
    const verify = this.passMs(requests, q, contextSum, windowedKeySum, this.verifyCache);
    const draftKeys = spec.draft.model.layers * (contextSum + requests);
    const work = this.work;
    work.tokens = requests;
    work.sequences = requests;
    work.logits = requests;
    work.attentionFlops = this.draftFlopsPerKey * draftKeys;
    work.kvBytesRead = this.draftKvPerLayerToken * draftKeys;
    // The draft pass's time alone (rawDraftPass's), without its breakdown.
    const draftTarget = this.draftTarget as PassConstants;
    const rawMs = draftTarget.wafer
      ? waferDecodeMs(draftTarget.wafer, this.draftTerms, work)
      : rawPassMs(draftTarget, 'decode', work, this.draftCache);
    return (spec.draftTokens * (rawMs * this.bandScale) + verify) / this.tokensPerRound;
  }

  /** A pass of `q` query tokens for each of `requests` requests (q = 1: a plain decode step). */
  private passMs(
    requests: number,
    q: number,
    contextSum: number,
    windowedKeySum: number,
    cache: HbmLayerCache,
  ): number {
    const w = this.windowedLayers;
    // Keys attended: query j sees context + j keys (global layers); windowed layers at most the window.
    const attended = q * contextSum + (requests * q * (q + 1)) / 2;
    const windowedAttended = q * windowedKeySum + (requests * q * (q - 1)) / 2;
    const keys =
      this.globalLayers * attended + (w > 0 ? w * Math.min(windowedAttended, requests * q * this.window) : 0);
    // Each request reads its KV once per pass: context + q tokens (windowed layers: capped).
    const read =
      this.globalLayers * (contextSum + requests * q) + (w > 0 ? w * (windowedKeySum + requests * (q - 1)) : 0);
    const work = this.work;
    work.tokens = requests * q;
    work.sequences = requests;
    work.logits = requests * q;
    work.attentionFlops = this.attentionFlopsPerKey * keys;
    work.kvBytesRead = this.kvBytesPerLayerToken * read;
    // passFromWork's pass and band scale, without the breakdown.
    const ms = this.target.wafer
      ? waferDecodeMs(this.target.wafer, this.targetTerms, work)
      : rawPassMs(this.target, 'decode', work, cache);
    return this.bandScale === 1 ? ms : ms * this.bandScale;
  }
}

export interface TransferRequest {
  readonly bytes: number;
  readonly from: DevicePool;
  readonly to: DevicePool;
  /** Network path; default: the slower of the sender's and the receiver's instance networks. */
  readonly link?: LinkProfile;
  readonly layers: number;
  /** When set, layer i's KV is sent as soon as prefill finishes layer i: only the tail is exposed. */
  readonly overlapWithPrefillMs?: number;
}

export interface TransferBreakdown {
  readonly ms: number;
  /** Transfer time had nothing overlapped. */
  readonly serialMs: number;
  readonly bandwidth: number;
}

/** Bandwidth a pool has on a network link: per-instance links scale with instances, per-device with devices. */
export function poolBandwidth(pool: DevicePool, link: LinkProfile): number {
  const units = link.scope === 'per-instance' ? poolLayout(pool).instances : pool.count;
  return units * link.bandwidth;
}

export function kvTransferTime(req: TransferRequest): TransferBreakdown {
  const sender = DEVICES[req.from.device];
  const receiver = DEVICES[req.to.device];
  const senderLink = req.link ?? LINKS[sender.interLink];
  const receiverLink = req.link ?? LINKS[receiver.interLink];
  const bandwidth = Math.min(poolBandwidth(req.from, senderLink), poolBandwidth(req.to, receiverLink));
  const latency = Math.max(senderLink.latency, receiverLink.latency);
  const serialS = req.bytes / bandwidth;
  let exposedS = serialS;
  if (req.overlapWithPrefillMs !== undefined && req.layers > 1) {
    const prefillS = req.overlapWithPrefillMs / MS;
    // Layer chunks stream while later layers compute; what remains after prefill ends is exposed.
    exposedS = Math.max(serialS / req.layers, serialS - (prefillS * (req.layers - 1)) / req.layers);
  }
  return { ms: (exposedS + latency) * MS, serialMs: (serialS + latency) * MS, bandwidth };
}

export type { PoolLayout };
