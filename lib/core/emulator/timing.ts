/**
 * The timing model: pure functions from (model, devices, work) to emulated device time in ms.
 *
 *   prefill  = max(FLOPs / (devices x peak x MFU), weights / (devices x bandwidth x eff)) + collectives + pipeline hops
 *   decode   = HBM:   max((weights read + KV read) / (TP x bandwidth x eff), FLOPs / (TP x peak x MFU)) + collectives + hops
 *              wafer: layers x per-layer latency + (weights + KV) / (SRAM bandwidth x eff) + hops between systems
 *   transfer = KV bytes / min(sender, receiver network bandwidth) + latency, optionally overlapped layer by layer
 */
import { DEVICES, type DeviceProfile } from './devices';
import { FITTED_EFFICIENCY, type EfficiencyTable, type HbmEfficiency, type WaferEfficiency } from './efficiency';
import { LINKS, type LinkProfile } from './links';
import {
  attentionFlops,
  DTYPE_BYTES,
  kvBytesForContext,
  linearFlopsPerToken,
  parameterCounts,
  type Dtype,
  type ModelProfile,
} from './models';
import { poolLayout, type DevicePool, type PoolLayout } from './pool';

const MS = 1000;
/** Activations crossing a collective or a pipeline boundary are BF16. */
const ACTIVATION_BYTES = 2;
/** Prompt chunk that fills a pipeline in prefill (chunked prefill, as in vLLM and Neuron's NxDI). */
const PREFILL_PIPELINE_CHUNK_TOKENS = 2048;

export interface ComputeOptions {
  readonly weightDtype: Dtype;
  readonly kvDtype: Dtype;
  readonly efficiency: EfficiencyTable;
}

export const DEFAULT_COMPUTE: ComputeOptions = { weightDtype: 'bf16', kvDtype: 'bf16', efficiency: FITTED_EFFICIENCY };

function peakFlops(device: DeviceProfile, dtype: Dtype): number {
  // FP8 (and MXFP4) weights run on the FP8 tensor path where there is one, else at the BF16 rate.
  const lowPrecision = dtype === 'fp8' || dtype === 'mxfp4';
  return lowPrecision && device.fp8Flops !== null ? device.fp8Flops : device.bf16Flops;
}

/** Weight bytes read by a forward pass of `tokensInBatch` tokens: MoE reads only the experts some token routes to. */
export function weightBytesRead(model: ModelProfile, tokensInBatch: number, dtype: Dtype): number {
  const p = parameterCounts(model);
  let params = p.alwaysRead + p.outputHead;
  if (model.moe) {
    const { experts, activeExperts } = model.moe;
    // Expected distinct experts hit by n tokens each picking k of E uniformly.
    const touched = experts * (1 - Math.pow(1 - activeExperts / experts, tokensInBatch));
    params += touched * p.expertParams * p.moeLayers;
  }
  return params * DTYPE_BYTES[dtype];
}

/**
 * Time of the tensor-parallel all-reduces of one forward pass: two per layer (after attention and
 * after the MLP), a ring's bandwidth term plus a tree's log2(TP) hop latencies and a fitted overhead.
 */
function collectivesSeconds(
  model: ModelProfile,
  device: DeviceProfile,
  tensorParallel: number,
  tokens: number,
  eff: HbmEfficiency,
): number {
  if (tensorParallel <= 1) return 0;
  const link = LINKS[device.intraLink];
  const bytes = tokens * model.hiddenSize * ACTIVATION_BYTES;
  const bandwidthTerm = ((2 * (tensorParallel - 1)) / tensorParallel) * (bytes / link.bandwidth);
  const latencyTerm = 2 * Math.ceil(Math.log2(tensorParallel)) * link.latency;
  const perCollective = bandwidthTerm + latencyTerm + eff.collectiveOverheadUs * 1e-6;
  return 2 * model.layers * perCollective;
}

/** Activations handed from one pipeline stage (instance or CS-3 system) to the next. */
function pipelineHopsSeconds(model: ModelProfile, device: DeviceProfile, stages: number, tokens: number): number {
  if (stages <= 1) return 0;
  const link = LINKS[device.interLink];
  const bytes = tokens * model.hiddenSize * ACTIVATION_BYTES;
  return (stages - 1) * (link.latency + bytes / link.bandwidth);
}

export interface PrefillItem {
  /** Prompt tokens to compute. */
  readonly newTokens: number;
  /** Prompt tokens whose KV is already cached (a reused prefix): attended to, not recomputed. */
  readonly cachedTokens: number;
}

export interface PrefillBreakdown {
  readonly ms: number;
  readonly computeMs: number;
  readonly memoryMs: number;
  readonly communicationMs: number;
  readonly flops: number;
}

