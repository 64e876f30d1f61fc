/**
 * Calibration: published measurements, what the timing model predicts for each, and the fit
 * of the efficiency factors to them. `npx disagg calibrate` prints the table; `--fit` refits.
 */
import { ASSUMED_WAFER_PREFILL_MFU, FITTED_EFFICIENCY, type EfficiencyTable } from './efficiency';
import { estimateColocated } from './estimate';
import { MODELS, type Dtype, type ModelId } from './models';
import { decodeStepTime, prefillTime, type ComputeOptions } from './timing';
import type { DevicePool } from './pool';

export type CalibrationMetric = 'ttftMs' | 'prefillMs' | 'decodeStepMs' | 'tokensPerSecond';

export interface CalibrationPoint {
  readonly id: string;
  readonly label: string;
  readonly source: string;
  readonly model: ModelId;
  readonly pool: DevicePool;
  readonly dtype: Dtype;
  readonly metric: CalibrationMetric;
  readonly promptTokens: number;
  /** Context length during the measured decode steps. */
  readonly decodeContext: number;
  readonly measured: number;
  /** 'fit' points set the efficiency factors; 'check' points are held out and only compared. */
  readonly role: 'fit' | 'check';
}

/** Every point must be within this relative error (the acceptance bound). */
export const CALIBRATION_TOLERANCE = 0.15;

const NEURON_TUTORIAL =
  'AWS Neuron SDK tutorial "Llama-3.3-70B on trn2.48xlarge" (NxD Inference): BF16, batch 1, 10k-token prompt, p50';
const SPLITWISE = 'SplitwiseSim measured performance model (Patel et al., ISCA 2024): Llama-2-70B, 2 x H100 TP, FP16';
const CEREBRAS_LAUNCH = 'Cerebras Inference launch (Aug 2024): BF16, no speculative decoding, tokens/s per user';

export const CALIBRATION_POINTS: readonly CalibrationPoint[] = [
  {
    id: 'trn2-70b-ttft',
    label: 'trn2x16 llama-3.3-70b TTFT, 10,000-token prompt',
    source: NEURON_TUTORIAL,
    model: 'llama-3.3-70b',
    pool: { device: 'trn2', count: 16 },
    dtype: 'bf16',
    metric: 'ttftMs',
    promptTokens: 10_000,
    decodeContext: 10_000,
    measured: 575.6,
    role: 'fit',
  },
  {
    id: 'trn2-70b-tpot',
    label: 'trn2x16 llama-3.3-70b TPOT, batch 1',
    source: NEURON_TUTORIAL,
    model: 'llama-3.3-70b',
    pool: { device: 'trn2', count: 16 },
    dtype: 'bf16',
    metric: 'decodeStepMs',
    promptTokens: 10_000,
    decodeContext: 10_000,
    measured: 19.8,
    role: 'fit',
  },
  {
    id: 'h100-l2-prefill-1k',
    label: 'h100x2 llama-2-70b prefill, 1,024 tokens',
    source: SPLITWISE,
    model: 'llama-2-70b',
    pool: { device: 'h100', count: 2 },
    dtype: 'fp16',
    metric: 'prefillMs',
    promptTokens: 1024,
    decodeContext: 1024,
    measured: 158,
    role: 'fit',
  },
  {
    id: 'h100-l2-prefill-2k',
    label: 'h100x2 llama-2-70b prefill, 2,048 tokens',
    source: SPLITWISE,
    model: 'llama-2-70b',
    pool: { device: 'h100', count: 2 },
    dtype: 'fp16',
    metric: 'prefillMs',
    promptTokens: 2048,
    decodeContext: 2048,
    measured: 309,
    role: 'fit',
  },
  {
    id: 'h100-l2-decode',
    label: 'h100x2 llama-2-70b decode step, batch 1',
    source: SPLITWISE,
    model: 'llama-2-70b',
    pool: { device: 'h100', count: 2 },
    dtype: 'fp16',
    metric: 'decodeStepMs',
    promptTokens: 1024,
    decodeContext: 1024,
    measured: 37,
    role: 'fit',
  },
  {
    id: 'cs3-8b-speed',
    label: 'cs3x1 llama-3.1-8b decode speed per user',
    source: CEREBRAS_LAUNCH,
    model: 'llama-3.1-8b',
    pool: { device: 'cs3', count: 1 },
    dtype: 'bf16',
    metric: 'tokensPerSecond',
    promptTokens: 1000,
    decodeContext: 1000,
    measured: 1800,
    role: 'fit',
  },
  {
    id: 'cs3-70b-speed',
    label: 'cs3x4 llama-3.1-70b decode speed per user',
    source: CEREBRAS_LAUNCH,
    model: 'llama-3.1-70b',
    pool: { device: 'cs3', count: 4 },
    dtype: 'bf16',
    metric: 'tokensPerSecond',
    promptTokens: 1000,
    decodeContext: 1000,
    measured: 450,
    role: 'fit',
  },
  {
    id: 'cs3-70b-speed-independent',
    label: 'cs3x4 llama-3.1-70b decode speed per user (independent)',
    source: 'Artificial Analysis independent benchmark of Cerebras Inference (Aug 2024): 446 tokens/s',
    model: 'llama-3.1-70b',
    pool: { device: 'cs3', count: 4 },
    dtype: 'bf16',
    metric: 'tokensPerSecond',
    promptTokens: 1000,
    decodeContext: 1000,
    measured: 446,
    role: 'check',
  },
];

