/**
 * The timing model's factors, per serving stack and per device: achieved fractions of peak, fixed costs
 * of the software, collective latencies. The values in FITTED_FACTORS are the output of
 * `npx disagg calibrate --fit` (calibration/fit.ts fits them to the published data sets) and a unit test
 * checks they still equal what the fit produces, so they cannot drift from their sources. Factors a stack's
 * data cannot pin are fixed by stated assumptions (calibration/parameters.ts says which).
 */
import type { DeviceFamily, DeviceId } from './devices';
import type { StackId } from './stacks';

/** Factors of a device with HBM (GPUs, Trainium, Inferentia) under one serving stack. */
export interface HbmFactors {
  readonly kind: 'hbm';
  /** Fraction of dense peak FLOP/s a large matrix multiply achieves. */
  readonly matmulEfficiency: number;
  /** Fraction of peak HBM bandwidth a weight or KV read achieves. */
  readonly bandwidthEfficiency: number;
  /** Fraction of dense peak FLOP/s prefill attention achieves (FlashAttention reaches about half of it). */
  readonly attentionEfficiency: number;
  /**
   * Elementwise traffic per token per layer, in hidden-size vectors read or written (norms, residual adds,
   * rotary embedding): about 10 when kernels are fused, far more in an eager framework.
   */
  readonly elementwiseVectors: number;
  /** Shortest time one matrix-multiply kernel takes, however small (launch tail, wave quantisation), us. */
  readonly kernelFloorUs: number;
  /** Fixed cost of each layer of a forward pass beyond its kernels (launches without CUDA graphs), us. */
  readonly layerOverheadUs: number;
  /** Cost per layer for each sequence in the pass (per-sequence kernels in stacks without paged attention), us. */
  readonly sequenceOverheadUs: number;
  /** Fixed cost of each decode pass: scheduling, sampling, host synchronisation, us. */
  readonly stepOverheadUs: number;
  /**
   * Fixed cost of each prefill pass, us: prefill runs other kernels or graphs than decode (no CUDA graphs in
   * vLLM's prefill, a separate context-encoding graph on Neuron), so its fixed cost is its own.
   */
  readonly prefillOverheadUs: number;
  /** Per-decode-pass cost that grows with the collective group: per log2(ranks), us. */
  readonly stepOverheadPerHopUs: number;
  /**
   * Per-prefill-pass cost that grows with the collective group, per log2(ranks), us: a prefill pass without
   * CUDA graphs synchronises every rank at each of its launches, so its fixed cost grows with the group.
   */
  readonly prefillOverheadPerHopUs: number;
  /** Latency of one all-reduce at the smallest size, us, and its growth per log2(ranks). */
  readonly allReduceBaseUs: number;
  readonly allReducePerHopUs: number;
  /** Fraction of the link's bandwidth an all-reduce's payload moves at. */
  readonly linkEfficiency: number;
}

/**
 * Factors of a wafer-scale system (CS-3). Weights stay in SRAM, laid out layer by layer across the
 * wafer; a token walks the layers in order, so its time is per-layer latency plus the time each layer's
 * region takes to read the bytes resident on its wafer, plus the hops between systems.
 */
export interface WaferFactors {
  readonly kind: 'wafer';
  /** Fixed latency each layer adds to a token's walk through the pipeline, us. */
  readonly layerLatencyUs: number;
  /**
   * Fraction of SRAM bandwidth at which a layer's region reads the bytes resident on its wafer (each
   * layer holds a share of the wafer's cores in proportion to its bytes, so every layer takes
   * resident bytes / (bandwidth x this) on top of its latency).
   */
  readonly residentReadEfficiency: number;
  /** Fixed cost of each forward pass (sampling, host I/O), us. */
  readonly stepOverheadUs: number;
  /** Latency of handing a token's activations from one system to the next in the pipeline, us. */
  readonly hopLatencyUs: number;
  /** Fraction of peak FLOP/s the wafer's matrix multiplies reach: no public measurement, an assumption. */
  readonly matmulEfficiency: number;
  /** Fraction of SRAM bandwidth a KV read reaches: no public measurement, an assumption. */
  readonly kvBandwidthEfficiency: number;
}

export type DeviceFactors = HbmFactors | WaferFactors;
/** Factors per stack and device; stacks that run another stack's factors (stacks.ts factorsOf) have no entry. */
export type FactorTable = Readonly<Partial<Record<StackId, Readonly<Partial<Record<DeviceId, DeviceFactors>>>>>>;

/**
 * A family's error band: the typical relative error (as a log ratio) of predictions outside the fit set,
 * from leave-one-group-out cross-validation. `calibrated` for devices with measurements of their own on
 * the stack, `borrowed` for devices using another device's factors (measured by holding a device out).
 */
export interface FamilyBand {
  readonly calibrated: number;
  readonly borrowed: number;
}

