/**
 * The KV blob: the binary wire format of a KV cache crossing the prefill → decode handoff.
 *
 * Layout (all integers little-endian):
 *
 *   offset  size  field
 *   0       4     magic "DKV1"
 *   4       2     format version (KV_BLOB_VERSION)
 *   6       2     dtype code (KV_DTYPE; only float32 is written today)
 *   8       4     layers
 *   12      4     kvHeads
 *   16      4     headDim
 *   20      4     tokens
 *   24      2     model id length in UTF-8 bytes (1..256)
 *   26      2     reserved, zero
 *   28      4     header CRC-32C over bytes 0..27
 *   32      m     model id, UTF-8, zero-padded to a multiple of 4
 *   then, per layer l = 0..layers-1:
 *           4     layer index l
 *           4     chunk byte length (keys + values)
 *           k     keys   [token][kvHead][headDim]
 *           k     values [token][kvHead][headDim]
 *   end-4   4     CRC-32C over every byte before it
 *
 * Fixed-size fields come first and carry their own CRC so a reader trusts the declared size
 * before it allocates, and can tell a truncated blob from a corrupt one. Every offset stays
 * 4-byte aligned, and per-layer chunks let a reader (or a transfer model) go layer by layer.
 */
import type { KvCache } from '../ports';
import type { KvBlobPool } from './blob-pool';
import { crc32c as javascriptCrc32c, type Crc32c } from './checksum';

export const KV_BLOB_MAGIC = 'DKV1';
/** Bump on any layout change; a reader rejects every version it was not built for. */
export const KV_BLOB_VERSION = 1;
export const KV_BLOB_MAX_MODEL_BYTES = 256;
/** Default decode limit; the largest blobs the pipeline checksums are far below this. */
export const KV_BLOB_DEFAULT_MAX_BYTES = 512 * 1024 * 1024;

/** Element type codes. Only float32 is read or written; the others are reserved so they can be added. */
export const KV_DTYPE = { float32: 1, float16: 2, bfloat16: 3 } as const;
export type KvDtype = keyof typeof KV_DTYPE;

const DTYPE_BYTES: Readonly<Record<number, number>> = { 1: 4, 2: 2, 3: 2 };
const DTYPE_NAMES: Readonly<Record<number, KvDtype>> = { 1: 'float32', 2: 'float16', 3: 'bfloat16' };

const MAGIC_BYTES = new Uint8Array([0x44, 0x4b, 0x56, 0x31]); // "DKV1"
const FIXED_HEADER_BYTES = 32;
const HEADER_CRC_OFFSET = 28;
const CHUNK_HEADER_BYTES = 8;
const TRAILER_BYTES = 4;
const U32_MAX = 0xffff_ffff;

/** Typed arrays use platform byte order; the format is little-endian, so big-endian hosts take the slow path. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export type KvBlobErrorCode =
  'truncated' | 'bad_magic' | 'version_mismatch' | 'checksum_mismatch' | 'bad_header' | 'too_large';

export class KvBlobError extends Error {
  override readonly name = 'KvBlobError';
  constructor(
    readonly code: KvBlobErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The header fields a blob's size follows from. */
export type KvBlobShape = Pick<KvCache, 'model' | 'layers' | 'kvHeads' | 'headDim' | 'tokens'>;

export interface KvBlobLimits {
  /** Reject blobs (actual or declared) larger than this many bytes. Default KV_BLOB_DEFAULT_MAX_BYTES. */
  readonly maxBytes?: number;
}

export interface KvBlobCodecOptions {
  /** The CRC-32C implementation (the checksum port); default the JavaScript reference in checksum.ts. */
  readonly crc32c?: Crc32c;
}

export interface KvBlobWriteOptions extends KvBlobCodecOptions {
  /**
   * Where the blob's memory comes from: a pool lends it (and takes it back once the blob is done, see
   * blob-pool.ts). Default a fresh allocation.
   */
  readonly pool?: KvBlobPool;
}

export interface KvBlobReadOptions extends KvBlobLimits, KvBlobCodecOptions {
  /**
   * false: the caller hands the bytes over (it fetched them and writes to them no more), so the
   * returned floats view them where they are 4-byte aligned instead of copying each layer.
   * Default true: the result never aliases `bytes`.
   */
  readonly copy?: boolean;
  /**
   * true: the caller vouches that nothing wrote to `bytes` since they left the encoder (a store handed back the
   * very array it was given). When they are exactly the array encodeKvBlob returned in this thread, their body
   * checksum is the one the encoder computed over them, so it is not computed again; once per blob, as any later
   * decode of the same array verifies in full. Any other bytes are verified as usual. Default false.
   */
  readonly trustOwnEncoding?: boolean;
}