/** Time to prefill a batch of prompts on a pool (one replica). */
export function prefillTime(
  model: ModelProfile,
  pool: DevicePool,
  batch: readonly PrefillItem[],
  opts: ComputeOptions = DEFAULT_COMPUTE,
): PrefillBreakdown {
  const device = DEVICES[pool.device];
  const eff = opts.efficiency[device.family];
  const layout = poolLayout(pool);
  const p = parameterCounts(model);
  const tokens = batch.reduce((sum, item) => sum + item.newTokens, 0);
  if (tokens === 0) return { ms: 0, computeMs: 0, memoryMs: 0, communicationMs: 0, flops: 0 };
  // The output head runs only for each prompt's last position: that is where the first token comes from.
  const bodyFlopsPerToken = linearFlopsPerToken(model) - 2 * p.outputHead;
  let flops = 0;
  for (const item of batch) {
    if (item.newTokens <= 0) continue;
    flops +=
      bodyFlopsPerToken * item.newTokens + 2 * p.outputHead + attentionFlops(model, item.newTokens, item.cachedTokens);
  }
  // Chunked prefill keeps pipeline stages busy; the bubble is (stages - 1) chunks.
  const chunks = Math.max(1, Math.ceil(tokens / PREFILL_PIPELINE_CHUNK_TOKENS));
  const bubble = (chunks + layout.pipelineStages - 1) / chunks;
  const computeS = (flops / (pool.count * peakFlops(device, opts.weightDtype) * eff.prefillMfu)) * bubble;
  let memoryS = 0;
  let commS = pipelineHopsSeconds(model, device, layout.pipelineStages, tokens);
  if (eff.kind === 'hbm') {
    memoryS =
      weightBytesRead(model, tokens, opts.weightDtype) / (pool.count * device.memoryBandwidth * eff.decodeBandwidth);
    commS += collectivesSeconds(model, device, layout.tensorParallel, tokens, eff);
  }
  const ms = (Math.max(computeS, memoryS) + commS) * MS;
  return { ms, computeMs: computeS * MS, memoryMs: memoryS * MS, communicationMs: commS * MS, flops };
}

export interface DecodeBreakdown {
  readonly ms: number;
  readonly memoryMs: number;
  readonly computeMs: number;
  readonly latencyMs: number;
  readonly communicationMs: number;
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
  const batchTokens = contexts.length * queryTokens;
  if (batchTokens === 0) return { ms: 0, memoryMs: 0, computeMs: 0, latencyMs: 0, communicationMs: 0 };
  let kvBytes = 0;
  let flops = 0;
  for (const context of contexts) {
    kvBytes += kvBytesForContext(model, context, opts.kvDtype);
    flops += linearFlopsPerToken(model) * queryTokens + attentionFlops(model, queryTokens, context);
  }
  const device = DEVICES[pool.device];
  const eff = opts.efficiency[device.family];
  const layout = poolLayout(pool);
  const weightRead = weightBytesRead(model, batchTokens, opts.weightDtype);
  const hopsS = pipelineHopsSeconds(model, device, layout.pipelineStages, batchTokens);
  const collS = eff.kind === 'hbm' ? collectivesSeconds(model, device, layout.tensorParallel, batchTokens, eff) : 0;
  const out = { ms: 0, memoryMs: 0, computeMs: 0, latencyMs: 0, communicationMs: 0 };
  decodeStepFromWork(model, pool, opts, layout, weightRead + kvBytes, flops, hopsS, collS, out);
  return out;
}

type MutableDecodeBreakdown = { -readonly [K in keyof DecodeBreakdown]: DecodeBreakdown[K] };

/**
 * The step formula once the batch's bytes and FLOPs are known; shared by decodeStepTime and
 * DecodeStepTimer so the two cannot drift apart. Writes into `out` (no allocation).
 */
function decodeStepFromWork(
  model: ModelProfile,
  pool: DevicePool,
  opts: ComputeOptions,
  layout: PoolLayout,
  bytes: number,
  flops: number,
  hopsS: number,
  collectivesS: number,
  out: MutableDecodeBreakdown,
): void {
  const device = DEVICES[pool.device];
  const eff = opts.efficiency[device.family];
  if (eff.kind === 'wafer') {
    waferDecode(model, pool, device, eff, bytes, flops, hopsS, out);
    return;
  }
  // Pipeline stages run one after another for a token, so only one stage's devices serve a step.
  const memoryS = bytes / (layout.tensorParallel * device.memoryBandwidth * eff.decodeBandwidth);
  const computeS =
    flops / (layout.tensorParallel * layout.pipelineStages * peakFlops(device, opts.weightDtype) * eff.prefillMfu);
  const commS = collectivesS + hopsS;
  out.ms = (Math.max(memoryS, computeS) + commS) * MS;
  out.memoryMs = memoryS * MS;
  out.computeMs = computeS * MS;
  out.latencyMs = 0;
  out.communicationMs = commS * MS;
}

