/**
 * One request's emulated latency, end to end, on a disaggregated or a colocated deployment.
 *
 * TTFT is the prefill pass: it computes the first token (as LLMPerf, NIM, vLLM and Neuron measure it), and in
 * the disaggregated path the prefill side emits it (as Splitwise, DistServe and NxD Inference do). The KV
 * transfer then delays the second token, so end-to-end = TTFT + transfer + (output - 1) x TPOT.
 */
import { assertFits, type FitReport } from './fit';
import type { LinkProfile } from './links';
import { kvBytesForContext, type ModelProfile } from './models';
import { getModel, type DevicePool } from './pool';
import { expectedTokensPerStep, providerSpeculation, type SpeculativeOptions } from './speculative';
import { stackFor } from './stacks';
import {
  decodeStepTime,
  DEFAULT_COMPUTE,
  draftPassTime,
  kvTransferTime,
  prefillTime,
  type ComputeOptions,
  type TimingBand,
} from './timing';

export interface RequestShape {
  readonly model: ModelProfile;
  readonly promptTokens: number;
  readonly outputTokens: number;
  /** Prompt tokens already in a prefix cache. */
  readonly cachedPromptTokens?: number;
  /** Decode batch the request shares steps with (all at the same context). */
  readonly batch?: number;
  /**
   * Speculative decoding on the decode pool. Undefined: the decode stack's provider default for the model
   * (see PROVIDER_SPECULATION), if any; null: none.
   */
  readonly speculative?: SpeculativeOptions | null;
  readonly compute?: ComputeOptions;
  /** Share of device memory usable for weights and KV (default 0.9). */
  readonly usableFraction?: number;
}

export interface ColocatedEstimate {
  readonly prefillMs: number;
  readonly ttftMs: number;
  readonly tpotMs: number;
  readonly e2eMs: number;
  /** Per-user decode speed: 1000 / tpotMs. */
  readonly tokensPerSecond: number;
  readonly fit: FitReport;
  /** The speculative decoding the decode used, or null. */
  readonly speculative: SpeculativeOptions | null;
}

export interface DisaggregatedEstimate extends ColocatedEstimate {
  readonly transferMs: number;
  readonly kvBytes: number;
  readonly decodeFit: FitReport;
}

/** The speculative decoding a decode pool runs for a request: the caller's, or its stack's published default. */
export function decodeSpeculation(shape: RequestShape, pool: DevicePool): SpeculativeOptions | null {
  if (shape.speculative !== undefined) return shape.speculative;
  return stackSpeculation(shape.model, pool, shape.compute ?? DEFAULT_COMPUTE);
}

/**
 * Time of one decode step for a batch at `contexts`, per output token: a plain step, or a speculative round
 * (k draft passes and one verification of k + 1 tokens) over the tokens it keeps on average.
 */
export function decodeBatchTokenTime(
  model: ModelProfile,
  pool: DevicePool,
  contexts: readonly number[],
  compute: ComputeOptions,
  spec: SpeculativeOptions | null,
): number {
  if (!spec) return decodeStepTime(model, pool, contexts, compute).ms;
  const seqs = contexts.map((c) => ({ newTokens: 1, contextTokens: c }));
  const draft = draftPassTime(spec.draft.model, pool, seqs, compute).ms * spec.draftTokens;
  const verify = decodeStepTime(model, pool, contexts, compute, spec.draftTokens + 1).ms;
  return (draft + verify) / expectedTokensPerStep(spec.draftTokens, spec.acceptanceRate);
}

/** decodeBatchTokenTime for `batch` requests at one context. */
export function decodeTokenTime(
  model: ModelProfile,
  pool: DevicePool,
  batch: number,
  context: number,
  compute: ComputeOptions,
  spec: SpeculativeOptions | null,
): number {
  return decodeBatchTokenTime(model, pool, new Array<number>(batch).fill(context), compute, spec);
}

/** The speculative decoding a decode pool's stack publishes for `model` (see PROVIDER_SPECULATION), or null. */
export function stackSpeculation(
  model: ModelProfile,
  pool: DevicePool,
  compute: ComputeOptions,
): SpeculativeOptions | null {
  return providerSpeculation(stackFor(pool.device, compute.stacks).id, model, compute.acceptance);
}

