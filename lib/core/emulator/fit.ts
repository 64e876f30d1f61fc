import { DEVICES } from './devices';
import { kvBytesForContext, weightBytes, type Dtype, type ModelProfile } from './models';
import { formatPool, ProfileError, type DevicePool } from './pool';

/**
 * Share of device memory usable for weights and KV; the rest holds activations, the runtime and
 * fragmentation. 0.9 mirrors vLLM's default gpu_memory_utilization of 0.9.
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
}

export interface FitReport {
  readonly fits: boolean;
  readonly weightBytes: number;
  readonly kvBytes: number;
  readonly neededBytes: number;
  readonly capacityBytes: number;
  /** Smallest device count of this kind that holds it. */
  readonly devicesNeeded: number;
  readonly message: string;
}

const gb = (bytes: number): string => `${(bytes / 1e9).toFixed(1)} GB`;

export function checkFit(req: FitRequest): FitReport {
  const device = DEVICES[req.pool.device];
  const weights = weightBytes(req.model, req.weightDtype);
  const kv = req.batch * kvBytesForContext(req.model, req.contextTokens, req.kvDtype);
  const needed = weights + kv;
  const usablePerDevice = device.memoryBytes * USABLE_MEMORY_FRACTION;
  const capacity = req.pool.count * usablePerDevice;
  const devicesNeeded = Math.ceil(needed / usablePerDevice);
  const memory = device.memoryKind === 'sram' ? 'on-chip SRAM' : 'HBM';
  const fits = needed <= capacity;
  const what =
    `${req.model.id} (${req.weightDtype.toUpperCase()}) needs ${gb(needed)}: ${gb(weights)} of weights + ` +
    `${gb(kv)} of KV for ${req.batch} x ${req.contextTokens} tokens`;
  const holds = `${formatPool(req.pool)} holds ${gb(capacity)} (${req.pool.count} x ${gb(device.memoryBytes)} ${memory}, ${Math.round(USABLE_MEMORY_FRACTION * 100)}% usable)`;
  const message = fits
    ? `${what}; ${holds}`
    : `${what}; ${holds}; it would take ${devicesNeeded} ${device.id} (${device.id}x${devicesNeeded})`;
  return {
    fits,
    weightBytes: weights,
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
