/**
 * Calibration points: every published measurement the timing model is fitted to or checked against, with
 * what the model predicts for it under a factor table. Serving points (a TTFT, a TPOT, a per-user speed) are
 * what cross-validation holds out; profile points (one kernel, one all-reduce) pin hardware factors and
 * always stay in the fit.
 */
import { DEVICES, type DeviceId } from '../devices';
import { decodeSpeculation, decodeTokenTime } from '../estimate';
import type { FactorTable, HbmFactors } from '../factors';
import { checkFit } from '../fit';
import { MODELS, type Dtype, type ModelId, type ModelProfile } from '../models';
import type { DevicePool } from '../pool';
import { resolveDraft, type SpeculativeOptions } from '../speculative';
import { DEFAULT_STACKS, STACKS, type StackId } from '../stacks';
import { allReduceMs, matmulMs, prefillTime, type ComputeOptions } from '../timing';
import {
  CEREBRAS_ROWS,
  NEURON_TABLE_ROWS,
  SPLITWISE_ROWS,
  TRN2_TUTORIAL_ROWS,
  VIDUR_ALLREDUCE_ROWS,
  VIDUR_GEMM_ROWS,
} from './data';
import { PUBLISHED_POINTS, type PublishedPoint, type PublishedSpeculation } from './published';

export type CalibrationMetric = 'ttftMs' | 'tpotMs' | 'tokensPerSecond' | 'e2eMs' | 'kernelMs' | 'allReduceMs';

/** What the fit varies: the factor table and the fitted acceptance rates. */
export interface FitState {
  readonly factors: FactorTable;
  readonly acceptance: Readonly<Record<string, number>>;
}

export interface CalibrationPoint {
  readonly id: string;
  readonly label: string;
  readonly stack: StackId;
  readonly device: DeviceId;
  /** A model id, or 'kernel'/'collective' for profile points. */
  readonly model: string;
  /** Collective ranks of the replica (tensor-parallel degree as quoted), or CS-3 systems. */
  readonly degree: number;
  readonly metric: CalibrationMetric;
  readonly measured: number;
  readonly source: string;
  readonly kind: 'serving' | 'profile';
  /** 'fit' points set the factors; 'check' points are compared only. */
  readonly role: 'fit' | 'check';
  predict(state: FitState): number;
}

const SPLITWISE_SOURCE = 'SplitwiseSim data/perf_model.csv (Patel et al., "Splitwise", ISCA 2024), median of 5 runs';
const VIDUR_GEMM_SOURCE = 'Vidur compute profile, Llama-2-70B operators (microsoft/vidur data/profiling/compute)';
const VIDUR_NCCL_SOURCE = 'Vidur NCCL all-reduce profile, one DGX node (microsoft/vidur data/profiling/network)';
const NEURON_TABLE_SOURCE = 'AWS Neuron SDK 2.18 decoder latency table (about-neuron/benchmarks), p50';
const NXDI_70B_SOURCE =
  'AWS Neuron NxD Inference tutorial "Llama-3.3-70B on trn2.48xlarge" (revised 2025-02-04): TP 64, batch 1, 10k in / 1.5k out, p50';
/**
 * The vLLM custom all-reduce on 8 x H100, as measured in sglang-project/sglang pull request 2904 (latency at
 * TP 2/4/8 by message size, without CUDA graphs): [bytes, TP 2 ms, TP 4 ms, TP 8 ms].
 */
const VLLM_CUSTOM_ALLREDUCE_H100: readonly (readonly [number, number, number, number])[] = [
  [512, 0.0095, 0.0091, 0.0101],
  [4096, 0.0088, 0.0085, 0.0093],
  [32768, 0.0087, 0.0092, 0.0118],
  [262144, 0.0129, 0.0206, 0.0241],
  [524288, 0.0177, 0.0269, 0.0304],
  [1048576, 0.0266, 0.0402, 0.045],
];
const VLLM_CUSTOM_ALLREDUCE_SOURCE =
  'vLLM custom all-reduce latency on H100 by TP and size, measured in sgl-project/sglang pull request 2904';

/** Compute options that run `stack` for its family and the given precisions. */
function computeFor(stack: StackId, state: FitState, weightDtype: Dtype, kvDtype: Dtype): ComputeOptions {
  return {
    weightDtype,
    kvDtype,
    stacks: { ...DEFAULT_STACKS, [STACKS[stack].family]: stack },
    factors: state.factors,
    acceptance: state.acceptance,
    band: 'mid',
  };
}

function hbmFactors(state: FitState, stack: StackId, device: DeviceId): HbmFactors {
  const f = state.factors[stack]?.[device];
  if (!f || f.kind !== 'hbm') throw new Error(`no HBM factors for ${stack}/${device}`);
  return f;
}

