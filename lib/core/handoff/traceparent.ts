/**
 * The W3C Trace Context `traceparent` value (https://www.w3.org/TR/trace-context/): version, 32 hex digits of
 * trace id, 16 of parent span id, 2 of flags. It rides in the handoff descriptor so the decode stage's span
 * joins the prefill stage's trace; it arrives from clients too, so it is checked before anything uses it.
 */

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const ALL_ZERO = /^0+$/;

/** 55 characters: the version 00 layout. */
export const TRACEPARENT_CHARS = 55;

/** The value, lower-cased and trimmed, when it is a valid traceparent; undefined otherwise. */
export function validTraceparent(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > TRACEPARENT_CHARS + 8) return undefined;
  const v = value.trim().toLowerCase();
  // Version ff is forbidden; all-zero trace and span ids are invalid.
  if (!TRACEPARENT.test(v) || v.startsWith('ff-')) return undefined;
  if (ALL_ZERO.test(v.slice(3, 35)) || ALL_ZERO.test(v.slice(36, 52))) return undefined;
  return v;
}
