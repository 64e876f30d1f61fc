/** How client values and limits read in error messages. */

/** A short, safe description of a client value for an error message (never echoes a long string). */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return v.length <= 40 ? JSON.stringify(v) : `a string of ${v.length} characters`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.length === 1 ? 'an array of 1 item' : `an array of ${v.length} items`;
  if (typeof v === 'object') return 'an object';
  return typeof v;
}

/** 1048576 → "1,048,576". */
export function groupDigits(n: number): string {
  const s = String(Math.trunc(n));
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}
