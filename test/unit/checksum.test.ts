import { describe, expect, it } from 'vitest';
import { crc32c } from '../../lib/core/handoff/checksum';
import { mulberry32, randomBytesFrom } from '../../lib/core/random';

/** Bit-at-a-time CRC-32C straight from the definition, to check the table-driven version against. */
function referenceCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

describe('crc32c', () => {
  it('gives the CRC-32C check value 0xE3069283 for "123456789"', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('gives 0 for empty input', () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('matches the RFC 3720 (iSCSI) test vectors', () => {
    const asc = Uint8Array.from({ length: 32 }, (_, i) => i);
    const desc = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(asc)).toBe(0x46dd794e);
    expect(crc32c(desc)).toBe(0x113fdb5c);
  });

  it('agrees with a bit-at-a-time reference for every length 0..100 and unaligned views', () => {
    const rng = mulberry32(7);
    const backing = randomBytesFrom(rng, 200);
    for (let len = 0; len <= 100; len++) {
      for (const start of [0, 1, 3, 5]) {
        const view = backing.subarray(start, start + len);
        expect(crc32c(view), `len ${len} start ${start}`).toBe(referenceCrc32c(view));
      }
    }
  });

  it('continues over split input when given the previous result as seed', () => {
    const rng = mulberry32(11);
    for (let trial = 0; trial < 50; trial++) {
      const whole = randomBytesFrom(rng, Math.floor(rng() * 300));
      const cut = Math.floor(rng() * (whole.length + 1));
      const first = crc32c(whole.subarray(0, cut));
      expect(crc32c(whole.subarray(cut), first)).toBe(crc32c(whole));
    }
  });

  it('always returns an unsigned 32-bit integer', () => {
    const rng = mulberry32(3);
    for (let trial = 0; trial < 100; trial++) {
      const c = crc32c(randomBytesFrom(rng, 1 + Math.floor(rng() * 40)));
      expect(Number.isInteger(c) && c >= 0 && c <= 0xffffffff).toBe(true);
    }
  });

  it('detects every single-bit flip in a 1 KiB block', () => {
    const data = randomBytesFrom(mulberry32(5), 1024);
    const good = crc32c(data);
    for (let bit = 0; bit < data.length * 8; bit++) {
      data[bit >> 3]! ^= 1 << (bit & 7);
      expect(crc32c(data)).not.toBe(good);
      data[bit >> 3]! ^= 1 << (bit & 7);
    }
  });
});
