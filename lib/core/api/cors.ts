/**
 * Cross-origin access, the same on both transports: which origins a browser page may call the API from, and the
 * methods and headers a preflight allows. The embedded server answers preflights in the application; the deployed
 * API answers them in API Gateway (MOCK integrations) and its functions add the headers to every response.
 */

/** Methods of the API's routes, and OPTIONS for the preflight itself. */
export const CORS_ALLOW_METHODS = ['GET', 'POST', 'DELETE', 'OPTIONS'] as const;

/** Request headers a page may send: the key in either form, the request id, JSON, and trace context. */
export const CORS_ALLOW_HEADERS = [
  'authorization',
  'x-api-key',
  'x-request-id',
  'content-type',
  'traceparent',
] as const;

/** Response headers a page may read. */
export const CORS_EXPOSE_HEADERS = ['x-request-id', 'retry-after'] as const;

/** How long a browser may cache a preflight answer, seconds. */
export const CORS_MAX_AGE_SECONDS = 600;

const ORIGIN = /^https?:\/\/[^/\s]+$/;

/**
 * `*`, or origins like `http://localhost:3000` (scheme and host, no path), comma-separated or as a list; empty:
 * no cross-origin access. Throws an Error whose message names `what` (the flag or key) and the bad origin.
 */
export function parseCorsOrigins(value: string | readonly string[] | undefined, what: string): string[] {
  if (value === undefined) return [];
  const origins = (typeof value === 'string' ? value.split(',') : value).map((o) => o.trim()).filter((o) => o !== '');
  for (const origin of origins) {
    if (origin !== '*' && !ORIGIN.test(origin)) {
      throw new Error(
        `${what} takes * or origins like http://localhost:3000 (scheme and host, no path), got "${origin}"`,
      );
    }
  }
  return origins;
}
