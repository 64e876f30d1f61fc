import { describe, expect, it } from 'vitest';
import type { KvCache } from '../../lib/core/ports';
import { crc32c } from '../../lib/core/handoff/checksum';
import {
  KV_BLOB_DEFAULT_MAX_BYTES,
  KV_BLOB_MAGIC,
  KV_BLOB_VERSION,
  KV_DTYPE,
  KvBlobError,
  decodeKvBlob,
  encodeKvBlob,
  kvBlobByteLength,
  kvBlobChecksum,
} from '../../lib/core/handoff/kv-blob';
import type { KvBlobErrorCode } from '../../lib/core/handoff/kv-blob';
import { mulberry32 } from '../../lib/core/random';
import { KvBlobPool, POOLED_MIN_BYTES } from '../../lib/core/handoff/blob-pool';

const CODES: readonly KvBlobErrorCode[] = [
  'truncated',
  'bad_magic',
  'version_mismatch',
  'checksum_mismatch',
  'bad_header',
  'too_large',
];

function randInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** Floats with the awkward values in the mix (NaN, ±0, ±Infinity, subnormals) so "exact" means bit-exact. */
function randomFloats(rng: () => number, n: number): Float32Array {
  const specials = [NaN, -0, 0, Infinity, -Infinity, 1e-45, -3.4e38];
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++)
    a[i] = rng() < 0.05 ? specials[randInt(rng, 0, specials.length - 1)]! : (rng() - 0.5) * 1e4;
  return a;
}

function makeKv(
  rng: () => number,
  shape: { model?: string; layers: number; kvHeads: number; headDim: number; tokens: number },
): KvCache {
  const n = shape.tokens * shape.kvHeads * shape.headDim;
  const keys = Array.from({ length: shape.layers }, () => randomFloats(rng, n));
  const values = Array.from({ length: shape.layers }, () => randomFloats(rng, n));
  return { model: shape.model ?? 'ref-tiny-v1', ...shape, keys, values };
}

function randomKv(rng: () => number): KvCache {
  return makeKv(rng, {
    model: ['m', 'ref-tiny-v1', 'llama-3.1-8b', 'modèle-✓-模型'][randInt(rng, 0, 3)]!,
    layers: randInt(rng, 1, 6),
    kvHeads: randInt(rng, 1, 4),
    headDim: randInt(rng, 1, 16),
    tokens: randInt(rng, 0, 20),
  });
}