/**
 * Blobs this thread's encoder returned, with the body CRC it wrote into each: a blob handed back as the very
 * same array (the in-memory store's handover) need not be checksummed twice. Weak, so a blob is still collected.
 */
const ownEncodings = new WeakMap<Uint8Array, number>();

/** Exact encoded size in bytes of a float32 KV blob with this shape. */
export function kvBlobByteLength(shape: KvBlobShape): number {
  checkShape(shape);
  return byteLength(modelBytes(shape.model).length, shape.layers, shape.kvHeads * shape.headDim * shape.tokens, 4);
}

export function encodeKvBlob(kv: KvCache, options: KvBlobWriteOptions = {}): Uint8Array {
  const crc32c = options.crc32c ?? javascriptCrc32c;
  checkShape(kv);
  const model = modelBytes(kv.model);
  const elems = kv.tokens * kv.kvHeads * kv.headDim;
  const chunkBytes = 2 * elems * 4;
  if (chunkBytes > U32_MAX) {
    throw new KvBlobError('too_large', `a KV layer of ${chunkBytes} bytes does not fit the format's u32 chunk length`);
  }
  if (kv.keys.length !== kv.layers || kv.values.length !== kv.layers) {
    throw new KvBlobError(
      'bad_header',
      `KvCache declares ${kv.layers} layers but has ${kv.keys.length} key and ${kv.values.length} value arrays`,
    );
  }
  const total = byteLength(model.length, kv.layers, elems, 4);
  // A pooled buffer holds an older blob: every byte below is written, the model id's zero padding included.
  const out = options.pool ? options.pool.acquire(total) : new Uint8Array(total);
  const view = new DataView(out.buffer, out.byteOffset, total);

  out.set(MAGIC_BYTES, 0);
  view.setUint16(4, KV_BLOB_VERSION, true);
  view.setUint16(6, KV_DTYPE.float32, true);
  view.setUint32(8, kv.layers, true);
  view.setUint32(12, kv.kvHeads, true);
  view.setUint32(16, kv.headDim, true);
  view.setUint32(20, kv.tokens, true);
  view.setUint16(24, model.length, true);
  view.setUint16(26, 0, true);
  view.setUint32(HEADER_CRC_OFFSET, crc32c(out.subarray(0, HEADER_CRC_OFFSET)), true);
  out.set(model, FIXED_HEADER_BYTES);
  out.fill(0, FIXED_HEADER_BYTES + model.length, FIXED_HEADER_BYTES + align4(model.length));

  let off = FIXED_HEADER_BYTES + align4(model.length);
  for (let l = 0; l < kv.layers; l++) {
    const keys = kv.keys[l];
    const values = kv.values[l];
    if (!(keys instanceof Float32Array) || !(values instanceof Float32Array)) {
      throw new KvBlobError('bad_header', `KvCache layer ${l}: keys and values must be Float32Arrays`);
    }
    if (keys.length !== elems || values.length !== elems) {
      throw new KvBlobError(
        'bad_header',
        `KvCache layer ${l}: expected ${elems} floats (tokens × kvHeads × headDim) in keys and values, ` +
          `got ${keys.length} and ${values.length}`,
      );
    }
    view.setUint32(off, l, true);
    view.setUint32(off + 4, chunkBytes, true);
    off += CHUNK_HEADER_BYTES;
    writeFloats(out, view, off, keys);
    off += elems * 4;
    writeFloats(out, view, off, values);
    off += elems * 4;
  }
  const bodyCrc = crc32c(out.subarray(0, off));
  view.setUint32(off, bodyCrc, true);
  ownEncodings.set(out, bodyCrc);
  return out;
}

/**
 * Decodes and verifies a KV blob. Throws only KvBlobError, whatever the input, and allocates
 * nothing sized by the header until the declared size matches the actual bytes and both checksums.
 */
export function decodeKvBlob(bytes: Uint8Array, options?: KvBlobReadOptions): KvCache {
  try {
    return decode(bytes, options);
  } catch (err) {
    if (err instanceof KvBlobError) throw err;
    // Unreachable by design; kept so a bug here still surfaces as the one error type callers handle.
    throw new KvBlobError('bad_header', `KV blob could not be decoded: ${String(err)}`, { cause: err });
  }
}

