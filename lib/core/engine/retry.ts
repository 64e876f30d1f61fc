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

/**
 * The KV handoff's own budget (blob put, record save, descriptor send), apart from prefill's: a store blip
 * must not throw away a finished prefill, and a store that stays down ends the request within about a second.
 */
export const HANDOFF_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 100, maxDelayMs: 400 };

/**
 * A store (KV blobs, records, cancellation markers, the handoff queue) that did not answer. The message is
 * for clients and names the store only; the store's own error text stays in `cause`, for the operator's log.
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  readonly code = 'store_unavailable';
  constructor(
    readonly store: 'kv' | 'results' | 'cancellations' | 'queue' | 'claims',
    cause: unknown,
  ) {
    super(`the ${store} store is unavailable`, { cause });
  }
}

/**
 * Runs a store call, turning any failure of it into StoreUnavailableError (programming errors pass as they are).
 * A plain promise chain rather than an async function: it sits on every store round trip (the KV blob's among
 * them), and each await would be one more promise and microtask per call.
 */
export function storeCall<T>(store: StoreUnavailableError['store'], call: () => Promise<T>): Promise<T> {
  const fail = (err: unknown): never => {
    if (err instanceof RangeError || err instanceof TypeError || err instanceof StoreUnavailableError) throw err;
    throw new StoreUnavailableError(store, err);
  };
  try {
    return call().then(undefined, fail);
  } catch (err) {
    return Promise.reject(err).then(undefined, fail);
  }
}