function bits(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Index of the first differing byte, or -1; a plain loop, as toEqual on MB-sized typed arrays is slow. */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function expectSameKv(actual: KvCache, expected: KvCache): void {
  expect({ ...actual, keys: undefined, values: undefined }).toEqual({
    ...expected,
    keys: undefined,
    values: undefined,
  });
  expect(actual.keys.length).toBe(expected.layers);
  expect(actual.values.length).toBe(expected.layers);
  for (let l = 0; l < expected.layers; l++) {
    expect(actual.keys[l]).toBeInstanceOf(Float32Array);
    expect(firstDiff(bits(actual.keys[l]!), bits(expected.keys[l]!)), `keys[${l}]`).toBe(-1);
    expect(firstDiff(bits(actual.values[l]!), bits(expected.values[l]!)), `values[${l}]`).toBe(-1);
  }
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw, but it returned');
}

function expectKvError(fn: () => unknown, code: KvBlobErrorCode): KvBlobError {
  const err = catchError(fn);
  expect(err).toBeInstanceOf(KvBlobError);
  expect((err as KvBlobError).code, (err as Error).message).toBe(code);
  return err as KvBlobError;
}

function fixHeaderCrc(b: Uint8Array): Uint8Array {
  new DataView(b.buffer, b.byteOffset).setUint32(28, crc32c(b.subarray(0, 28)), true);
  return b;
}

function fixTrailerCrc(b: Uint8Array): Uint8Array {
  new DataView(b.buffer, b.byteOffset).setUint32(b.length - 4, crc32c(b.subarray(0, b.length - 4)), true);
  return b;
}

/** A bare 32-byte header (no body) with the given fields and a valid header CRC. */
function header(fields: { layers: number; kvHeads: number; headDim: number; tokens: number; modelLen?: number }) {
  const b = new Uint8Array(64);
  const v = new DataView(b.buffer);
  b.set(new TextEncoder().encode(KV_BLOB_MAGIC), 0);
  v.setUint16(4, KV_BLOB_VERSION, true);
  v.setUint16(6, KV_DTYPE.float32, true);
  v.setUint32(8, fields.layers, true);
  v.setUint32(12, fields.kvHeads, true);
  v.setUint32(16, fields.headDim, true);
  v.setUint32(20, fields.tokens, true);
  v.setUint16(24, fields.modelLen ?? 1, true);
  b[32] = 0x6d; // "m"
  return fixHeaderCrc(b);
}

const small = makeKv(mulberry32(42), { layers: 2, kvHeads: 2, headDim: 3, tokens: 4 });

describe('KV blob round trip', () => {
  it('decodes to the same shape and bit-identical floats for random shapes', () => {
    const rng = mulberry32(1);
    for (let trial = 0; trial < 60; trial++) {
      const kv = randomKv(rng);
      expectSameKv(decodeKvBlob(encodeKvBlob(kv)), kv);
    }
  });

  it('encodes exactly kvBlobByteLength(shape) bytes', () => {
    const rng = mulberry32(2);
    for (let trial = 0; trial < 60; trial++) {
      const kv = randomKv(rng);
      expect(encodeKvBlob(kv).length).toBe(kvBlobByteLength(kv));
    }
  });

  it('computes the documented size: 32-byte header, padded model id, 8-byte chunk headers, 4-byte CRC', () => {
    // 32 + pad4(1) + 2 layers × (8 + 2 × 3 tokens × 1 head × 2 dims × 4 bytes) + 4
    expect(kvBlobByteLength({ model: 'm', layers: 2, kvHeads: 1, headDim: 2, tokens: 3 })).toBe(152);
  });

  it('round-trips a model id of exactly 256 UTF-8 bytes, multi-byte characters and zero tokens', () => {
    const rng = mulberry32(3);
    for (const model of ['x'.repeat(256), 'é'.repeat(128), '模型', '🦙']) {
      const kv = makeKv(rng, { model, layers: 1, kvHeads: 1, headDim: 4, tokens: 2 });
      expectSameKv(decodeKvBlob(encodeKvBlob(kv)), kv);
    }
    const empty = makeKv(rng, { layers: 3, kvHeads: 2, headDim: 8, tokens: 0 });
    expectSameKv(decodeKvBlob(encodeKvBlob(empty)), empty);
  });

  it('decodes from a view at an odd byte offset into a larger buffer', () => {
    const blob = encodeKvBlob(small);
    const backing = new Uint8Array(blob.length + 10);
    backing.set(blob, 3);
    expectSameKv(decodeKvBlob(backing.subarray(3, 3 + blob.length)), small);
  });

  it('returns arrays that do not alias the input bytes', () => {
    const blob = encodeKvBlob(small);
    const kv = decodeKvBlob(blob);
    const before = kv.keys[0]![0];
    blob.fill(0);
    expect(kv.keys[0]![0]).toBe(before);
  });

  it('lays out magic, version, then one chunk per layer: index, length, keys then values as little-endian float32', () => {
    const blob = encodeKvBlob(small);
    const view = new DataView(blob.buffer);
    expect(new TextDecoder().decode(blob.subarray(0, 4))).toBe(KV_BLOB_MAGIC);
    expect(view.getUint16(4, true)).toBe(KV_BLOB_VERSION);
    expect(view.getUint16(6, true)).toBe(KV_DTYPE.float32);
    expect([8, 12, 16, 20].map((o) => view.getUint32(o, true))).toEqual([2, 2, 3, 4]);
    const elems = 4 * 2 * 3;
    let off = 32 + 12; // "ref-tiny-v1" is 11 bytes, padded to 12
    for (let l = 0; l < 2; l++) {
      expect(view.getUint32(off, true)).toBe(l);
      expect(view.getUint32(off + 4, true)).toBe(2 * elems * 4);
      off += 8;
      for (let i = 0; i < elems; i++)
        expect(Object.is(view.getFloat32(off + 4 * i, true), small.keys[l]![i])).toBe(true);
      off += elems * 4;
      for (let i = 0; i < elems; i++) {
        expect(Object.is(view.getFloat32(off + 4 * i, true), small.values[l]![i])).toBe(true);
      }
      off += elems * 4;
    }
    expect(view.getUint32(off, true)).toBe(crc32c(blob.subarray(0, off)));
    expect(off + 4).toBe(blob.length);
  });

  it('round-trips a 16 MiB blob exactly (speed is measured by npm run bench)', () => {
    const n = 512 * 8 * 64;
    const layer = (l: number, sign: number) =>
      Float32Array.from({ length: n }, (_, i) => sign * Math.fround(i / (l + 1)));
    const keys = Array.from({ length: 8 }, (_, l) => layer(l, 1));
    const values = Array.from({ length: 8 }, (_, l) => layer(l, -1));
    const kv: KvCache = { model: 'ref-tiny-v1', layers: 8, kvHeads: 8, headDim: 64, tokens: 512, keys, values };
    const blob = encodeKvBlob(kv);
    const out = decodeKvBlob(blob);
    expectSameKv(out, kv);
  });
});

describe('KV blob encoder', () => {
  it('rejects a model id over 256 UTF-8 bytes or empty', () => {
    const rng = mulberry32(5);
    const err = expectKvError(
      () => encodeKvBlob(makeKv(rng, { model: 'é'.repeat(129), layers: 1, kvHeads: 1, headDim: 1, tokens: 1 })),
      'bad_header',
    );
    expect(err.message).toContain('258 UTF-8 bytes');
    expectKvError(() => encodeKvBlob({ ...small, model: '' }), 'bad_header');
  });

  it('rejects arrays whose length does not match tokens × kvHeads × headDim', () => {
    const keys = [...small.keys];
    keys[1] = new Float32Array(5);
    const err = expectKvError(() => encodeKvBlob({ ...small, keys }), 'bad_header');
    expect(err.message).toContain('layer 1');
  });

  it('rejects a layer count that does not match the arrays', () => {
    expectKvError(() => encodeKvBlob({ ...small, layers: 3 }), 'bad_header');
  });

  it('rejects non-integer, negative or zero dimensions', () => {
    for (const patch of [{ tokens: 1.5 }, { tokens: -1 }, { kvHeads: 0 }, { headDim: NaN }, { layers: 2 ** 32 }]) {
      const err = expectKvError(() => encodeKvBlob({ ...small, ...patch }), 'bad_header');
      expect(err.message).toContain(Object.keys(patch)[0]);
      expectKvError(() => kvBlobByteLength({ ...small, ...patch }), 'bad_header');
    }
  });
});

describe('KV blob decoder errors', () => {
  const blob = encodeKvBlob(small);

  it('reports checksum_mismatch for any single corrupted byte after the version field', () => {
    const rng = mulberry32(6);
    for (let i = 6; i < blob.length; i++) {
      const bad = blob.slice();
      bad[i]! ^= randInt(rng, 1, 255);
      expectKvError(() => decodeKvBlob(bad), 'checksum_mismatch');
    }
  });

  it('reports truncated for every proper prefix', () => {
    for (let len = 0; len < blob.length; len++) {
      const err = expectKvError(() => decodeKvBlob(blob.subarray(0, len)), 'truncated');
      expect(err.message).toMatch(/truncated/);
    }
  });

  it('reports bad_header for trailing bytes after the declared size', () => {
    const longer = new Uint8Array(blob.length + 4);
    longer.set(blob);
    expect(expectKvError(() => decodeKvBlob(longer), 'bad_header').message).toContain('4 trailing bytes');
  });

  it('reports version_mismatch naming both versions for a blob from another format version', () => {
    const v3 = blob.slice();
    new DataView(v3.buffer).setUint16(4, 3, true);
    const err = expectKvError(() => decodeKvBlob(v3), 'version_mismatch');
    expect(err.message).toContain('version 3 is not supported');
    expect(err.message).toContain(`reads version ${KV_BLOB_VERSION}`);
  });

  it('reports bad_magic for input that is not a KV blob', () => {
    for (const text of ['DKV2', '{"v":1}', '\x89PNG\r\n\x1a\n', 'dkv1xxxxxxxxx']) {
      expectKvError(() => decodeKvBlob(new TextEncoder().encode(text)), 'bad_magic');
    }
    const err = expectKvError(() => decodeKvBlob(new Uint8Array([1, 2, 3, 4, 5])), 'bad_magic');
    expect(err.message).toContain('DKV1');
  });

  it('reports too_large when the input exceeds limits.maxBytes, naming the limit', () => {
    const err = expectKvError(() => decodeKvBlob(blob, { maxBytes: blob.length - 1 }), 'too_large');
    expect(err.message).toContain(String(blob.length - 1));
    expectSameKv(decodeKvBlob(blob, { maxBytes: blob.length }), small);
  });

  it('reports too_large for a header declaring more than maxBytes, without allocating it', () => {
    const huge = header({ layers: 0xffffffff, kvHeads: 0xffffffff, headDim: 0xffffffff, tokens: 0xffffffff });
    const err = expectKvError(() => decodeKvBlob(huge), 'too_large');
    expect(err.message).toContain(String(KV_BLOB_DEFAULT_MAX_BYTES));
    expectKvError(() => decodeKvBlob(header({ layers: 64, kvHeads: 8, headDim: 128, tokens: 4096 })), 'too_large');
  });

  it('reports truncated for a 64-byte input whose header declares 256 MiB, without allocating it', () => {
    const claim = header({ layers: 32, kvHeads: 8, headDim: 128, tokens: 8192 }); // 2 × 32 × 8192 × 8 × 128 × 4 ≈ 2 GiB
    const fits = header({ layers: 16, kvHeads: 8, headDim: 128, tokens: 2048 }); // ≈ 256 MiB, under the default limit
    expectKvError(() => decodeKvBlob(claim, { maxBytes: Infinity }), 'truncated');
    const before = process.memoryUsage().arrayBuffers;
    expectKvError(() => decodeKvBlob(fits), 'truncated');
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
  });

  it('reports bad_header for an unsupported or unknown dtype, naming it', () => {
    const fp16 = blob.slice();
    new DataView(fp16.buffer).setUint16(6, KV_DTYPE.float16, true);
    expect(expectKvError(() => decodeKvBlob(fixHeaderCrc(fp16)), 'bad_header').message).toContain('float16');
    const unknown = blob.slice();
    new DataView(unknown.buffer).setUint16(6, 99, true);
    expect(expectKvError(() => decodeKvBlob(fixHeaderCrc(unknown)), 'bad_header').message).toContain('99');
  });

  it('reports bad_header for zero dimensions, a bad model id length or a non-zero reserved field', () => {
    expectKvError(() => decodeKvBlob(header({ layers: 0, kvHeads: 1, headDim: 1, tokens: 1 })), 'bad_header');
    expectKvError(() => decodeKvBlob(header({ layers: 1, kvHeads: 0, headDim: 1, tokens: 1 })), 'bad_header');
    expectKvError(
      () => decodeKvBlob(header({ layers: 1, kvHeads: 1, headDim: 1, tokens: 1, modelLen: 0 })),
      'bad_header',
    );
    const longName = header({ layers: 1, kvHeads: 1, headDim: 1, tokens: 1, modelLen: 257 });
    expect(expectKvError(() => decodeKvBlob(longName), 'bad_header').message).toContain('257');
    const reserved = blob.slice();
    reserved[26] = 1;
    expectKvError(() => decodeKvBlob(fixHeaderCrc(reserved)), 'bad_header');
  });

  it('reports bad_header for a mislabelled or mis-sized layer chunk even when both checksums are valid', () => {
    const chunk0 = 32 + 12;
    const relabelled = blob.slice();
    new DataView(relabelled.buffer).setUint32(chunk0, 1, true);
    expect(expectKvError(() => decodeKvBlob(fixTrailerCrc(relabelled)), 'bad_header').message).toContain('layer 1');
    const resized = blob.slice();
    new DataView(resized.buffer).setUint32(chunk0 + 4, 8, true);
    expectKvError(() => decodeKvBlob(fixTrailerCrc(resized)), 'bad_header');
  });

  it('reports bad_header for a model id that is not UTF-8 or has non-zero padding, even with valid checksums', () => {
    const notUtf8 = blob.slice();
    notUtf8[32] = 0xff;
    expect(expectKvError(() => decodeKvBlob(fixTrailerCrc(notUtf8)), 'bad_header').message).toContain('UTF-8');
    const padded = blob.slice();
    padded[32 + 11] = 7; // the pad byte after the 11-byte model id
    expectKvError(() => decodeKvBlob(fixTrailerCrc(padded)), 'bad_header');
  });

  it('throws KvBlobError, not TypeError, for values that are not a Uint8Array', () => {
    for (const v of [null, undefined, 'DKV1', [68, 75, 86, 49], new ArrayBuffer(8), {}]) {
      expectKvError(() => decodeKvBlob(v as unknown as Uint8Array), 'bad_header');
    }
    expectKvError(() => decodeKvBlob(blob, { maxBytes: NaN }), 'too_large');
  });
});

describe('KV blob decoder under fuzzing', () => {
  function mutate(rng: () => number, src: Uint8Array): Uint8Array {
    let b = src.slice();
    const ops = randInt(rng, 1, 4);
    for (let k = 0; k < ops; k++) {
      const op = randInt(rng, 0, 6);
      if (op === 0 && b.length > 0) b[randInt(rng, 0, b.length - 1)] = randInt(rng, 0, 255);
      else if (op === 1) b = b.slice(0, randInt(rng, 0, b.length));
      else if (op === 2) {
        const extra = new Uint8Array(b.length + randInt(rng, 1, 64));
        extra.set(b);
        b = extra;
      } else if (op === 3 && b.length >= 32) {
        // Rewrite a header field with an extreme value and re-sign the header, to get past the header CRC.
        const at = [6, 8, 12, 16, 20, 24, 26][randInt(rng, 0, 6)]!;
        const value = [0, 1, 2, 255, 256, 65535, 0xffffffff][randInt(rng, 0, 6)]!;
        const v = new DataView(b.buffer);
        if (at === 6 || at >= 24) v.setUint16(at, value & 0xffff, true);
        else v.setUint32(at, value, true);
        fixHeaderCrc(b);
      } else if (op === 4 && b.length >= 36) {
        b[randInt(rng, 32, b.length - 5)] = randInt(rng, 0, 255);
        fixTrailerCrc(b); // past the body CRC, into the chunk and model-id checks
      } else if (op === 5 && b.length >= 6) {
        new DataView(b.buffer).setUint16(4, randInt(rng, 0, 3), true);
      } else if (op === 6 && b.length >= 8) {
        b[randInt(rng, 0, 3)] = randInt(rng, 0, 255);
      }
    }
    return b;
  }

  it('throws only KvBlobError with a known code and a message, for 4000 random and mutated inputs', () => {
    const rng = mulberry32(20250101);
    const seeds = Array.from({ length: 8 }, () => encodeKvBlob(randomKv(rng)));
    let decoded = 0;
    let rejected = 0;
    for (let i = 0; i < 4000; i++) {
      let input: Uint8Array;
      if (i % 4 === 0) {
        input = new Uint8Array(randInt(rng, 0, 96)).map(() => randInt(rng, 0, 255));
        if (rng() < 0.5 && input.length >= 4) input.set([0x44, 0x4b, 0x56, 0x31], 0);
      } else {
        input = mutate(rng, seeds[randInt(rng, 0, seeds.length - 1)]!);
      }
      try {
        const kv = decodeKvBlob(input, { maxBytes: 1 << 20 });
        decoded++;
        expect(kv.keys.length).toBe(kv.layers);
      } catch (err) {
        rejected++;
        expect(err).toBeInstanceOf(KvBlobError);
        expect(CODES).toContain((err as KvBlobError).code);
        expect((err as Error).message.length).toBeGreaterThan(10);
      }
    }
    expect(rejected).toBeGreaterThan(3000);
    expect(decoded + rejected).toBe(4000);
  });
});

describe('kvBlobChecksum', () => {
  const blobOf = (tokens: number, salt: number): Uint8Array => {
    const f = () => Float32Array.from({ length: tokens * 2 * 8 }, (_, i) => Math.fround(Math.sin(i + salt)));
    return encodeKvBlob({
      model: 'm',
      layers: 3,
      kvHeads: 2,
      headDim: 8,
      tokens,
      keys: [f(), f(), f()],
      values: [f(), f(), f()],
    });
  };

  it('is the CRC-32C of the body before the trailer, so it tells different blobs apart', () => {
    const a = blobOf(37, 1);
    const b = blobOf(37, 2);
    expect(kvBlobChecksum(a)).toBe(crc32c(a.subarray(0, a.length - 4)));
    expect(kvBlobChecksum(a)).not.toBe(kvBlobChecksum(b));
    // The CRC of a whole blob, trailer included, is one constant for every valid blob: useless as an identity.
    expect(crc32c(a)).toBe(crc32c(b));
  });

  it('rejects a blob too short to hold one', () => {
    expect(() => kvBlobChecksum(new Uint8Array(3))).toThrow(KvBlobError);
  });
});

describe('KV blob in pooled memory', () => {
  // Over POOLED_MIN_BYTES, so the pool lends it; a model id of 5 bytes leaves 3 bytes of padding.
  const shape = { model: 'model', layers: 2, kvHeads: 2, headDim: 16, tokens: 300 };

  it('encodes the same bytes into memory that held another blob as into fresh memory', () => {
    const rng = mulberry32(11);
    const pool = new KvBlobPool();
    const dirty = pool.acquire(kvBlobByteLength(shape));
    expect(dirty.byteLength).toBeGreaterThanOrEqual(POOLED_MIN_BYTES);
    dirty.fill(0xa5);
    pool.release(dirty);
    const kv = makeKv(rng, shape);
    const pooled = encodeKvBlob(kv, { pool });
    expect(pooled.buffer).toBe(dirty.buffer);
    expect(pooled).toEqual(encodeKvBlob(kv));
    expect(decodeKvBlob(pooled).keys[1]).toEqual(kv.keys[1]);
  });
});

describe('KV blob decode of its own encoding (trustOwnEncoding)', () => {
  const rng = mulberry32(5);
  const kv = makeKv(rng, { layers: 3, kvHeads: 2, headDim: 8, tokens: 40 });
  const counting = (): { crc: (b: Uint8Array, seed?: number) => number; bytes: () => number } => {
    let bytes = 0;
    return {
      crc: (b, seed) => {
        bytes += b.length;
        return crc32c(b, seed);
      },
      bytes: () => bytes,
    };
  };

  it('takes the body checksum the encoder wrote for the very array it returned, once', () => {
    const blob = encodeKvBlob(kv);
    const first = counting();
    expect(decodeKvBlob(blob, { crc32c: first.crc, trustOwnEncoding: true }).values[2]).toEqual(kv.values[2]);
    // Only the 28-byte header is checksummed, not the body.
    expect(first.bytes()).toBe(28);
    const again = counting();
    decodeKvBlob(blob, { crc32c: again.crc, trustOwnEncoding: true });
    expect(again.bytes()).toBe(28 + blob.length - 4);
  });

  it('verifies in full any other array: a copy, a corrupted copy, or without the option', () => {
    const blob = encodeKvBlob(kv);
    const copy = counting();
    decodeKvBlob(blob.slice(), { crc32c: copy.crc, trustOwnEncoding: true });
    expect(copy.bytes()).toBe(28 + blob.length - 4);
    const corrupt = blob.slice();
    corrupt[corrupt.length >> 1]! ^= 0x10;
    expect(() => decodeKvBlob(corrupt, { trustOwnEncoding: true })).toThrow(/checksum mismatch/);
    const plain = counting();
    decodeKvBlob(blob, { crc32c: plain.crc });
    expect(plain.bytes()).toBe(28 + blob.length - 4);
  });

  it('still refuses its own array when the stored checksum no longer matches the one the encoder wrote', () => {
    const blob = encodeKvBlob(kv);
    blob[blob.length - 1]! ^= 0x01;
    expect(() => decodeKvBlob(blob, { trustOwnEncoding: true })).toThrow(/checksum mismatch/);
  });
});
