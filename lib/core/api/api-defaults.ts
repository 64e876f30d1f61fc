/**
 * The API's default limits, apart from the routes so the prefill and decode functions, which read them through
 * the shared wiring, do not bundle the request parser and its schema library.
 */

/** Largest request body the API accepts, bytes. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** max_tokens when the client sends none; the reference model runs on a CPU, so replies stay short. */
export const DEFAULT_MAX_TOKENS = 128;

/** OpenAI's `system_fingerprint`: which backend produced an output (the reference model's is reproducible by seed). */
export function systemFingerprint(backendName: string): string {
  return `fp_disagg_${backendName}`;
}
