/**
 * Batching policy, shared by the live decode stage (DecodeBatcher) and the simulator: one rule,
 * two mechanisms.
 *
 * Memory-aware continuous batching. Between decode steps, waiting requests join the running batch
 * first in first out while (a) the batch is under its size limit (`maxBatch`) and (b) the KV the
 * batch will need fits the pool's KV budget.
 *
 * - KV need of a request: its KV at its final context, prompt + the most tokens it may generate
 *   (`sampling.maxTokens` live, the trace's output tokens in the simulator), from the emulator's
 *   kvBytesForContext. Reserved in full when it joins, so a running batch never outgrows memory
 *   and never has to evict or preempt; this over-reserves for answers that stop early, which
 *   vLLM's paged allocation would not (it admits on the blocks needed now and preempts when short).
 * - KV budget of a pool (kvBudgetBytes): devices x memory x USABLE_MEMORY_FRACTION (the rest holds
 *   activations and the runtime, as vLLM's gpu_memory_utilization) minus the weights at the
 *   compute dtype.
 * - Head of line: if the oldest waiting request does not fit, nobody behind it joins, even a
 *   smaller one. Skipping ahead would starve long requests behind a stream of short ones; strict
 *   arrival order is also vLLM's default (FCFS) scheduling.
 * - A request whose own KV need exceeds the whole budget can never join: callers reject it
 *   (reason `too_large_for_decode_memory`) instead of queueing it, or it would block the line.
 */
import {
  DEVICES,
  kvBytesForContext,
  USABLE_MEMORY_FRACTION,
  weightBytes,
  type ComputeOptions,
  type DevicePool,
  type ModelProfile,
} from '../emulator';

/** The failure code and rejection reason of a request that cannot fit the decode pool even alone. */
export const TOO_LARGE_FOR_DECODE_MEMORY = 'too_large_for_decode_memory';

/** What a running batch may hold. */
export interface BatchLimits {
  /** Most requests running at once. */
  readonly maxBatch: number;
  /** Bytes of KV the pool holds beside the weights (kvBudgetBytes); may be 0, never negative. */
  readonly kvBudgetBytes: number;
}

/** KV bytes a pool holds beside the model's weights: usable memory minus weights, at least 0. */
export function kvBudgetBytes(model: ModelProfile, pool: DevicePool, compute: ComputeOptions): number {
  const usable = pool.count * DEVICES[pool.device].memoryBytes * USABLE_MEMORY_FRACTION;
  return Math.max(0, usable - weightBytes(model, compute.weightDtype));
}

/** A request's KV need: its KV at its final context (prompt + the most tokens it may generate). */
export function kvNeedBytes(
  model: ModelProfile,
  promptTokens: number,
  maxOutputTokens: number,
  compute: ComputeOptions,
): number {
  return kvBytesForContext(model, promptTokens + maxOutputTokens, compute.kvDtype);
}

/** Whether a request that needs `kvBytes` could ever run: alone, in an empty batch. */
export function fitsAlone(kvBytes: number, limits: BatchLimits): boolean {
  return kvBytes <= limits.kvBudgetBytes;
}

/** Whether one more request needing `kvBytes` may join a batch of `running` requests needing `runningKvBytes`. */
export function canJoin(running: number, runningKvBytes: number, kvBytes: number, limits: BatchLimits): boolean {
  return running < limits.maxBatch && runningKvBytes + kvBytes <= limits.kvBudgetBytes;
}

/**
 * How many of the `waiting` requests join now, oldest first. `waitingKvBytes(k)` is the KV need of
 * the k-th oldest. Stops at the first that does not fit (head of line), so the result is a prefix.
 */
export function fillBatch(
  running: number,
  runningKvBytes: number,
  waiting: number,
  waitingKvBytes: (k: number) => number,
  limits: BatchLimits,
): number {
  let joining = 0;
  let kv = runningKvBytes;
  while (joining < waiting) {
    const need = waitingKvBytes(joining);
    if (!canJoin(running + joining, kv, need, limits)) break;
    kv += need;
    joining += 1;
  }
  return joining;
}

export type ReplicaWork = 'prefill' | 'decode' | 'idle';

/**
 * One replica doing both phases (colocated): prefill first. When a prompt waits and the running
 * batch has room for it (fillBatch's rule, for the oldest waiting prompt, whose KV joins the batch
 * right after its prefill), the replica prefills it and the running batch stalls meanwhile;
 * otherwise it runs a decode step. This is vLLM's default scheduling (prefills are scheduled
 * before decodes whenever they fit), and its stall is the interference disaggregation removes.
 */
export function colocatedNextWork(
  prefillWaiting: number,
  nextPrefillKvBytes: number,
  running: number,
  runningKvBytes: number,
  limits: BatchLimits,
): ReplicaWork {
  if (prefillWaiting > 0 && canJoin(running, runningKvBytes, nextPrefillKvBytes, limits)) return 'prefill';
  return running > 0 ? 'decode' : 'idle';
}