function speculationFor(
  spec: PublishedSpeculation | null | undefined,
  model: ModelProfile,
  state: FitState,
): SpeculativeOptions | null | undefined {
  if (spec === undefined || spec === null) return spec;
  const draft = resolveDraft(spec.draft, model);
  if (!draft) return null;
  const rate = spec.acceptanceRate ?? (spec.acceptanceKey ? state.acceptance[spec.acceptanceKey] : undefined);
  if (rate === undefined) throw new Error(`published speculation without an acceptance rate (${spec.draft})`);
  return { draft, draftTokens: spec.draftTokens, acceptanceRate: rate };
}

/** Fewest devices of a kind that hold a model's weights and one request's KV (90% usable). */
function fewestDevices(model: ModelProfile, device: DeviceId, dtype: Dtype, context: number): number {
  return checkFit({
    model,
    pool: { device, count: 1 },
    weightDtype: dtype,
    kvDtype: 'bf16',
    batch: 1,
    contextTokens: context,
  }).devicesNeeded;
}

interface ServingShape {
  readonly id: string;
  readonly label: string;
  readonly stack: StackId;
  readonly pool: DevicePool;
  readonly model: ModelId;
  readonly weightDtype: Dtype;
  readonly kvDtype: Dtype;
  readonly batch: number;
  readonly promptTokens: number;
  readonly outputTokens: number;
  readonly metric: 'ttftMs' | 'tpotMs' | 'tokensPerSecond' | 'e2eMs';
  readonly measured: number;
  readonly source: string;
  readonly role: 'fit' | 'check';
  /** Undefined: the stack's provider default; null: none. */
  readonly speculative?: PublishedSpeculation | null;
}

function servingPoint(shape: ServingShape): CalibrationPoint {
  const model = MODELS[shape.model];
  const device = DEVICES[shape.pool.device];
  return {
    id: shape.id,
    label: shape.label,
    stack: shape.stack,
    device: shape.pool.device,
    model: shape.model,
    degree: device.family === 'wafer' ? shape.pool.count : shape.pool.count * device.ranksPerDevice,
    metric: shape.metric,
    measured: shape.measured,
    source: shape.source,
    kind: 'serving',
    role: shape.role,
    predict(state) {
      const compute = computeFor(shape.stack, state, shape.weightDtype, shape.kvDtype);
      if (shape.metric === 'ttftMs') {
        return prefillTime(model, shape.pool, [{ newTokens: shape.promptTokens, cachedTokens: 0 }], compute).ms;
      }
      const requested = speculationFor(shape.speculative, model, state);
      const spec =
        requested === undefined
          ? decodeSpeculation(
              { model, promptTokens: shape.promptTokens, outputTokens: shape.outputTokens, compute },
              shape.pool,
            )
          : requested;
      const meanContext = shape.promptTokens + Math.max(0, shape.outputTokens - 1) / 2;
      const tpot = decodeTokenTime(model, shape.pool, shape.batch, meanContext, compute, spec);
      if (shape.metric === 'e2eMs') {
        // The batch's prompts prefilled in one pass, then every further token at the batch's pace.
        const prompts = Array.from({ length: shape.batch }, () => ({ newTokens: shape.promptTokens, cachedTokens: 0 }));
        return prefillTime(model, shape.pool, prompts, compute).ms + (shape.outputTokens - 1) * tpot;
      }
      return shape.metric === 'tpotMs' ? tpot : 1000 / tpot;
    },
  };
}

function splitwisePoints(): CalibrationPoint[] {
  const out: CalibrationPoint[] = [];
  for (const [model, device, tp, prompt, batch, output, promptMs, tokenMs] of SPLITWISE_ROWS) {
    const pool = { device: device as DeviceId, count: tp };
    const base = {
      stack: 'splitwise-2023' as const,
      pool,
      model: model as ModelId,
      weightDtype: 'fp16' as const,
      kvDtype: 'fp16' as const,
      batch,
      promptTokens: prompt,
      outputTokens: output,
      source: SPLITWISE_SOURCE,
      role: 'fit' as const,
      speculative: null,
    };
    const tag = `${device}x${tp} ${model} ${prompt}/${output} batch ${batch}`;
    // Batched prompt rows exceed the GPUs' peak FLOP/s (64 x 512 prompt tokens in 794 ms on 2 A100s would
    // need 9x peak), so they cannot be one prefill of the whole batch: only batch-1 prompts are used.
    if (batch === 1) {
      out.push(
        servingPoint({
          ...base,
          id: `splitwise-${tag}-prompt`,
          label: `${tag} prompt`,
          metric: 'ttftMs',
          measured: promptMs,
        }),
      );
    }
    out.push(
      servingPoint({
        ...base,
        id: `splitwise-${tag}-token`,
        label: `${tag} token`,
        metric: 'tpotMs',
        measured: tokenMs,
      }),
    );
  }
  return out;
}

