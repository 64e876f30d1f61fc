/**
 * What the fit may change, per serving stack: which factors are free (and whether devices share them), their
 * bounds, and the starting table whose other values stay fixed. Every fixed value is an assumption stated
 * here, because no data set of the stack constrains it.
 */
import type { DeviceId } from '../devices';
import type { DeviceFactors, HbmFactors, WaferFactors } from '../factors';
import type { StackId } from '../stacks';

type HbmKey = Exclude<keyof HbmFactors, 'kind'>;
type WaferKey = Exclude<keyof WaferFactors, 'kind'>;

export interface FreeParameter {
  readonly name: string;
  /** A factor of each listed device, or a fitted acceptance rate. */
  readonly target:
    | {
        readonly kind: 'factor';
        readonly devices: readonly DeviceId[];
        /** One factor, or several that move together (tied by assumption). */
        readonly factor: HbmKey | WaferKey | readonly (HbmKey | WaferKey)[];
      }
    | { readonly kind: 'acceptance'; readonly key: string };
  readonly min: number;
  readonly max: number;
  /**
   * A weak prior: the value physics or other data sets make likely, and why. The fit adds
   * log(value / prior) / PRIOR_LOG_SIGMA as one more residual, so the prior decides only what the stack's
   * points leave undetermined (with few points a factor can otherwise wander to any bound).
   */
  readonly prior?: { readonly value: number; readonly reason: string };
}

/** Spread of a prior, as a log ratio: a factor of 2 either way costs as much as one point 69% off. */
export const PRIOR_LOG_SIGMA = Math.log(2);

export interface StackFit {
  readonly stack: StackId;
  /** Starting factors; what no free parameter names keeps these values. */
  readonly start: Readonly<Partial<Record<DeviceId, DeviceFactors>>>;
  readonly free: readonly FreeParameter[];
  /** The fixed values and why. */
  readonly assumptions: readonly string[];
}

const hbm = (over: Partial<HbmFactors>): HbmFactors => ({
  kind: 'hbm',
  matmulEfficiency: 0.6,
  bandwidthEfficiency: 0.8,
  attentionEfficiency: 0.4,
  // Two norms (read + write each) and two residual adds (two reads + one write each), fused.
  elementwiseVectors: 10,
  kernelFloorUs: 8,
  layerOverheadUs: 0,
  sequenceOverheadUs: 0,
  stepOverheadUs: 1000,
  prefillOverheadUs: 1000,
  stepOverheadPerHopUs: 0,
  prefillOverheadPerHopUs: 0,
  allReduceBaseUs: 10,
  allReducePerHopUs: 2,
  linkEfficiency: 0.7,
  ...over,
});

const wafer = (over: Partial<WaferFactors>): WaferFactors => ({
  kind: 'wafer',
  layerLatencyUs: 8,
  residentReadEfficiency: 0.05,
  stepOverheadUs: 0,
  hopLatencyUs: 10,
  matmulEfficiency: ASSUMED_WAFER_MATMUL_EFFICIENCY,
  kvBandwidthEfficiency: ASSUMED_WAFER_KV_EFFICIENCY,
  ...over,
});

/**
 * CS-3 matrix-multiply efficiency: no public measurement. 0.2 of the 125 PFLOPS "peak AI" figure is assumed,
 * below what GPUs reach on dense peak, because that peak counts sparsity-friendly operations.
 */
export const ASSUMED_WAFER_MATMUL_EFFICIENCY = 0.2;
/** CS-3 KV reads: no public measurement; 1% of 21 PB/s (210 TB/s) is assumed, well above any HBM device. */
export const ASSUMED_WAFER_KV_EFFICIENCY = 0.01;

const f = (
  name: string,
  devices: readonly DeviceId[],
  factor: HbmKey | WaferKey | readonly (HbmKey | WaferKey)[],
  min: number,
  max: number,
  prior?: FreeParameter['prior'],
): FreeParameter => ({
  name,
  target: { kind: 'factor', devices, factor },
  min,
  max,
  ...(prior ? { prior } : {}),
});

/** HBM streaming reads: the weight reads of decode reach about three quarters of peak bandwidth. */
const HBM_READ_PRIOR = {
  value: 0.75,
  reason:
    "decode weight reads stream HBM at about three quarters of peak: this project's other HBM fits, each from its " +
    'own data, land between 0.66 and 0.80 (gpu-2025 A100 and H100, tnx-2.18 trn1 and inf2); a prior, not a ' +
    'measurement of trn2',
};