export function emulatePoint(point: CalibrationPoint, efficiency: EfficiencyTable = FITTED_EFFICIENCY): number {
  const model = MODELS[point.model];
  const compute: ComputeOptions = { weightDtype: point.dtype, kvDtype: point.dtype, efficiency };
  switch (point.metric) {
    case 'ttftMs':
      return estimateColocated({ model, promptTokens: point.promptTokens, outputTokens: 1, compute }, point.pool)
        .ttftMs;
    case 'prefillMs':
      return prefillTime(model, point.pool, [{ newTokens: point.promptTokens, cachedTokens: 0 }], compute).ms;
    case 'decodeStepMs':
      return decodeStepTime(model, point.pool, [point.decodeContext], compute).ms;
    case 'tokensPerSecond':
      return 1000 / decodeStepTime(model, point.pool, [point.decodeContext], compute).ms;
  }
}

export interface CalibrationRow {
  readonly point: CalibrationPoint;
  readonly emulated: number;
  /** (emulated - measured) / measured. */
  readonly error: number;
}

export function calibrationTable(efficiency: EfficiencyTable = FITTED_EFFICIENCY): CalibrationRow[] {
  return CALIBRATION_POINTS.map((point) => {
    const emulated = emulatePoint(point, efficiency);
    return { point, emulated, error: (emulated - point.measured) / point.measured };
  });
}

/** A free factor of the fit: how to read and write it, and its bounds (searched in log space). */
interface FreeFactor {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  get(t: EfficiencyTable): number;
  set(t: EfficiencyTable, v: number): EfficiencyTable;
}

const hbm = (t: EfficiencyTable, family: 'gpu' | 'neuron') => {
  const e = t[family];
  if (e.kind !== 'hbm') throw new Error(`${family} must be an HBM family`);
  return e;
};
const wafer = (t: EfficiencyTable) => {
  const e = t.wafer;
  if (e.kind !== 'wafer') throw new Error('wafer must be a wafer family');
  return e;
};

/**
 * Fitted factors. Fixed by assumption instead: GPU collective overhead 0 (NCCL's cost is in the
 * link's hop latency), Neuron decode bandwidth efficiency = GPU's (both are HBM3 reads; one
 * Trainium decode point cannot separate bandwidth from collective cost), wafer prefill MFU.
 */