/** Llama-2-70B's operator shapes per TP shard: [K, N] of one device's weights. */
function vidurShape(op: string, tp: number): [number, number] {
  const h = 8192;
  const qkv = (64 + 2 * 8) * 128;
  switch (op) {
    case 'attn_pre_proj':
      return [h, qkv / tp];
    case 'attn_post_proj':
      return [(64 * 128) / tp, h];
    case 'mlp_up_proj':
      return [h, (2 * 28_672) / tp];
    case 'mlp_down_proj':
      return [28_672 / tp, h];
    default:
      throw new Error(`unknown Vidur operator ${op}`);
  }
}

function kernelPoints(stack: StackId): CalibrationPoint[] {
  return VIDUR_GEMM_ROWS.map(([device, tp, tokens, op, ms]) => {
    const [k, n] = vidurShape(op, tp);
    return {
      id: `vidur-${device}-${op}-tp${tp}-${tokens}`,
      label: `${device} ${op} TP ${tp}, ${tokens} tokens`,
      stack,
      device: device as DeviceId,
      model: 'kernel',
      degree: tp,
      metric: 'kernelMs' as const,
      measured: ms,
      source: VIDUR_GEMM_SOURCE,
      kind: 'profile' as const,
      role: 'fit' as const,
      predict: (state: FitState) =>
        matmulMs(device as DeviceId, hbmFactors(state, stack, device as DeviceId), tokens, k, n, 'fp16'),
    };
  });
}

function allReducePoint(
  stack: StackId,
  device: DeviceId,
  workers: number,
  bytes: number,
  ms: number,
  source: string,
): CalibrationPoint {
  return {
    id: `allreduce-${stack}-${device}-${workers}-${bytes}`,
    label: `${device} all-reduce, ${workers} GPUs, ${bytes} bytes`,
    stack,
    device,
    model: 'collective',
    degree: workers,
    metric: 'allReduceMs',
    measured: ms,
    source,
    kind: 'profile',
    role: 'fit',
    predict: (state) => allReduceMs(device, hbmFactors(state, stack, device), bytes, workers),
  };
}

function neuronTablePoints(): CalibrationPoint[] {
  const out: CalibrationPoint[] = [];
  for (const [device, model, tpCores, batch, input, output, weights, ttft, tpot, sdk] of NEURON_TABLE_ROWS) {
    const dev = DEVICES[device as DeviceId];
    const pool = { device: device as DeviceId, count: tpCores / dev.ranksPerDevice };
    const tag = `${device} TP ${tpCores} ${model} ${input}/${output}`;
    const base = {
      stack: 'tnx-2.18' as const,
      pool,
      model: model as ModelId,
      weightDtype: weights as Dtype,
      kvDtype: 'bf16' as const,
      batch,
      promptTokens: input,
      outputTokens: output,
      source: `${NEURON_TABLE_SOURCE} (SDK ${sdk})`,
      role: 'fit' as const,
      speculative: null,
    };
    out.push(servingPoint({ ...base, id: `tnx-${tag}-ttft`, label: `${tag} TTFT`, metric: 'ttftMs', measured: ttft }));
    out.push(servingPoint({ ...base, id: `tnx-${tag}-tpot`, label: `${tag} TPOT`, metric: 'tpotMs', measured: tpot }));
  }
  return out;
}

function trn2TutorialPoints(): CalibrationPoint[] {
  const out: CalibrationPoint[] = [];
  const base = {
    stack: 'nxdi' as const,
    pool: { device: 'trn2' as const, count: 16 },
    model: 'llama-3.3-70b' as const,
    weightDtype: 'bf16' as const,
    kvDtype: 'bf16' as const,
    batch: 1,
    promptTokens: 10_000,
    outputTokens: 1500,
    source: NXDI_70B_SOURCE,
    role: 'fit' as const,
  };
  for (const [speculative, ttft, tpot] of TRN2_TUTORIAL_ROWS) {
    const spec = speculative
      ? { draft: 'llama-3.2-1b', draftTokens: 7, acceptanceKey: 'llama-3.2-1b>llama-70b' }
      : null;
    const tag = speculative
      ? 'trn2x16 llama-3.3-70b, fused speculation (Llama 3.2 1B, 7 tokens)'
      : 'trn2x16 llama-3.3-70b';
    const id = speculative ? 'nxdi-trn2x16-70b-spec' : 'nxdi-trn2x16-70b';
    // With speculation the TTFT adds the draft's own prefill, which the model does not charge: compared only.
    out.push(
      servingPoint({
        ...base,
        id: `${id}-ttft`,
        label: `${tag} TTFT`,
        metric: 'ttftMs',
        measured: ttft,
        speculative: spec,
        role: speculative ? 'check' : 'fit',
      }),
    );
    out.push(
      servingPoint({
        ...base,
        id: `${id}-tpot`,
        label: `${tag} TPOT`,
        metric: 'tpotMs',
        measured: tpot,
        speculative: spec,
      }),
    );
  }
  return out;
}

