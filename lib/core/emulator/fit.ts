import { DEVICES } from './devices';
import { kvBytesForContext, weightBytes, weightPartBytes, type Dtype, type ModelProfile } from './models';
import { formatPool, ProfileError, type DevicePool } from './pool';
import { draftParams, type DraftSpec } from './speculative';

/**
 * Default share of device memory usable for weights and KV; the rest holds activations, the runtime and
 * fragmentation. 0.9 mirrors vLLM's default gpu_memory_utilization of 0.9. A setting (`--memory-fraction`).
 */
export const USABLE_MEMORY_FRACTION = 0.9;

export interface FitRequest {
  readonly model: ModelProfile;
  readonly pool: DevicePool;
  readonly weightDtype: Dtype;
  readonly kvDtype: Dtype;
  /** KV that must be resident at once: requests in the batch times their context. */
  readonly batch: number;
  readonly contextTokens: number;
  /** A speculative draft, replicated on every device of the pool. */
  readonly draft?: DraftSpec | null;
  /** Share of each device's memory usable for weights and KV (default USABLE_MEMORY_FRACTION). */
  readonly usableFraction?: number;
}

export interface FitReport {
  readonly fits: boolean;
  readonly weightBytes: number;
  /** The draft's copies, one per device (0 without speculative decoding). */
  readonly draftBytes: number;
  readonly kvBytes: number;
  readonly neededBytes: number;
  readonly capacityBytes: number;
  /** Smallest device count of this kind that holds it. */
  readonly devicesNeeded: number;
  readonly message: string;
}

const gb = (bytes: number): string => `${(bytes / 1e9).toFixed(1)} GB`;

export function validateUsableFraction(fraction: number): number {
  if (!(fraction > 0 && fraction <= 1)) {
    throw new ProfileError(`--memory-fraction must be above 0 and at most 1 (got ${fraction})`);
  }
  return fraction;
}

export function checkFit(req: FitRequest): FitReport {
  const device = DEVICES[req.pool.device];
  const fraction = validateUsableFraction(req.usableFraction ?? USABLE_MEMORY_FRACTION);
  const weights = weightBytes(req.model, req.weightDtype);
  const draftPerDevice = req.draft ? draftParams(req.draft) * weightPartBytes(req.weightDtype).other : 0;
  const draftBytes = draftPerDevice * req.pool.count;
  const kv = req.batch * kvBytesForContext(req.model, req.contextTokens, req.kvDtype);
  const needed = weights + kv + draftBytes;
  const usablePerDevice = device.memoryBytes * fraction;
  const capacity = req.pool.count * usablePerDevice;
  // Each device added brings its usable memory but also needs its own copy of the draft.
  const devicesNeeded = Math.ceil((weights + kv) / Math.max(1, usablePerDevice - draftPerDevice));
  const memory = device.memoryKind === 'sram' ? 'on-chip SRAM' : 'HBM';
  const fits = needed <= capacity && draftPerDevice < usablePerDevice;
  const draftPart = req.draft ? ` + ${gb(draftBytes)} of ${req.draft.id} draft (one per device)` : '';
  const what =
    `${req.model.id} (${req.weightDtype.toUpperCase()}) needs ${gb(needed)}: ${gb(weights)} of weights + ` +
    `${gb(kv)} of KV for ${req.batch} x ${req.contextTokens} tokens${draftPart}`;
  const holds = `${formatPool(req.pool)} holds ${gb(capacity)} (${req.pool.count} x ${gb(device.memoryBytes)} ${memory}, ${Math.round(fraction * 100)}% usable)`;
  const message = fits
    ? `${what}; ${holds}`
    : `${what}; ${holds}; it would take ${devicesNeeded} ${device.id} (${device.id}x${devicesNeeded})`;
  return {
    fits,
    weightBytes: weights,
    draftBytes,
    kvBytes: kv,
    neededBytes: needed,
    capacityBytes: capacity,
    devicesNeeded,
    message,
  };
}

/** A configuration that cannot hold the model: the CLI exits 2 with the numbers. */
export class FitError extends ProfileError {
  constructor(readonly report: FitReport) {
    super(`does not fit: ${report.message}`);
  }
}

export function assertFits(req: FitRequest): FitReport {
  const report = checkFit(req);
  if (!report.fits) throw new FitError(report);
  return report;
}
