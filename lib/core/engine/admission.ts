/**
 * Admission policy: bounded queues, rejected at once when full, never left waiting past a
 * deadline. Shared by the live pipeline and the simulator.
 */

export interface AdmissionLimits {
  /** Requests admitted but not yet through prefill (waiting or running). */
  readonly maxPrefillQueue: number;
  /** Requests handed off but not yet in the running decode batch. */
  readonly maxDecodeQueue: number;
}

export interface QueueOccupancy {
  readonly prefillQueue: number;
  readonly decodeQueue: number;
}

export type AdmissionDecision =
  | { readonly admitted: true }
  | {
      readonly admitted: false;
      /** Which queue was full: a metrics label, where `reason` is the sentence for the client. */
      readonly queue: 'prefill' | 'decode';
      readonly reason: string;
      readonly retryAfterSeconds: number;
    };

/**
 * `drainEstimateMs` is how long the fuller queue would take to empty (emulated time scaled to
 * wall time by the caller); the Retry-After a client gets is that, at least one second.
 */
export function admit(occupancy: QueueOccupancy, limits: AdmissionLimits, drainEstimateMs: number): AdmissionDecision {
  const retryAfterSeconds = Math.max(1, Math.ceil(drainEstimateMs / 1000));
  if (occupancy.prefillQueue >= limits.maxPrefillQueue) {
    return {
      admitted: false,
      queue: 'prefill',
      reason: `prefill queue is full (${occupancy.prefillQueue} of ${limits.maxPrefillQueue} requests)`,
      retryAfterSeconds,
    };
  }
  if (occupancy.decodeQueue >= limits.maxDecodeQueue) {
    return {
      admitted: false,
      queue: 'decode',
      reason: `decode queue is full (${occupancy.decodeQueue} of ${limits.maxDecodeQueue} requests)`,
      retryAfterSeconds,
    };
  }
  return { admitted: true };
}
