/** Routing policy: which path a request takes. Shared by the live pipeline and the simulator. */

export type RoutingMode = 'disaggregated' | 'colocated';
export type RoutingRequest = 'auto' | RoutingMode;

export interface RoutingPolicy {
  /**
   * Conditional disaggregation: prompts whose uncached part is at or below this many tokens run
   * colocated (a short prefill is not worth a KV handoff). 0 disaggregates everything.
   */
  readonly colocateAtOrBelowTokens: number;
  /** Whether a colocated pool exists to send requests to. */
  readonly colocatedAvailable: boolean;
}

export function chooseMode(
  requested: RoutingRequest,
  uncachedPromptTokens: number,
  policy: RoutingPolicy,
): RoutingMode {
  if (requested === 'disaggregated') return 'disaggregated';
  if (requested === 'colocated') return 'colocated';
  if (policy.colocatedAvailable && uncachedPromptTokens <= policy.colocateAtOrBelowTokens) return 'colocated';
  return 'disaggregated';
}

/**
 * Queue discipline: how requests reach the replicas of a pool. One policy for every pool kind, so a
 * colocated system and a disaggregated one are compared on their hardware, not on how they queue.
 *
 * - `shared`: one queue per pool; a replica ready for work takes the oldest request (as workers pulling
 *   one Redis or SQS queue do in the live pipeline, and the live prefill FIFO with its replicas).
 * - `jsq-tokens`: join the shortest queue by pending tokens: a request is bound on arrival to the
 *   replica with the fewest tokens still to process (prompt tokens for prefill, reserved KV tokens for
 *   decode), ties to the lowest replica index.
 */
export type QueueDiscipline = 'shared' | 'jsq-tokens';
export const QUEUE_DISCIPLINES: readonly QueueDiscipline[] = ['shared', 'jsq-tokens'];
export const DEFAULT_QUEUE_DISCIPLINE: QueueDiscipline = 'shared';

export function isQueueDiscipline(value: string): value is QueueDiscipline {
  return (QUEUE_DISCIPLINES as readonly string[]).includes(value);
}

/** `jsq-tokens`: the replica (0 to replicas - 1) with the fewest pending tokens, the lowest index on ties. */
export function shortestQueue(replicas: number, pendingTokens: (replica: number) => number): number {
  let best = 0;
  let bestTokens = Infinity;
  for (let r = 0; r < replicas; r++) {
    const tokens = pendingTokens(r);
    if (tokens < bestTokens) {
      best = r;
      bestTokens = tokens;
    }
  }
  return best;
}
