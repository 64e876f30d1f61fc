/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of the KV handoff.
 * Castagnoli rather than IEEE CRC-32 because it detects more error patterns in long blobs
 * and is the CRC that S3 and most storage stacks offer natively.
 *
 * This is the checksum port and its reference implementation in plain JavaScript. The pipeline
 * checksums every KV blob twice (once encoding, once verifying; once only when the in-memory store hands
 * decode the very array prefill encoded, see decodeKvBlob's trustOwnEncoding), so where a native CRC-32C loads,
 * an adapter injects it (lib/adapters/checksum-native.ts); this one is the fallback, and the
 * definition the native one is tested against.
 */

/**
 * The checksum port: CRC-32C of `bytes` as an unsigned 32-bit number, continuing from `seed`
 * (a previous result) when given, so crc(b, crc(a)) === crc(a ++ b).
 */
export type Crc32c = (bytes: Uint8Array, seed?: number) => number;

const POLY = 0x82f63b78;

/** Eight 256-entry tables in one array: table k at offset k * 256 (slicing-by-8). */
const TABLES: Int32Array = buildTables();

function buildTables(): Int32Array {
  const t = new Int32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    let c = t[i]!;
    for (let k = 1; k < 8; k++) {
      c = (c >>> 8) ^ t[c & 0xff]!;
      t[k * 256 + i] = c;
    }
  }
  return t;
}

/**
 * CRC-32C of `bytes`, as an unsigned 32-bit number.
 * Pass a previous result as `seed` to continue over data split into pieces:
 * crc32c(b, crc32c(a)) === crc32c(a ++ b).
 */
export function crc32c(bytes: Uint8Array, seed = 0): number {
  const t = TABLES;
  let crc = ~seed;
  let i = 0;
  const n = bytes.length;
  const end8 = n - (n & 7);
  while (i < end8) {
    const lo = crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    crc =
      t[1792 + (lo & 0xff)]! ^
      t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^
      t[1024 + (lo >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^
      t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!;
    i += 8;
  }
  while (i < n) crc = (crc >>> 8) ^ t[(crc ^ bytes[i++]!) & 0xff]!;
  return ~crc >>> 0;
}