// BEGIN FITTED FACTORS (written by `npx disagg calibrate --fit --write`; do not edit by hand)
export const FITTED_FACTORS: FactorTable = {
  'gpu-2025': {
    a100: {
      kind: 'hbm',
      matmulEfficiency: 0.7167,
      bandwidthEfficiency: 0.6987,
      attentionEfficiency: 0.3226,
      elementwiseVectors: 10,
      kernelFloorUs: 8,
      layerOverheadUs: 0,
      sequenceOverheadUs: 0,
      stepOverheadUs: 1064,
      prefillOverheadUs: 4260,
      stepOverheadPerHopUs: 0,
      prefillOverheadPerHopUs: 3040,
      allReduceBaseUs: 39.39,
      allReducePerHopUs: 3.787,
      linkEfficiency: 0.2911,
    },
    h100: {
      kind: 'hbm',
      matmulEfficiency: 0.6166,
      bandwidthEfficiency: 0.7761,
      attentionEfficiency: 0.3226,
      elementwiseVectors: 10,
      kernelFloorUs: 12.27,
      layerOverheadUs: 0,
      sequenceOverheadUs: 0,
      stepOverheadUs: 1064,
      prefillOverheadUs: 4260,
      stepOverheadPerHopUs: 0,
      prefillOverheadPerHopUs: 3040,
      allReduceBaseUs: 10.02,
      allReducePerHopUs: 1.394,
      linkEfficiency: 0.287,
    },
  },
  'splitwise-2023': {
    a100: {
      kind: 'hbm',
      matmulEfficiency: 0.9236,
      bandwidthEfficiency: 1,
      attentionEfficiency: 0.0921,
      elementwiseVectors: 53.58,
      kernelFloorUs: 8,
      layerOverheadUs: 189.8,
      sequenceOverheadUs: 4.19,
      stepOverheadUs: 10,
      prefillOverheadUs: 14290,
      stepOverheadPerHopUs: 3319,
      prefillOverheadPerHopUs: 0,
      allReduceBaseUs: 38.44,
      allReducePerHopUs: 4.077,
      linkEfficiency: 0.285,
    },
    h100: {
      kind: 'hbm',
      matmulEfficiency: 0.9105,
      bandwidthEfficiency: 0.8942,
      attentionEfficiency: 0.04369,
      elementwiseVectors: 38.82,
      kernelFloorUs: 8,
      layerOverheadUs: 98.41,
      sequenceOverheadUs: 3.253,
      stepOverheadUs: 10,
      prefillOverheadUs: 14290,
      stepOverheadPerHopUs: 3319,
      prefillOverheadPerHopUs: 0,
      allReduceBaseUs: 2.078,
      allReducePerHopUs: 10.92,
      linkEfficiency: 0.3596,
    },
  },
  nxdi: {
    trn2: {
      kind: 'hbm',
      matmulEfficiency: 1,
      bandwidthEfficiency: 0.7255,
      attentionEfficiency: 0.02691,
      elementwiseVectors: 10,
      kernelFloorUs: 8,
      layerOverheadUs: 0,
      sequenceOverheadUs: 0,
      stepOverheadUs: 5574,
      prefillOverheadUs: 41480,
      stepOverheadPerHopUs: 0,
      prefillOverheadPerHopUs: 0,
      allReduceBaseUs: 10,
      allReducePerHopUs: 2,
      linkEfficiency: 0.7,
    },
  },
  'tnx-2.18': {
    trn1: {
      kind: 'hbm',
      matmulEfficiency: 0.2447,
      bandwidthEfficiency: 0.7964,
      attentionEfficiency: 0.01,
      elementwiseVectors: 10,
      kernelFloorUs: 8,
      layerOverheadUs: 0,
      sequenceOverheadUs: 0,
      stepOverheadUs: 442.2,
      prefillOverheadUs: 6858,
      stepOverheadPerHopUs: 0,
      prefillOverheadPerHopUs: 0,
      allReduceBaseUs: 72.78,
      allReducePerHopUs: 2,
      linkEfficiency: 0.7,
    },
    inf2: {
      kind: 'hbm',
      matmulEfficiency: 0.2667,
      bandwidthEfficiency: 0.6562,
      attentionEfficiency: 0.02658,
      elementwiseVectors: 10,
      kernelFloorUs: 8,
      layerOverheadUs: 0,
      sequenceOverheadUs: 0,
      stepOverheadUs: 10,
      prefillOverheadUs: 18020,
      stepOverheadPerHopUs: 0,
      prefillOverheadPerHopUs: 0,
      allReduceBaseUs: 72.78,
      allReducePerHopUs: 2,
      linkEfficiency: 0.7,
    },
  },
  'cerebras-2025': {
    cs3: {
      kind: 'wafer',
      layerLatencyUs: 4.179,
      residentReadEfficiency: 1,
      stepOverheadUs: 99.23,
      hopLatencyUs: 1,
      matmulEfficiency: 0.2,
      kvBandwidthEfficiency: 0.01,
    },
  },
  'cerebras-2024-08': {
    cs3: {
      kind: 'wafer',
      layerLatencyUs: 8.971,
      residentReadEfficiency: 0.09163,
      stepOverheadUs: 0,
      hopLatencyUs: 10,
      matmulEfficiency: 0.2,
      kvBandwidthEfficiency: 0.01,
    },
  },
};

export const FITTED_BANDS: Readonly<Record<DeviceFamily, FamilyBand>> = {
  gpu: { calibrated: 0.1427, borrowed: 0.2568 },
  neuron: { calibrated: 0.2407, borrowed: 0.4818 },
  wafer: { calibrated: 0.2336, borrowed: 0.4672 },
};

/** Fitted acceptance rates of draft -> target pairs (see speculative.ts PROVIDER_SPECULATION). */
export const FITTED_ACCEPTANCE: Readonly<Record<string, number>> = {
  'llama-3.2-1b>llama-70b': 0.8142,
  'cerebras:llama-3.2-1b>llama-70b': 0.4884,
};
// END FITTED FACTORS
