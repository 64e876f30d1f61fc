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

  it('answers as a Map-backed LRU does, through collisions, evictions and table growth', () => {
    // The reference: a Map in recency order (re-set on use), oldest evicted first.
    class Reference {
      private readonly blocks = new Map<number, true>();
      constructor(private readonly capacity: number) {}
      private use(hash: number): void {
        this.blocks.delete(hash);
        this.blocks.set(hash, true);
      }
      lookup(hashes: readonly number[], prompt: number): number {
        let run = 0;
        while (run < hashes.length && this.blocks.has(hashes[run]!)) this.use(hashes[run++]!);
        return Math.min(run * 512, prompt - 1);
      }
      insert(hashes: readonly number[]): void {
        for (const hash of hashes) {
          if (!this.blocks.has(hash) && this.blocks.size === this.capacity) {
            this.blocks.delete(this.blocks.keys().next().value!);
          }
          this.use(hash);
        }
      }
      get size(): number {
        return this.blocks.size;
      }
    }
    // A fixed linear congruential sequence: hashes from a small pool (many repeats), some beyond 2^32,
    // negative, or 2^53 - 1, so probes collide and evictions shift entries back.
    let seed = 12345;
    const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    const special = [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 32, 2 ** 32 + 1, -1, 0];
    const hash = (): number => {
      const r = next() % 100;
      if (r < 3) return special[next() % special.length]!;
      if (r < 10) return (next() % 50) * 2 ** 32 + (next() % 7);
      return next() % 3000;
    };
    for (const capacity of [1, 7, 600, 5000]) {
      const cache = new PrefixCache(capacity);
      const reference = new Reference(capacity);
      for (let step = 0; step < 4000; step++) {
        const hashes = Array.from({ length: 1 + (next() % 12) }, hash);
        if (next() % 2 === 0) {
          const prompt = 1 + (next() % 8000);
          expect(cache.lookup(hashes, prompt)).toBe(reference.lookup(hashes, prompt));
        } else {
          cache.insert(hashes);
          reference.insert(hashes);
        }
        expect(cache.size).toBe(reference.size);
      }
    }
  });

  it('grows past its first table and arrays, keeping every block, then evicts the oldest', () => {
    const capacity = 70_000;
    const cache = new PrefixCache(capacity);
    // Hashes spread over the whole safe range, so probes start all over the table.
    const hashOf = (k: number): number => (k * 2_654_435_761) % Number.MAX_SAFE_INTEGER;
    for (let k = 0; k < 100_000; k += 100) cache.insert(Array.from({ length: 100 }, (_, j) => hashOf(k + j)));
    expect(cache.size).toBe(capacity);
    for (let k = 0; k < 100_000; k += 997) {
      expect(cache.lookup([hashOf(k)], 1e6)).toBe(k < 100_000 - capacity ? 0 : 512);
    }
  });
});
