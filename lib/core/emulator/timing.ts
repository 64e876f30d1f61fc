/**
 * The timing model: pure functions from (model, devices, work, serving stack) to emulated device time in ms.
 *
 * One forward pass (a prefill, a decode step, a speculative verification) on a device with HBM:
 *
 *   pass = step overhead + layers x (matmuls + attention + elementwise + 2 all-reduces + layer overhead) + head + hops
 *   matmul    = max(FLOPs / (TP x peak x matmul eff), weight bytes / (TP x HBM bandwidth x bandwidth eff)) + kernel floor
 *   attention = max(attention FLOPs / (TP x peak x attention eff), KV bytes read / (TP x HBM bandwidth x bandwidth eff))
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
  const factors = opts.factors[stack.id][source.device];
  if (factors === undefined) {
    throw new ProfileError(`serving stack "${stack.id}" has no fitted factors for "${source.device}"`);
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
  const resolved = resolveFactors(pool.device, opts);
  const f = resolved.factors;
  const raw =
    f.kind === 'wafer'
      ? waferPass(model, pool, work, kind, f, opts)
      : hbmPass(model, pool, work, kind, f, opts, cache, STACKS[resolved.stack].moeDispatch);
  const scale = bandScale(pool.device, opts);
  if (scale === 1) return raw;
  return {
    ms: raw.ms * scale,
    kernelMs: raw.kernelMs * scale,
    communicationMs: raw.communicationMs * scale,
    overheadMs: raw.overheadMs * scale,
    flops: raw.flops,
  };
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
  dispatch: MoeDispatch,
): PassBreakdown {
  const device = DEVICES[pool.device];
  const layout = poolLayout(pool);
  const t = layout.tensorParallel;
  const ranks = t * device.ranksPerDevice;
  const n = work.tokens;
  const peak = peakFlops(device, opts.weightDtype);
  const bw = device.memoryBandwidth * f.bandwidthEfficiency;

  // Matrix multiplies of all layers and the head, memoized per token count and (NxD's MoE dispatch only)
  // whether every sequence advances by one token: they depend on nothing else.
  const oneEach = dispatch === 'nxd' && model.moe !== null && n === work.sequences;
  const key = (n * 1e6 + work.logits) * 2 + (oneEach ? 1 : 0);
  let g = cache.byTokens.get(key);
  if (g === undefined) {
    g = hbmGemms(model, t, n, work.logits, peak, bw, f, opts.weightDtype, routedExpertWork(model, dispatch, n, oneEach));
    cache.byTokens.set(key, g);
  }

  // Attention over the KV actually read, all layers: the larger of its compute and its memory time.
  const attentionS = Math.max(
    work.attentionFlops / (t * device.bf16Flops * f.attentionEfficiency),
    work.kvBytesRead / (t * bw),
  );
  const activeIntermediate = model.moe
    ? (model.moe.activeExperts + model.moe.sharedExperts) * model.moe.expertIntermediate
    : model.intermediateSize;
  const elementwiseBytes =
    n * (f.elementwiseVectors * model.hiddenSize + (mlpMatrices(model) * activeIntermediate) / t) * ACTIVATION_BYTES;
  const elementwiseS = (model.layers * elementwiseBytes) / bw;
  const activationBytes = n * model.hiddenSize * ACTIVATION_BYTES;
  const allReduceS = ranks > 1 ? 2 * model.layers * allReduceSeconds(activationBytes, device, t, ranks, f) : 0;
  const layerOverheadS = model.layers * (f.layerOverheadUs + f.sequenceOverheadUs * work.sequences) * US;
  const fixedUs = kind === 'prefill' ? f.prefillOverheadUs : f.stepOverheadUs;
  const perHopUs = kind === 'prefill' ? f.prefillOverheadPerHopUs : f.stepOverheadPerHopUs;
  const stepS = (fixedUs + perHopUs * Math.log2(ranks)) * US;

  // Pipeline stages run one after another; chunked prefill overlaps them ((chunks + stages - 1) / (chunks x stages)).
  const exposed = pipelineFactor(kind, n, layout.pipelineStages);
  const kernelS = (g.gemmS + attentionS + elementwiseS) * exposed;
  const layersS = kernelS + (allReduceS + layerOverheadS) * exposed;
  const hopsS = pipelineHopsSeconds(model, device, layout.pipelineStages, n);
  const ms = (stepS + layersS + hopsS) * MS;
  return {
    ms,
    kernelMs: kernelS * MS,
    communicationMs: (allReduceS * exposed + hopsS) * MS,
    overheadMs: (stepS + layerOverheadS * exposed) * MS,
    flops: g.flops + work.attentionFlops,
  };
}

/** Matrix multiplies of a pass over `n` tokens: all layers, plus the output head for `logits` positions. */
function hbmGemms(
  model: ModelProfile,
  t: number,
  n: number,
  logits: number,
  peak: number,
  bw: number,
  f: HbmFactors,
  dtype: Dtype,
  routed: RoutedWork,
): { gemmS: number; flops: number } {
  const gemm = (flops: number, bytes: number): number => gemmSeconds(flops / t, bytes / t, peak, bw, f);
  const shapes = layerGemms(model, dtype);
  const p = parameterCounts(model);
  let seconds = 0;
  let flops = 0;
  const run = (shape: Gemm, tokens: number, layers: number): void => {
    const fl = 2 * tokens * shape.k * shape.n;
    seconds += layers * gemm(fl, shape.k * shape.n * shape.bytesPerParam);
    flops += layers * fl;
  };
  for (const shape of shapes.attention) run(shape, n, model.layers);
  const denseLayers = model.layers - p.moeLayers;
  for (const shape of shapes.denseMlp) run(shape, n, denseLayers);
  if (model.moe) {
    const b = weightPartBytes(dtype);
    const expert = p.expertParams;
    // Routed experts as one multiply over the rows the stack computes, reading the expert copies it loads.
    const routedFlops = 2 * routed.rows * expert;
    const routedBytes = routed.expertReads * expert * b.mlp;
    seconds += p.moeLayers * gemm(routedFlops, routedBytes);
    flops += p.moeLayers * routedFlops;
    if (model.moe.sharedExperts > 0) {
      const sharedFlops = 2 * n * model.moe.sharedExperts * expert;
      seconds += p.moeLayers * gemm(sharedFlops, model.moe.sharedExperts * expert * b.mlp);
      flops += p.moeLayers * sharedFlops;
    }
  }
  // Output head: only the positions whose logits are sampled.
  const headFlops = 2 * logits * model.hiddenSize * model.vocabSize;
  const headBytes = model.hiddenSize * model.vocabSize * weightPartBytes(dtype).other;
  const headS = gemm(headFlops, headBytes);
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
  const device = DEVICES[pool.device];
  const systems = pool.count;
  const residentPerWafer = weightBytes(model, opts.weightDtype) / systems;
  const layerS =
    model.layers * (f.layerLatencyUs * US + residentPerWafer / (device.memoryBandwidth * f.residentReadEfficiency));
  const flops = linearFlops(model, work) + work.attentionFlops;
  const units = kind === 'prefill' ? Math.max(1, Math.ceil(work.tokens / PREFILL_PIPELINE_CHUNK_TOKENS)) : work.tokens;
  const overlap = (units + systems - 1) / (units * systems);
  const computeS = (flops / (device.bf16Flops * f.matmulEfficiency)) * overlap;
  const kvS = work.kvBytesRead / (device.memoryBandwidth * f.kvBandwidthEfficiency);
  // Hops between systems: the fitted hand-over latency plus the activations over the system I/O.
  const link = LINKS[device.interLink];
  const hopsS =
    (systems - 1) * (f.hopLatencyUs * US + (work.tokens * model.hiddenSize * ACTIVATION_BYTES) / link.bandwidth);
  const stepS = f.stepOverheadUs * US;
  const ms = (stepS + layerS + computeS + kvS + hopsS) * MS;
  return { ms, kernelMs: (computeS + kvS) * MS, communicationMs: hopsS * MS, overheadMs: (stepS + layerS) * MS, flops };
}

