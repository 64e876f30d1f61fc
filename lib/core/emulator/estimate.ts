/**
 * One request's emulated latency, end to end, on a disaggregated or a colocated deployment.
 * `ttftMs` includes the first decode step and, disaggregated, the KV transfer.
 */
import { assertFits, type FitReport } from './fit';
import type { LinkProfile } from './links';
import { kvBytesForContext, type ModelProfile } from './models';
import type { DevicePool } from './pool';
import { decodeStepTime, DEFAULT_COMPUTE, kvTransferTime, prefillTime, type ComputeOptions } from './timing';
import { getModel } from './pool';

/** Speculative decoding: a draft model proposes `draftTokens`, the target verifies them in one step. */
export interface SpeculativeOptions {
  readonly draftModel: ModelProfile;
  readonly draftTokens: number;
  /** Probability each drafted token is accepted (i.i.d., as in Leviathan et al. 2023). */
  readonly acceptanceRate: number;
}

export interface RequestShape {
  readonly model: ModelProfile;
  readonly promptTokens: number;
  readonly outputTokens: number;
  /** Prompt tokens already in a prefix cache. */
  readonly cachedPromptTokens?: number;
  /** Decode batch the request shares steps with (all at the same context). */
  readonly batch?: number;
  /** Off by default. */
  readonly speculative?: SpeculativeOptions;
  readonly compute?: ComputeOptions;
}

export interface ColocatedEstimate {
  readonly prefillMs: number;
  readonly ttftMs: number;
  readonly tpotMs: number;
  readonly e2eMs: number;
  /** Per-user decode speed: 1000 / tpotMs. */
  readonly tokensPerSecond: number;
  readonly fit: FitReport;
}

export interface DisaggregatedEstimate extends ColocatedEstimate {
  readonly transferMs: number;
  readonly kvBytes: number;
  readonly decodeFit: FitReport;
}

/**
 * Expected tokens per verification step with draft length k and acceptance a: (1 - a^(k+1)) / (1 - a)
 * (Leviathan, Kalman, Matias, "Fast Inference from Transformers via Speculative Decoding", ICML 2023).
 */
export function expectedTokensPerStep(draftTokens: number, acceptanceRate: number): number {
  if (acceptanceRate >= 1) return draftTokens + 1;
  return (1 - Math.pow(acceptanceRate, draftTokens + 1)) / (1 - acceptanceRate);
}

/** Mean time per output token on a decode pool, over a decode that grows the context from `fromContext`. */
export function timePerOutputToken(shape: RequestShape, pool: DevicePool): { firstStepMs: number; tpotMs: number } {
  const compute = shape.compute ?? DEFAULT_COMPUTE;
  const batch = shape.batch ?? 1;
  const firstContext = shape.promptTokens;
  // Step time is linear in context, so the mid-decode context gives the mean.
  const meanContext = shape.promptTokens + Math.max(0, shape.outputTokens - 1) / 2;
  const step = (context: number): number => {
    const contexts = new Array<number>(batch).fill(context);
    const spec = shape.speculative;
    if (!spec) return decodeStepTime(shape.model, pool, contexts, compute).ms;
    const draft = decodeStepTime(spec.draftModel, pool, contexts, compute).ms * spec.draftTokens;
    const verify = decodeStepTime(shape.model, pool, contexts, compute, spec.draftTokens + 1).ms;
    return (draft + verify) / expectedTokensPerStep(spec.draftTokens, spec.acceptanceRate);
  };
  return { firstStepMs: step(firstContext), tpotMs: step(meanContext) };
}

function fitFor(shape: RequestShape, pool: DevicePool): FitReport {
  const compute = shape.compute ?? DEFAULT_COMPUTE;
  return assertFits({
    model: shape.model,
    pool,
    weightDtype: compute.weightDtype,
    kvDtype: compute.kvDtype,
    batch: shape.batch ?? 1,
    contextTokens: shape.promptTokens + shape.outputTokens,
  });
}

export function estimateColocated(shape: RequestShape, pool: DevicePool): ColocatedEstimate {
  const fit = fitFor(shape, pool);
  const compute = shape.compute ?? DEFAULT_COMPUTE;
  const cached = Math.min(shape.cachedPromptTokens ?? 0, shape.promptTokens);
  const prefill = prefillTime(
    shape.model,
    pool,
    [{ newTokens: shape.promptTokens - cached, cachedTokens: cached }],
    compute,
  );
  const { firstStepMs, tpotMs } = timePerOutputToken(shape, pool);
  const ttftMs = prefill.ms + firstStepMs;
  return {
    prefillMs: prefill.ms,
    ttftMs,
    tpotMs,
    e2eMs: ttftMs + Math.max(0, shape.outputTokens - 1) * tpotMs,
    tokensPerSecond: 1000 / tpotMs,
    fit,
  };
}

export function estimateDisaggregated(
  shape: RequestShape,
  prefillPool: DevicePool,
  decodePool: DevicePool,
  options: { link?: LinkProfile; overlapTransfer?: boolean } = {},
): DisaggregatedEstimate {
  const compute = shape.compute ?? DEFAULT_COMPUTE;
  // The prefill pool holds one prompt's KV at a time before handing it over.
  const fit = fitFor({ ...shape, batch: 1 }, prefillPool);
  const decodeFit = fitFor(shape, decodePool);
  const cached = Math.min(shape.cachedPromptTokens ?? 0, shape.promptTokens);
  const prefill = prefillTime(
    shape.model,
    prefillPool,
    [{ newTokens: shape.promptTokens - cached, cachedTokens: cached }],
    compute,
  );
  const kvBytes = kvBytesForContext(shape.model, shape.promptTokens, compute.kvDtype);
  const transfer = kvTransferTime({
    bytes: kvBytes,
    from: prefillPool,
    to: decodePool,
    layers: shape.model.layers,
    ...(options.link ? { link: options.link } : {}),
    ...(options.overlapTransfer ? { overlapWithPrefillMs: prefill.ms } : {}),
  });
  const { firstStepMs, tpotMs } = timePerOutputToken(shape, decodePool);
  const ttftMs = prefill.ms + transfer.ms + firstStepMs;
  return {
    prefillMs: prefill.ms,
    transferMs: transfer.ms,
    ttftMs,
    tpotMs,
    e2eMs: ttftMs + Math.max(0, shape.outputTokens - 1) * tpotMs,
    tokensPerSecond: 1000 / tpotMs,
    kvBytes,
    fit,
    decodeFit,
  };
}

/** Convenience for callers holding ids. */
export function modelShape(modelId: string, promptTokens: number, outputTokens: number): RequestShape {
  return { model: getModel(modelId), promptTokens, outputTokens };
}