function decode(bytes: Uint8Array, options: KvBlobReadOptions | undefined): KvCache {
  const crc32c = options?.crc32c ?? javascriptCrc32c;
  const copy = options?.copy ?? true;
  if (!(bytes instanceof Uint8Array)) {
    throw new KvBlobError('bad_header', `a KV blob must be a Uint8Array, got ${describe(bytes)}`);
  }
  const maxBytes = options?.maxBytes ?? KV_BLOB_DEFAULT_MAX_BYTES;
  if (typeof maxBytes !== 'number' || !(maxBytes >= 0)) {
    throw new KvBlobError(
      'too_large',
      `limits.maxBytes must be a non-negative number of bytes, got ${String(maxBytes)}`,
    );
  }
  const n = bytes.length;
  if (n > maxBytes) {
    throw new KvBlobError('too_large', `KV blob is ${n} bytes, over the ${maxBytes} byte limit (limits.maxBytes)`);
  }
  for (let i = 0; i < MAGIC_BYTES.length; i++) {
    if (i >= n) {
      throw new KvBlobError('truncated', `KV blob is truncated: ${n} bytes, too short to hold its magic`);
    }
    if (bytes[i] !== MAGIC_BYTES[i]) {
      throw new KvBlobError(
        'bad_magic',
        `not a KV blob: expected magic "${KV_BLOB_MAGIC}", found bytes ${hex(bytes.subarray(0, 4))}`,
      );
    }
  }
  if (n < 6) throw new KvBlobError('truncated', `KV blob is truncated: ${n} bytes, too short to hold its version`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, n);
  const version = view.getUint16(4, true);
  if (version !== KV_BLOB_VERSION) {
    throw new KvBlobError(
      'version_mismatch',
      `KV blob version ${version} is not supported (this build reads version ${KV_BLOB_VERSION}); ` +
        'run prefill and decode from the same release',
    );
  }
  if (n < FIXED_HEADER_BYTES) {
    throw new KvBlobError(
      'truncated',
      `KV blob is truncated: ${n} bytes, shorter than its ${FIXED_HEADER_BYTES} byte fixed header`,
    );
  }
  const storedHeaderCrc = view.getUint32(HEADER_CRC_OFFSET, true);
  const headerCrc = crc32c(bytes.subarray(0, HEADER_CRC_OFFSET));
  if (storedHeaderCrc !== headerCrc) {
    throw new KvBlobError(
      'checksum_mismatch',
      `KV blob header is corrupt: checksum ${hex32(storedHeaderCrc)} stored, ${hex32(headerCrc)} computed`,
    );
  }

  const dtype = view.getUint16(6, true);
  const layers = view.getUint32(8, true);
  const kvHeads = view.getUint32(12, true);
  const headDim = view.getUint32(16, true);
  const tokens = view.getUint32(20, true);
  const modelLen = view.getUint16(24, true);
  const reserved = view.getUint16(26, true);
  const elemBytes = DTYPE_BYTES[dtype];
  if (elemBytes === undefined) throw new KvBlobError('bad_header', `KV blob has unknown dtype code ${dtype}`);
  if (dtype !== KV_DTYPE.float32) {
    throw new KvBlobError(
      'bad_header',
      `KV blob dtype ${DTYPE_NAMES[dtype]} is not supported by this build (it reads float32 only)`,
    );
  }
  if (reserved !== 0) throw new KvBlobError('bad_header', `KV blob reserved header field is ${reserved}, not 0`);
  if (modelLen < 1 || modelLen > KV_BLOB_MAX_MODEL_BYTES) {
    throw new KvBlobError(
      'bad_header',
      `KV blob model id length ${modelLen} is outside 1..${KV_BLOB_MAX_MODEL_BYTES} bytes`,
    );
  }
  if (layers < 1 || kvHeads < 1 || headDim < 1) {
    throw new KvBlobError(
      'bad_header',
      `KV blob header has a zero dimension (layers ${layers}, kvHeads ${kvHeads}, headDim ${headDim})`,
    );
  }

  // Doubles are exact to 2^53; past that the size is far beyond any limit, which is all that matters.
  const elems = tokens * kvHeads * headDim;
  const expected = byteLength(modelLen, layers, elems, elemBytes);
  if (expected > maxBytes) {
    throw new KvBlobError(
      'too_large',
      `KV blob header declares ${expected} bytes (${layers} layers × ${tokens} tokens × ${kvHeads} KV heads × ` +
        `${headDim} head dim), over the ${maxBytes} byte limit (limits.maxBytes)`,
    );
  }
  if (n < expected) {
    throw new KvBlobError('truncated', `KV blob is truncated: ${n} bytes, but its header declares ${expected}`);
  }
  if (n > expected) {
    throw new KvBlobError('bad_header', `KV blob has ${n - expected} trailing bytes after the ${expected} it declares`);
  }

  const body = n - TRAILER_BYTES;
  const stored = view.getUint32(body, true);
  const computed =
    options?.trustOwnEncoding === true ? ownEncodingCrc(bytes, body, crc32c) : crc32c(bytes.subarray(0, body));
  if (stored !== computed) {
    throw new KvBlobError(
      'checksum_mismatch',
      `KV blob checksum mismatch (${hex32(stored)} stored, ${hex32(computed)} computed): ` +
        'the bytes were corrupted in storage or transit',
    );
  }

  let model: string;
  try {
    model = utf8Strict.decode(bytes.subarray(FIXED_HEADER_BYTES, FIXED_HEADER_BYTES + modelLen));
  } catch (err) {
    throw new KvBlobError('bad_header', 'KV blob model id is not valid UTF-8', { cause: err });
  }
  let off = FIXED_HEADER_BYTES + modelLen;
  const bodyStart = FIXED_HEADER_BYTES + align4(modelLen);
  for (; off < bodyStart; off++) {
    if (bytes[off] !== 0) throw new KvBlobError('bad_header', 'KV blob model id padding is not zero');
  }

  const chunkBytes = 2 * elems * elemBytes;
  const keys: Float32Array[] = [];
  const values: Float32Array[] = [];
  for (let l = 0; l < layers; l++) {
    const index = view.getUint32(off, true);
    const length = view.getUint32(off + 4, true);
    if (index !== l) throw new KvBlobError('bad_header', `KV blob chunk ${l} is labelled layer ${index}`);
    if (length !== chunkBytes) {
      throw new KvBlobError(
        'bad_header',
        `KV blob layer ${l} chunk is ${length} bytes; the header implies ${chunkBytes}`,
      );
    }
    off += CHUNK_HEADER_BYTES;
    keys.push(readFloats(bytes, view, off, elems, copy));
    off += elems * elemBytes;
    values.push(readFloats(bytes, view, off, elems, copy));
    off += elems * elemBytes;
  }
  return { model, layers, kvHeads, headDim, tokens, keys, values };
}