/** Dense FLOPs of a pass's weight multiplies: active parameters per token, the head only where logits are taken. */
function linearFlops(model: ModelProfile, work: PassWork): number {
  const p = parameterCounts(model);
  const perToken = 2 * (p.active - p.embedding - p.outputHead);
  return perToken * work.tokens + 2 * p.outputHead * work.logits;
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
    : hbmPass(draft, one, work, 'decode', f, opts, cache, STACKS[resolveFactors(pool.device, opts).stack].moeDispatch);
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
    resolveFactors(pool.device, opts);
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
    const draft = spec.draft.model;
    const draftKeys = draft.layers * (contextSum + requests);
    const draftKvPerLayerToken = 2 * draft.kvHeads * draft.headDim * DTYPE_BYTES[this.opts.kvDtype];
    const draftWork: PassWork = {
      tokens: requests,
      sequences: requests,
      logits: requests,
      attentionFlops: 4 * draft.heads * draft.headDim * draftKeys,
      kvBytesRead: draftKvPerLayerToken * draftKeys,
    };
    // The draft pass's time alone: the per-step path needs no breakdown.
    const draftMs =
      rawDraftPass(draft, this.pool, draftWork, this.opts, this.draftCache).ms * bandScale(this.pool.device, this.opts);
    return (spec.draftTokens * draftMs + verify) / this.tokensPerRound;
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
    const work: PassWork = {
      tokens: requests * q,
      sequences: requests,
      logits: requests * q,
      attentionFlops: this.attentionFlopsPerKey * keys,
      kvBytesRead: this.kvBytesPerLayerToken * read,
    };
    return passFromWork(this.model, this.pool, work, 'decode', this.opts, cache).ms;
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
