import type { DeviceFamily } from './devices';

/**
 * Achieved fractions of peak, per device family. The numbers below are the output of
 * `npx disagg calibrate --fit` (calibration.ts fits them to published measurements) and a
 * unit test checks they still equal what the fit produces, so they cannot drift from their source.
 */
export interface HbmEfficiency {
  readonly kind: 'hbm';
  /** Model FLOPs utilisation in prefill (fraction of dense peak). */
  readonly prefillMfu: number;
  /** Fraction of peak memory bandwidth a decode step achieves reading weights and KV. */
  readonly decodeBandwidth: number;
  /** Software overhead per tensor-parallel collective beyond the link's hop latency, in microseconds. */
  readonly collectiveOverheadUs: number;
}

export interface WaferEfficiency {
  readonly kind: 'wafer';
  /** Prefill MFU on the wafer: no published measurement; an assumption (see ASSUMED_WAFER_PREFILL_MFU). */
  readonly prefillMfu: number;
  /** Fixed pipeline latency a token spends in each layer, in microseconds. */
  readonly layerLatencyUs: number;
  /** Fraction of SRAM bandwidth a single token's pass achieves (published speeds use a tiny fraction). */
  readonly sramEfficiency: number;
}

export type FamilyEfficiency = HbmEfficiency | WaferEfficiency;
export type EfficiencyTable = Readonly<Record<DeviceFamily, FamilyEfficiency>>;

/**
 * CS-3 prefill has no public measurement to fit. 0.2 of the 125 PFLOPS peak is assumed: the peak is a
 * "peak AI" figure, and GPU prefill reaches about half of dense peak (see the fitted gpu prefillMfu).
 */
export const ASSUMED_WAFER_PREFILL_MFU = 0.2;

export const FITTED_EFFICIENCY: EfficiencyTable = {
  gpu: { kind: 'hbm', prefillMfu: 0.4715, decodeBandwidth: 0.5706, collectiveOverheadUs: 0 },
  neuron: { kind: 'hbm', prefillMfu: 0.2856, decodeBandwidth: 0.5706, collectiveOverheadUs: 50.13 },
  wafer: { kind: 'wafer', prefillMfu: ASSUMED_WAFER_PREFILL_MFU, layerLatencyUs: 13.62, sramEfficiency: 0.006018 },
};
