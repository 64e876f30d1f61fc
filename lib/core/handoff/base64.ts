/**
 * Standard base64 (RFC 4648 §4, padded) over Uint8Array, without Buffer so the core stays pure.
 * Table-driven rather than btoa/atob: on Node 20 those are several times slower than this loop.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const PAD = 61; // '='

const ENCODE = new Uint8Array(64);
/**
 * UTF-16 code unit → 6-bit value, 255 for anything outside the alphabet: every code unit has an entry, so a lookup
 * needs no range check, and a value with either of its top two bits set is not base64.
 */
const DECODE = new Uint8Array(65536).fill(255);
const NOT_BASE64 = 0xc0;
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
  const n = paddedLength(text);
  if (n < 0) return -1;
  const d = DECODE;
  const pad = (text.length / 4) * 3 - n;
  const body = text.length - pad;
  let bad = 0;
  for (let i = 0; i < body; i++) bad |= d[text.charCodeAt(i)]!;
  return bad & NOT_BASE64 ? -1 : n;
}

/** The decoded length of `text`, known to be canonical padded base64 (bytesToBase64's own output), in O(1). */
export function base64LengthOfCanonical(text: string): number {
  return paddedLength(text);
}

/**
 * The decoded length `text` claims by its length and padding alone (a multiple of 4, at most two trailing '='),
 * or -1; whether every other character is in the alphabet is not checked here.
 */
function paddedLength(text: string): number {
  const len = text.length;
  if (len % 4 !== 0) return -1;
  let pad = 0;
  if (len > 0 && text.charCodeAt(len - 1) === PAD) pad = text.charCodeAt(len - 2) === PAD ? 2 : 1;
  return (len / 4) * 3 - pad;
}

/**
 * Decodes canonical padded base64; throws RangeError on anything else (no whitespace, no missing padding). One
 * pass: each character is checked as it is decoded.
 */
export function base64ToBytes(text: string): Uint8Array {
  const n = paddedLength(text);
  if (n < 0) throw notBase64();
  const out = new Uint8Array(n);
  const d = DECODE;
  const full = Math.floor(n / 3) * 4;
  let bad = 0;
  let o = 0;
  let i = 0;
  for (; i < full; i += 4) {
    const a = d[text.charCodeAt(i)]!;
    const b = d[text.charCodeAt(i + 1)]!;
    const c = d[text.charCodeAt(i + 2)]!;
    const e = d[text.charCodeAt(i + 3)]!;
    bad |= a | b | c | e;
    const v = (a << 18) | (b << 12) | (c << 6) | e;
    out[o++] = v >>> 16;
    out[o++] = (v >>> 8) & 255;
    out[o++] = v & 255;
  }
  const rest = n - o;
  if (rest > 0) {
    const a = d[text.charCodeAt(i)]!;
    const b = d[text.charCodeAt(i + 1)]!;
    const c = rest === 2 ? d[text.charCodeAt(i + 2)]! : 0;
    bad |= a | b | c;
    const v = (a << 18) | (b << 12) | (c << 6);
    out[o] = v >>> 16;
    if (rest === 2) out[o + 1] = (v >>> 8) & 255;
  }
  if (bad & NOT_BASE64) throw notBase64();
  return out;
}

function notBase64(): RangeError {
  return new RangeError('not canonical padded base64 (RFC 4648 alphabet, length a multiple of 4)');
}