/** Mean time per output token on a decode pool, over a decode that grows the context from the prompt. */
export function timePerOutputToken(shape: RequestShape, pool: DevicePool): number {
  const compute = shape.compute ?? DEFAULT_COMPUTE;
  // Step time is linear in context, so the mid-decode context gives the mean.
  const meanContext = shape.promptTokens + Math.max(0, shape.outputTokens - 1) / 2;
  return decodeTokenTime(shape.model, pool, shape.batch ?? 1, meanContext, compute, decodeSpeculation(shape, pool));
}

function fitFor(shape: RequestShape, pool: DevicePool, spec: SpeculativeOptions | null): FitReport {
  const compute = shape.compute ?? DEFAULT_COMPUTE;
  return assertFits({
    model: shape.model,
    pool,
    weightDtype: compute.weightDtype,
    kvDtype: compute.kvDtype,
    batch: shape.batch ?? 1,
    contextTokens: shape.promptTokens + shape.outputTokens,
    draft: spec ? spec.draft : null,
    ...(shape.usableFraction !== undefined ? { usableFraction: shape.usableFraction } : {}),
  });
}

function prefillMs(shape: RequestShape, pool: DevicePool): number {
  const compute = shape.compute ?? DEFAULT_COMPUTE;
  const cached = Math.min(shape.cachedPromptTokens ?? 0, shape.promptTokens);
  return prefillTime(shape.model, pool, [{ newTokens: shape.promptTokens - cached, cachedTokens: cached }], compute).ms;
}

export function estimateColocated(shape: RequestShape, pool: DevicePool): ColocatedEstimate {
  const spec = decodeSpeculation(shape, pool);
  const fit = fitFor(shape, pool, spec);
  const prefill = prefillMs(shape, pool);
  const tpotMs = timePerOutputToken({ ...shape, speculative: spec }, pool);
  return {
    prefillMs: prefill,
    ttftMs: prefill,
    tpotMs,
    e2eMs: prefill + Math.max(0, shape.outputTokens - 1) * tpotMs,
    tokensPerSecond: 1000 / tpotMs,
    fit,
    speculative: spec,
  };
}

export function estimateDisaggregated(
  shape: RequestShape,
  prefillPool: DevicePool,
  decodePool: DevicePool,
  options: { link?: LinkProfile; overlapTransfer?: boolean } = {},
): DisaggregatedEstimate {
  const compute = shape.compute ?? DEFAULT_COMPUTE;
  const spec = decodeSpeculation(shape, decodePool);
  // The prefill pool holds one prompt's KV at a time before handing it over.
  const fit = fitFor({ ...shape, batch: 1 }, prefillPool, null);
  const decodeFit = fitFor(shape, decodePool, spec);
  const prefill = prefillMs(shape, prefillPool);
  const kvBytes = kvBytesForContext(shape.model, shape.promptTokens, compute.kvDtype);
  const transfer = kvTransferTime({
    bytes: kvBytes,
    from: prefillPool,
    to: decodePool,
    layers: shape.model.layers,
    ...(options.link ? { link: options.link } : {}),
    ...(options.overlapTransfer ? { overlapWithPrefillMs: prefill } : {}),
  });
  const tpotMs = timePerOutputToken({ ...shape, speculative: spec }, decodePool);
  // The first token leaves with the prefill; the transfer delays the second.
  const decodeMs = shape.outputTokens > 1 ? transfer.ms + (shape.outputTokens - 1) * tpotMs : 0;
  return {
    prefillMs: prefill,
    transferMs: transfer.ms,
    ttftMs: prefill,
    tpotMs,
    e2eMs: prefill + decodeMs,
    tokensPerSecond: 1000 / tpotMs,
    kvBytes,
    fit,
    decodeFit,
    speculative: spec,
  };
}

/** An estimate at the middle of the error band and at its low and high ends. */
export interface Banded<T> {
  readonly mid: T;
  readonly low: T;
  readonly high: T;
}

/** Runs an estimate at each end of the cross-validated error band (device time scaled; transfers are not). */
export function withBands<T>(shape: RequestShape, run: (shape: RequestShape) => T): Banded<T> {
  const compute = shape.compute ?? DEFAULT_COMPUTE;
  const at = (band: TimingBand): T => run({ ...shape, compute: { ...compute, band } });
  return { mid: at('mid'), low: at('low'), high: at('high') };
}

/** Convenience for callers holding ids. */
export function modelShape(modelId: string, promptTokens: number, outputTokens: number): RequestShape {
  return { model: getModel(modelId), promptTokens, outputTokens };
}
