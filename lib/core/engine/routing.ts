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
