import { describe, expect, it } from 'vitest';
import { PrefixCache } from '../../lib/core/sim';

describe('prefix cache', () => {
  it('hits the longest run of leading blocks present, 512 tokens each', () => {
    const cache = new PrefixCache(100);
    cache.insert([1, 2, 3]);
    expect(cache.lookup([1, 2, 9, 3], 4 * 512)).toBe(1024);
    expect(cache.lookup([9, 1, 2], 3 * 512)).toBe(0);
    // The last prompt token is always computed.
    expect(cache.lookup([1, 2, 3], 1500)).toBe(1499);
  });

  it('evicts the least recently used block, where a lookup counts as a use', () => {
    const cache = new PrefixCache(3);
    cache.insert([1, 2, 3]);
    expect(cache.lookup([1], 10_000)).toBe(512); // 1 is now the most recent
    cache.insert([4]); // evicts 2
    expect(cache.size).toBe(3);
    expect(cache.lookup([2], 10_000)).toBe(0);
    expect(cache.lookup([1], 10_000)).toBe(512);
    expect(cache.lookup([3], 10_000)).toBe(512);
    expect(cache.lookup([4], 10_000)).toBe(512);
  });

  it('holds nothing with no capacity', () => {
    const cache = new PrefixCache(0);
    cache.insert([1, 2]);
    expect(cache.lookup([1, 2], 2048)).toBe(0);
  });

  it('keeps exactly the most recent blocks through many evictions', () => {
    const cache = new PrefixCache(1000);
    for (let k = 0; k < 50; k++) cache.insert(Array.from({ length: 100 }, (_, i) => k * 100 + i));
    expect(cache.size).toBe(1000);
    expect(cache.lookup([3999], 1e6)).toBe(0);
    expect(cache.lookup([4000, 4001], 1e6)).toBe(1024);
  });
});