/**
 * Decode step time from a batch's totals, for callers that step millions of times (the simulator).
 * For one query token per request it equals decodeStepTime exactly: the per-request terms it
 * aggregates (KV bytes, attention keys) are integers, whose floating-point sums are exact in any
 * order, and the rest is the same formula (decodeStepFromWork). Per-batch-size terms are memoized.
 */
export class DecodeStepTimer {
  /** Keys a windowed layer attends to at most; Infinity when the model has no windowed layers. */
  readonly window: number;
  private readonly windowedLayers: number;
  private readonly globalLayers: number;
  private readonly kvBytesPerLayerToken: number;
  private readonly attentionFlopsPerKey: number;
  private readonly linearFlops: number;
  private readonly layout: PoolLayout;
  private readonly weightRead: number[] = [];
  private readonly hops: number[] = [];
  private readonly collectives: number[] = [];
  private readonly scratch: MutableDecodeBreakdown = {
    ms: 0,
    memoryMs: 0,
    computeMs: 0,
    latencyMs: 0,
    communicationMs: 0,
  };

  constructor(
    private readonly model: ModelProfile,
    private readonly pool: DevicePool,
    private readonly opts: ComputeOptions = DEFAULT_COMPUTE,
  ) {
    this.window = model.attentionWindow ? model.attentionWindow.window : Infinity;
    this.windowedLayers = model.attentionWindow ? model.attentionWindow.layers : 0;
    this.globalLayers = model.layers - this.windowedLayers;
    this.kvBytesPerLayerToken = 2 * model.kvHeads * model.headDim * DTYPE_BYTES[opts.kvDtype];
    this.attentionFlopsPerKey = 4 * model.heads * model.headDim;
    this.linearFlops = linearFlopsPerToken(model);
    this.layout = poolLayout(pool);
  }

  /**
   * One step for `requests` requests of one query token each. `contextSum` is the sum of their
   * contexts; `windowedContextSum` the sum of min(context, window) and `windowedKeySum` the sum of
   * min(context + 1, window) (both ignored for models without windowed attention).
   */
  stepMs(requests: number, contextSum: number, windowedContextSum = 0, windowedKeySum = 0): number {
    if (requests === 0) return 0;
    const w = this.windowedLayers;
    const kvBytes = this.kvBytesPerLayerToken * (this.globalLayers * contextSum + (w > 0 ? w * windowedContextSum : 0));
    const keys = this.globalLayers * (contextSum + requests) + (w > 0 ? w * windowedKeySum : 0);
    const flops = this.linearFlops * requests + this.attentionFlopsPerKey * keys;
    if (this.weightRead[requests] === undefined) this.memoize(requests);
    const bytes = (this.weightRead[requests] as number) + kvBytes;
    decodeStepFromWork(
      this.model,
      this.pool,
      this.opts,
      this.layout,
      bytes,
      flops,
      this.hops[requests] as number,
      this.collectives[requests] as number,
      this.scratch,
    );
    return this.scratch.ms;
  }

  private memoize(tokens: number): void {
    const device = DEVICES[this.pool.device];
    const eff = this.opts.efficiency[device.family];
    this.weightRead[tokens] = weightBytesRead(this.model, tokens, this.opts.weightDtype);
    this.hops[tokens] = pipelineHopsSeconds(this.model, device, this.layout.pipelineStages, tokens);
    this.collectives[tokens] =
      eff.kind === 'hbm' ? collectivesSeconds(this.model, device, this.layout.tensorParallel, tokens, eff) : 0;
  }
}

/**
 * Wafer-scale decode: weights stay in SRAM, so a token's time is its walk through the layer
 * pipeline (a fixed latency per layer) plus reading the bytes at the small fraction of SRAM
 * bandwidth a single pass achieves. Batched tokens add their compute.
 */
function waferDecode(
  model: ModelProfile,
  pool: DevicePool,
  device: DeviceProfile,
  eff: WaferEfficiency,
  bytes: number,
  flops: number,
  hopsS: number,
  out: MutableDecodeBreakdown,
): void {
  const latencyS = model.layers * eff.layerLatencyUs * 1e-6;
  const memoryS = bytes / (device.memoryBandwidth * eff.sramEfficiency);
  const computeS = flops / (pool.count * device.bf16Flops * eff.prefillMfu);
  out.ms = (latencyS + Math.max(memoryS, computeS) + hopsS) * MS;
  out.memoryMs = memoryS * MS;
  out.computeMs = computeS * MS;
  out.latencyMs = latencyS * MS;
  out.communicationMs = hopsS * MS;
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
function poolBandwidth(pool: DevicePool, link: LinkProfile): number {
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