function cerebrasLaunchPoints(): CalibrationPoint[] {
  const out: CalibrationPoint[] = [];
  for (const [model, , , metric, value, published, source] of CEREBRAS_ROWS) {
    if (published !== '2024-08' || metric !== 'decode_speed_per_user') continue;
    const profile = MODELS[model as ModelId];
    const count = fewestDevices(profile, 'cs3', 'bf16', 1500);
    out.push(
      servingPoint({
        id: `cerebras-launch-${model}`,
        label: `cs3x${count} ${model} per-user speed, launch (Aug 2024)`,
        stack: 'cerebras-2024-08',
        pool: { device: 'cs3', count },
        model: model as ModelId,
        weightDtype: 'bf16',
        kvDtype: 'bf16',
        batch: 1,
        promptTokens: 1000,
        outputTokens: 500,
        metric: 'tokensPerSecond',
        measured: value,
        source,
        role: 'fit',
        speculative: null,
      }),
    );
  }
  out.push(
    servingPoint({
      id: 'cerebras-launch-70b-aa',
      label: 'cs3x4 llama-3.1-70b per-user speed, launch, measured by Artificial Analysis',
      stack: 'cerebras-2024-08',
      pool: { device: 'cs3', count: 4 },
      model: 'llama-3.1-70b',
      weightDtype: 'bf16',
      kvDtype: 'bf16',
      batch: 1,
      promptTokens: 1000,
      outputTokens: 500,
      metric: 'tokensPerSecond',
      measured: 446,
      source: 'Artificial Analysis independent benchmark of Cerebras Inference (Aug 2024): over 446 tokens/s',
      role: 'check',
      speculative: null,
    }),
  );
  return out;
}

function publishedPoints(): CalibrationPoint[] {
  return PUBLISHED_POINTS.map((p: PublishedPoint) => {
    const model = MODELS[p.model];
    const count = p.count ?? fewestDevices(model, p.device, p.weightDtype, p.promptTokens + p.outputTokens);
    const pool = { device: p.device, count };
    const what = { tokensPerSecond: 'per-user speed', ttftMs: 'TTFT', tpotMs: 'TPOT', e2eMs: 'end-to-end' }[p.metric];
    const batch = p.batch > 1 && p.metric === 'e2eMs' ? `, batch ${p.batch}` : '';
    const label = `${p.device}x${count} ${p.model} ${what}, ${p.promptTokens} in${batch}`;
    return servingPoint({
      id: p.id,
      label,
      stack: p.stack,
      pool,
      model: p.model,
      weightDtype: p.weightDtype,
      kvDtype: p.kvDtype ?? 'bf16',
      batch: p.batch,
      promptTokens: p.promptTokens,
      outputTokens: p.outputTokens,
      metric: p.metric,
      measured: p.measured,
      source: p.source,
      role: p.role,
      ...(p.speculative !== undefined ? { speculative: p.speculative } : {}),
    });
  });
}

let cached: readonly CalibrationPoint[] | null = null;

/** Every calibration point, built once. */
export function calibrationPoints(): readonly CalibrationPoint[] {
  if (cached) return cached;
  const points: CalibrationPoint[] = [
    ...kernelPoints('gpu-2025'),
    ...VLLM_CUSTOM_ALLREDUCE_H100.flatMap(([bytes, ...byTp]) =>
      [2, 4, 8].map((tp, i) =>
        allReducePoint('gpu-2025', 'h100', tp, bytes, byTp[i] as number, VLLM_CUSTOM_ALLREDUCE_SOURCE),
      ),
    ),
    // Large messages (prefill) go through NCCL in every stack; the small ones of H100 through the custom kernel.
    ...VIDUR_ALLREDUCE_ROWS.filter(([device, , bytes]) => device === 'a100' || bytes >= 4 * 1024 * 1024).map(
      ([device, workers, bytes, ms]) =>
        allReducePoint('gpu-2025', device as DeviceId, workers, bytes, ms, VIDUR_NCCL_SOURCE),
    ),
    ...VIDUR_ALLREDUCE_ROWS.map(([device, workers, bytes, ms]) =>
      allReducePoint('splitwise-2023', device as DeviceId, workers, bytes, ms, VIDUR_NCCL_SOURCE),
    ),
    ...splitwisePoints(),
    ...neuronTablePoints(),
    ...trn2TutorialPoints(),
    ...cerebrasLaunchPoints(),
    ...publishedPoints(),
  ];
  const ids = new Set<string>();
  for (const p of points) {
    if (ids.has(p.id)) throw new Error(`duplicate calibration point id ${p.id}`);
    ids.add(p.id);
  }
  cached = points;
  return points;
}
