/**
 * The native CRC-32C adapter computes exactly what the JavaScript reference does (the reference is the
 * definition), and the KV blob codec uses whichever implementation it is given.
 */
import { describe, expect, it } from 'vitest';
import { fastestCrc32c, nativeCrc32c } from '../../lib/adapters/checksum-native';
import { crc32c } from '../../lib/core/handoff/checksum';
import { decodeKvBlob, encodeKvBlob, KvBlobError } from '../../lib/core/handoff/kv-blob';
import type { KvCache } from '../../lib/core/ports';
import { mulberry32, randomBytesFrom } from '../../lib/core/random';

const native = nativeCrc32c();

function kvOf(tokens: number): KvCache {
  const n = tokens * 2 * 4;
  const layer = (seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => (i * seed) % 97);
  return {
    model: 'ref',
    layers: 2,
    kvHeads: 2,
    headDim: 4,
    tokens,
    keys: [layer(3), layer(5)],
    values: [layer(7), layer(11)],
  };
}

describe('native CRC-32C', () => {
  it('loads on this platform from the prebuilt binary the registry ships', () => {
    // x64 and arm64 Linux get a binary through @node-rs/crc32's optional dependencies.
    expect(native).not.toBeNull();
    // A source run has no bundle folder beside the adapter: the binary is the package's.
    expect(fastestCrc32c()).toMatchObject({ name: 'native', from: 'package' });
  });

  it('equals the JavaScript reference on random bytes at every length and offset', () => {
    const rng = mulberry32(15);
    const whole = randomBytesFrom(rng, 4096);
    for (let trial = 0; trial < 300; trial++) {
      const start = Math.floor(rng() * 64);
      const len = Math.floor(rng() * (trial < 100 ? 40 : 4000));
      const view = whole.subarray(start, start + len);
      expect(native!(view), `len ${len} start ${start}`).toBe(crc32c(view));
    }
    expect(native!(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('continues from a seed as the reference does, so pieces checksum like the whole', () => {
    const whole = randomBytesFrom(mulberry32(7), 10_000);
    for (const cut of [0, 1, 7, 4096, 9999, 10_000]) {
      const first = native!(whole.subarray(0, cut));
      expect(native!(whole.subarray(cut), first)).toBe(crc32c(whole));
    }
  });
});

describe('KV blob codec with an injected checksum', () => {
  it('writes and verifies with the implementation it is given, and both read each other', () => {
    let calls = 0;
    const counting = (bytes: Uint8Array, seed?: number): number => (calls++, native!(bytes, seed));
    const kv = kvOf(5);
    const blob = encodeKvBlob(kv, { crc32c: counting });
    expect(calls).toBe(2); // header and body
    expect(blob).toEqual(encodeKvBlob(kv));
    expect(decodeKvBlob(blob, { crc32c: counting }).keys[1]).toEqual(kv.keys[1]);
    expect(calls).toBe(4);
  });

  it('still rejects a corrupt body through the injected checksum', () => {
    const blob = encodeKvBlob(kvOf(5));
    blob[blob.length - 20]! ^= 1;
    expect(() => decodeKvBlob(blob, { crc32c: native! })).toThrow(KvBlobError);
  });

  it('views the bytes it is handed (copy: false) where aligned, and copies where not', () => {
    const kv = kvOf(3);
    const blob = encodeKvBlob(kv);
    const viewed = decodeKvBlob(blob, { copy: false });
    expect(viewed.keys[0]!.buffer).toBe(blob.buffer);
    expect(viewed.values[1]).toEqual(kv.values[1]);
    const copied = decodeKvBlob(blob);
    expect(copied.keys[0]!.buffer).not.toBe(blob.buffer);

    const backing = new Uint8Array(blob.length + 1);
    backing.set(blob, 1);
    const unaligned = decodeKvBlob(backing.subarray(1), { copy: false });
    expect(unaligned.keys[0]!.buffer).not.toBe(backing.buffer);
    expect(unaligned.keys[1]).toEqual(kv.keys[1]);
  });
});
