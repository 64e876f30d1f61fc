/**
 * Retry policy for a failed prefill: a few tries with exponential backoff, then a terminal error.
 * Shared by the embedded runtime and the prefill Lambda.
 */

export interface RetryPolicy {
  /** Tries in all, the first included. */
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** 3 tries, waiting 100 ms then 200 ms: enough to ride out a store blip, short next to a request deadline. */
export const PREFILL_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 100, maxDelayMs: 2000 };

/** Wall-clock wait before try `attempt` (2, 3, ...): base x 2^(attempt - 2), capped. */
export function retryDelayMs(attempt: number, policy: RetryPolicy): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 2));
}

/**
 * Runs `work` up to `policy.attempts` times, sleeping between tries; rethrows the last error.
 * `shouldRetry` can stop early (a cancelled request, a deadline that a wait would pass).
 */
export async function withRetries<T>(
  work: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  sleep: (ms: number) => Promise<void>,
  shouldRetry: (err: unknown, attempt: number) => boolean | Promise<boolean> = () => true,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (err) {
      if (attempt >= policy.attempts || !(await shouldRetry(err, attempt))) throw err;
      await sleep(retryDelayMs(attempt + 1, policy));
    }
  }
}
