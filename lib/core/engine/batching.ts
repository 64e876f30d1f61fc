/**
 * Batching policy, shared by the live decode stage and the simulator (policy apart from mechanism).
 */

/**
 * Continuous batching: between decode steps the longest-waiting requests join, first in first out,
 * until the running batch reaches `maxBatch`. Returns how many of the waiting requests join now.
 * This is what the live DecodeBatcher does: its worker takes handoffs while the batch has room.
 */
export function fillBatch(running: number, waiting: number, maxBatch: number): number {
  return Math.max(0, Math.min(waiting, maxBatch - running));
}

export type ReplicaWork = 'prefill' | 'decode' | 'idle';

/**
 * One replica doing both phases (colocated): prefill first. When a prompt waits and the running
 * batch has room for it, the replica prefills it and the running batch stalls meanwhile; otherwise
 * it runs a decode step. This is vLLM's default scheduling (prefills are scheduled before decodes
 * whenever they fit), and its stall is the interference disaggregation removes.
 */
export function colocatedNextWork(prefillWaiting: number, running: number, maxBatch: number): ReplicaWork {
  if (prefillWaiting > 0 && running < maxBatch) return 'prefill';
  return running > 0 ? 'decode' : 'idle';
}