const FREE_FACTORS: readonly FreeFactor[] = [
  {
    name: 'gpu.prefillMfu',
    min: 0.05,
    max: 1,
    get: (t) => hbm(t, 'gpu').prefillMfu,
    set: (t, v) => ({ ...t, gpu: { ...hbm(t, 'gpu'), prefillMfu: v } }),
  },
  {
    name: 'gpu.decodeBandwidth (neuron tied)',
    min: 0.1,
    max: 1,
    get: (t) => hbm(t, 'gpu').decodeBandwidth,
    set: (t, v) => ({
      ...t,
      gpu: { ...hbm(t, 'gpu'), decodeBandwidth: v },
      neuron: { ...hbm(t, 'neuron'), decodeBandwidth: v },
    }),
  },
  {
    name: 'neuron.prefillMfu',
    min: 0.05,
    max: 1,
    get: (t) => hbm(t, 'neuron').prefillMfu,
    set: (t, v) => ({ ...t, neuron: { ...hbm(t, 'neuron'), prefillMfu: v } }),
  },
  {
    name: 'neuron.collectiveOverheadUs',
    min: 0.01,
    max: 1000,
    get: (t) => hbm(t, 'neuron').collectiveOverheadUs,
    set: (t, v) => ({ ...t, neuron: { ...hbm(t, 'neuron'), collectiveOverheadUs: v } }),
  },
  {
    name: 'wafer.layerLatencyUs',
    min: 0.1,
    max: 500,
    get: (t) => wafer(t).layerLatencyUs,
    set: (t, v) => ({ ...t, wafer: { ...wafer(t), layerLatencyUs: v } }),
  },
  {
    name: 'wafer.sramEfficiency',
    min: 1e-6,
    max: 1,
    get: (t) => wafer(t).sramEfficiency,
    set: (t, v) => ({ ...t, wafer: { ...wafer(t), sramEfficiency: v } }),
  },
];

/** Sum of squared log errors over the fit points: relative errors, symmetric in over/under. */
export function fitLoss(efficiency: EfficiencyTable): number {
  let loss = 0;
  for (const point of CALIBRATION_POINTS) {
    if (point.role !== 'fit') continue;
    const r = Math.log(emulatePoint(point, efficiency) / point.measured);
    loss += r * r;
  }
  return loss;
}

/** Golden-section search of a unimodal function on [lo, hi]. */
function goldenSection(f: (x: number) => number, lo: number, hi: number, iterations = 60): number {
  const phi = (Math.sqrt(5) - 1) / 2;
  let a = lo;
  let b = hi;
  let c = b - phi * (b - a);
  let d = a + phi * (b - a);
  let fc = f(c);
  let fd = f(d);
  for (let i = 0; i < iterations; i++) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - phi * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + phi * (b - a);
      fd = f(d);
    }
  }
  return (a + b) / 2;
}

const START: EfficiencyTable = {
  gpu: { kind: 'hbm', prefillMfu: 0.5, decodeBandwidth: 0.6, collectiveOverheadUs: 0 },
  neuron: { kind: 'hbm', prefillMfu: 0.5, decodeBandwidth: 0.6, collectiveOverheadUs: 10 },
  wafer: { kind: 'wafer', prefillMfu: ASSUMED_WAFER_PREFILL_MFU, layerLatencyUs: 10, sramEfficiency: 0.01 },
};

/** Coordinate descent over the free factors (each searched in log space) until the loss settles. */
export function fitEfficiency(sweeps = 40): { efficiency: EfficiencyTable; loss: number } {
  let table = START;
  for (let sweep = 0; sweep < sweeps; sweep++) {
    for (const factor of FREE_FACTORS) {
      const loss = (logV: number) => fitLoss(factor.set(table, Math.exp(logV)));
      const best = Math.exp(goldenSection(loss, Math.log(factor.min), Math.log(factor.max)));
      table = factor.set(table, best);
    }
  }
  return { efficiency: table, loss: fitLoss(table) };
}

export function describeFreeFactors(t: EfficiencyTable): { name: string; value: number }[] {
  return FREE_FACTORS.map((f) => ({ name: f.name, value: f.get(t) }));
}
