/**
 * Standard base64 (RFC 4648 §4, padded) over Uint8Array, without Buffer so the core stays pure.
 * Table-driven rather than btoa/atob: on Node 20 those are several times slower than this loop.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const PAD = 61; // '='

const ENCODE = new Uint8Array(64);
/** Char code → 6-bit value, 255 for anything outside the alphabet. */
const DECODE = new Uint8Array(256).fill(255);
for (let i = 0; i < 64; i++) {
  ENCODE[i] = ALPHABET.charCodeAt(i);
  DECODE[ALPHABET.charCodeAt(i)] = i;
}

/** Output is pure ASCII, so any ASCII-compatible decoder turns the code units into the string in one call. */
const ascii = new TextDecoder('utf-8');

export function bytesToBase64(bytes: Uint8Array): string {
  const n = bytes.length;
  const out = new Uint8Array(Math.ceil(n / 3) * 4);
  const e = ENCODE;
  let o = 0;
  let i = 0;
  for (const end = n - (n % 3); i < end; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = e[v >>> 18]!;
    out[o++] = e[(v >>> 12) & 63]!;
    out[o++] = e[(v >>> 6) & 63]!;
    out[o++] = e[v & 63]!;
  }
  const rest = n - i;
  if (rest > 0) {
    const v = (bytes[i]! << 16) | (rest === 2 ? bytes[i + 1]! << 8 : 0);
    out[o++] = e[v >>> 18]!;
    out[o++] = e[(v >>> 12) & 63]!;
    out[o++] = rest === 2 ? e[(v >>> 6) & 63]! : PAD;
    out[o] = PAD;
  }
  return ascii.decode(out);
}

/**
 * Exact decoded length of canonical padded base64 (RFC 4648 alphabet, length a multiple of 4,
 * at most two trailing '='), or -1 when `text` is not that. Checks every character, allocates nothing.
 */
export function base64DecodedLength(text: string): number {
  const len = text.length;
  if (len % 4 !== 0) return -1;
  let pad = 0;
  if (len > 0 && text.charCodeAt(len - 1) === PAD) pad = text.charCodeAt(len - 2) === PAD ? 2 : 1;
  const body = len - pad;
  for (let i = 0; i < body; i++) {
    const c = text.charCodeAt(i);
    if (c > 255 || DECODE[c] === 255) return -1;
  }
  return (len / 4) * 3 - pad;
}

/** Decodes canonical padded base64; throws RangeError on anything else (no whitespace, no missing padding). */
export function base64ToBytes(text: string): Uint8Array {
  const n = base64DecodedLength(text);
  if (n < 0) throw new RangeError('not canonical padded base64 (RFC 4648 alphabet, length a multiple of 4)');
  const out = new Uint8Array(n);
  const d = DECODE;
  const full = Math.floor(n / 3) * 4;
  let o = 0;
  let i = 0;
  for (; i < full; i += 4) {
    const v =
      (d[text.charCodeAt(i)]! << 18) |
      (d[text.charCodeAt(i + 1)]! << 12) |
      (d[text.charCodeAt(i + 2)]! << 6) |
      d[text.charCodeAt(i + 3)]!;
    out[o++] = v >>> 16;
    out[o++] = (v >>> 8) & 255;
    out[o++] = v & 255;
  }
  const rest = n - o;
  if (rest > 0) {
    const v =
      (d[text.charCodeAt(i)]! << 18) |
      (d[text.charCodeAt(i + 1)]! << 12) |
      (rest === 2 ? d[text.charCodeAt(i + 2)]! << 6 : 0);
    out[o] = v >>> 16;
    if (rest === 2) out[o + 1] = (v >>> 8) & 255;
  }
  return out;
}
