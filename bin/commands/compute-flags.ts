/**
 * `--band` and `--stack` for `simulate`, `sweep` and `plan`: which end of the timing model's cross-validated error
 * band device time is charged at, and which serving stack each device family runs (the parser `estimate` and
 * `serve` use).
 */
import { DEFAULT_COMPUTE, parseStacks, type ComputeOptions, type TimingBand } from '../../lib/core/emulator';

export const BANDS: readonly TimingBand[] = ['low', 'mid', 'high'];

export interface ComputeFlags {
  band?: string;
  stack?: string;
}

/** The compute options the flags ask for, or undefined when neither is given (the simulator's defaults). */
export function computeFromFlags(flags: ComputeFlags): ComputeOptions | undefined {
  if (flags.band === undefined && flags.stack === undefined) return undefined;
  const band = (flags.band ?? 'mid') as TimingBand;
  return { ...DEFAULT_COMPUTE, band, stacks: parseStacks(flags.stack) };
}