/** The body CRC the encoder wrote into `bytes` if they are its own output (forgotten as it is used), else computed. */
function ownEncodingCrc(bytes: Uint8Array, body: number, crc32c: Crc32c): number {
  const sealed = ownEncodings.get(bytes);
  if (sealed === undefined) return crc32c(bytes.subarray(0, body));
  ownEncodings.delete(bytes);
  return sealed;
}

function byteLength(modelLen: number, layers: number, elems: number, elemBytes: number): number {
  return FIXED_HEADER_BYTES + align4(modelLen) + layers * (CHUNK_HEADER_BYTES + 2 * elems * elemBytes) + TRAILER_BYTES;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function modelBytes(model: string): Uint8Array {
  const b = utf8.encode(model);
  if (b.length < 1 || b.length > KV_BLOB_MAX_MODEL_BYTES) {
    throw new KvBlobError(
      'bad_header',
      `model id "${model.slice(0, 40)}" is ${b.length} UTF-8 bytes; the KV blob format takes 1..${KV_BLOB_MAX_MODEL_BYTES}`,
    );
  }
  return b;
}

function checkShape(shape: KvBlobShape): void {
  if (typeof shape.model !== 'string') throw new KvBlobError('bad_header', 'KvCache model must be a string');
  for (const field of ['layers', 'kvHeads', 'headDim', 'tokens'] as const) {
    const v = shape[field];
    const min = field === 'tokens' ? 0 : 1;
    if (!Number.isInteger(v) || v < min || v > U32_MAX) {
      throw new KvBlobError(
        'bad_header',
        `KvCache ${field} must be an integer in ${min}..${U32_MAX}, got ${String(v)}`,
      );
    }
  }
}

function writeFloats(out: Uint8Array, view: DataView, off: number, src: Float32Array): void {
  if (LITTLE_ENDIAN) {
    out.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength), off);
    return;
  }
  for (let i = 0; i < src.length; i++) view.setFloat32(off + i * 4, src[i]!, true);
}

function readFloats(bytes: Uint8Array, view: DataView, off: number, count: number, copy: boolean): Float32Array {
  if (LITTLE_ENDIAN) {
    // Every chunk starts 4-byte aligned within the blob, so a blob at an aligned offset can be viewed in place.
    if (!copy && (bytes.byteOffset + off) % 4 === 0)
      return new Float32Array(bytes.buffer, bytes.byteOffset + off, count);
    // slice() copies into a fresh buffer at offset 0, so the floats are aligned whatever the input's offset.
    return new Float32Array(bytes.slice(off, off + count * 4).buffer);
  }
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(off + i * 4, true);
  return out;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ') || '(none)';
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}

/**
 * The checksum that identifies a blob's content: the CRC-32C of its body, as stored in its trailer
 * (read in O(1)). Not the CRC of the whole blob: a CRC over data followed by its own CRC is the same
 * constant for every well-formed blob, so it could not tell one request's blob from another's.
 * decodeKvBlob verifies that the body matches it.
 */
export function kvBlobChecksum(blob: Uint8Array): number {
  if (blob.length < 4)
    throw new KvBlobError('truncated', `KV blob is ${blob.length} bytes, too short to hold its checksum`);
  return new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(blob.length - 4, true);
}