export const STACK_FITS: readonly StackFit[] = [
  {
    stack: 'gpu-2025',
    start: {
      a100: hbm({ matmulEfficiency: 0.69, bandwidthEfficiency: 0.8, prefillOverheadPerHopUs: 100 }),
      h100: hbm({ matmulEfficiency: 0.66, bandwidthEfficiency: 0.88, prefillOverheadPerHopUs: 100 }),
    },
    free: [
      ...(['a100', 'h100'] as const).flatMap((d) => [
        f(`${d}.matmulEfficiency`, [d], 'matmulEfficiency', 0.1, 1),
        f(`${d}.bandwidthEfficiency`, [d], 'bandwidthEfficiency', 0.3, 1),
        f(`${d}.kernelFloorUs`, [d], 'kernelFloorUs', 1, 50),
        f(`${d}.allReduceBaseUs`, [d], 'allReduceBaseUs', 0.5, 100),
        f(`${d}.allReducePerHopUs`, [d], 'allReducePerHopUs', 0.01, 50),
        f(`${d}.linkEfficiency`, [d], 'linkEfficiency', 0.05, 1),
      ]),
      f('gpu.attentionEfficiency', ['a100', 'h100'], 'attentionEfficiency', 0.05, 1),
      f('gpu.stepOverheadUs', ['a100', 'h100'], 'stepOverheadUs', 10, 20_000),
      f('gpu.prefillOverheadUs', ['a100', 'h100'], 'prefillOverheadUs', 10, 50_000),
      f('gpu.prefillOverheadPerHopUs', ['a100', 'h100'], 'prefillOverheadPerHopUs', 1, 50_000),
    ],
    assumptions: [
      'no per-layer or per-sequence overhead: CUDA graphs and paged attention remove them',
      'A100 all-reduce from NCCL (Vidur); H100 from the vLLM custom all-reduce (sglang pull request 2904)',
    ],
  },
  {
    stack: 'splitwise-2023',
    start: {
      a100: hbm({
        matmulEfficiency: 0.68,
        bandwidthEfficiency: 0.9,
        attentionEfficiency: 0.1,
        layerOverheadUs: 150,
        stepOverheadPerHopUs: 100,
      }),
      h100: hbm({
        matmulEfficiency: 0.57,
        bandwidthEfficiency: 0.85,
        attentionEfficiency: 0.06,
        layerOverheadUs: 50,
        stepOverheadPerHopUs: 100,
      }),
    },
    free: [
      ...(['a100', 'h100'] as const).flatMap((d) => [
        f(`${d}.matmulEfficiency`, [d], 'matmulEfficiency', 0.1, 1),
        f(`${d}.bandwidthEfficiency`, [d], 'bandwidthEfficiency', 0.3, 1),
        f(`${d}.attentionEfficiency`, [d], 'attentionEfficiency', 0.01, 1),
        f(`${d}.layerOverheadUs`, [d], 'layerOverheadUs', 0.1, 1000),
        f(`${d}.sequenceOverheadUs`, [d], 'sequenceOverheadUs', 0.01, 100),
        f(`${d}.elementwiseVectors`, [d], 'elementwiseVectors', 1, 500),
        f(`${d}.allReduceBaseUs`, [d], 'allReduceBaseUs', 0.5, 200),
        f(`${d}.allReducePerHopUs`, [d], 'allReducePerHopUs', 0.01, 100),
        f(`${d}.linkEfficiency`, [d], 'linkEfficiency', 0.05, 1),
      ]),
      f('gpu.stepOverheadUs', ['a100', 'h100'], 'stepOverheadUs', 10, 50_000),
      f('gpu.prefillOverheadUs', ['a100', 'h100'], 'prefillOverheadUs', 10, 50_000),
      f('gpu.stepOverheadPerHopUs', ['a100', 'h100'], 'stepOverheadPerHopUs', 1, 50_000),
    ],
    assumptions: ['kernel floor 8 us per matrix multiply (the shortest kernels in the Vidur profiles)'],
  },
  {
    stack: 'tnx-2.18',
    start: {
      trn1: hbm({ matmulEfficiency: 0.3, bandwidthEfficiency: 0.6, stepOverheadUs: 3000, allReduceBaseUs: 20 }),
      inf2: hbm({ matmulEfficiency: 0.3, bandwidthEfficiency: 0.6, stepOverheadUs: 3000, allReduceBaseUs: 20 }),
    },
    free: [
      ...(['trn1', 'inf2'] as const).flatMap((d) => [
        f(`${d}.matmulEfficiency`, [d], 'matmulEfficiency', 0.05, 1),
        f(`${d}.bandwidthEfficiency`, [d], 'bandwidthEfficiency', 0.1, 1),
        f(`${d}.stepOverheadUs`, [d], 'stepOverheadUs', 10, 50_000),
        f(`${d}.prefillOverheadUs`, [d], 'prefillOverheadUs', 10, 100_000),
      ]),
      f('trn1.attentionEfficiency', ['trn1'], 'attentionEfficiency', 0.01, 1),
      f('inf2.attentionEfficiency', ['inf2'], 'attentionEfficiency', 0.01, 1),
      f('neuron.allReduceBaseUs', ['trn1', 'inf2'], 'allReduceBaseUs', 0.5, 300),
    ],
    assumptions: [
      'all-reduce growth per hop 2 us and link efficiency 0.7 (no Neuron collective profile is published)',
      'no per-layer overhead beyond the all-reduces (the tables cannot separate the two)',
    ],
  },
  {
    stack: 'nxdi',
    start: {
      trn2: hbm({
        matmulEfficiency: 0.3,
        attentionEfficiency: 0.3,
        bandwidthEfficiency: 0.8,
        stepOverheadUs: 10_000,
        allReduceBaseUs: 10,
      }),
    },
    free: [
      f('trn2.matmulEfficiency', ['trn2'], 'matmulEfficiency', 0.05, 1),
      f('trn2.attentionEfficiency', ['trn2'], 'attentionEfficiency', 0.01, 1),
      f('trn2.bandwidthEfficiency', ['trn2'], 'bandwidthEfficiency', 0.1, 1, HBM_READ_PRIOR),
      f('trn2.stepOverheadUs', ['trn2'], 'stepOverheadUs', 10, 50_000),
      f('trn2.prefillOverheadUs', ['trn2'], 'prefillOverheadUs', 10, 1_000_000),
      {
        name: 'acceptance llama-3.2-1b > llama 70B-class',
        target: { kind: 'acceptance', key: 'llama-3.2-1b>llama-70b' },
        min: 0.3,
        max: 0.97,
      },
    ],
    assumptions: [
      'all-reduce 10 us plus 2 us per hop, link efficiency 0.7 (no Neuron collective profile is published), and ' +
        'no per-layer overhead beyond it (a free one fitted to under 0.2 us, so it was dropped to leave the ' +
        'model-by-model folds enough points)',
    ],
  },
  {
    stack: 'cerebras-2024-08',
    start: { cs3: wafer({ layerLatencyUs: 9, residentReadEfficiency: 0.1 }) },
    free: [
      f('cs3.layerLatencyUs', ['cs3'], 'layerLatencyUs', 0.1, 200),
      f('cs3.residentReadEfficiency', ['cs3'], 'residentReadEfficiency', 1e-4, 10),
    ],
    assumptions: ['no per-step overhead and a 10 us hop between systems (two points fix two factors)'],
  },
  {
    stack: 'cerebras-2025',
    start: { cs3: wafer({ layerLatencyUs: 8, residentReadEfficiency: 1, stepOverheadUs: 50, hopLatencyUs: 1 }) },
    free: [
      f('cs3.layerLatencyUs', ['cs3'], 'layerLatencyUs', 0.1, 200),
      f('cs3.stepOverheadUs', ['cs3'], 'stepOverheadUs', 0.1, 5000),
      {
        name: 'acceptance llama-3.2-1b > llama 70B-class on Cerebras',
        target: { kind: 'acceptance', key: 'cerebras:llama-3.2-1b>llama-70b' },
        min: 0.05,
        max: 0.97,
      },
    ],
    assumptions: [
      'resident bytes read at the full 21 PB/s of SRAM (the Oct 2024 release rewrote the kernels that used a ' +
        "fraction of it); each layer's remaining time is its fitted latency",
      'speculative decoding for Llama 70B as Cerebras said (Oct 2024): Llama 3.2 1B drafting 4 tokens (assumed)',
      'a 1 us hand-over between systems: Llama 4 Scout (6 systems) and Maverick (21) serve at the same speed with ' +
        'the same 48 layers, so a hop costs at most a few microseconds',
    ],
  },
];
