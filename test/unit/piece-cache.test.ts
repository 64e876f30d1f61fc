import { describe, expect, it } from 'vitest';
import { LruCache } from '../../lib/adapters/tokenizer-pieces';

describe('tokenizer piece cache', () => {
  it('never holds more than its capacity', () => {
    const cache = new LruCache<number>(100);
    for (let i = 0; i < 10_000; i++) cache.set(`k${i}`, i);
    expect(cache.size).toBeLessThanOrEqual(100);
    expect(cache.get('k9999')).toBe(9999);
    expect(cache.get('k0')).toBeUndefined();
  });

  it('keeps an entry that keeps being used while others come and go', () => {
    const cache = new LruCache<number>(10);
    cache.set('hot', 1);
    for (let i = 0; i < 1000; i++) {
      cache.set(`cold${i}`, i);
      expect(cache.get('hot')).toBe(1);
    }
    expect(cache.size).toBeLessThanOrEqual(10);
  });

  it('counts hits and misses, and a set replaces the value', () => {
    const cache = new LruCache<string>(4);
    expect(cache.get('a')).toBeUndefined();
    cache.set('a', 'x');
    cache.set('a', 'y');
    expect(cache.get('a')).toBe('y');
    expect({ hits: cache.hits, misses: cache.misses, size: cache.size }).toEqual({ hits: 1, misses: 1, size: 1 });
  });

  it('refuses a capacity it cannot split into two generations', () => {
    expect(() => new LruCache(1)).toThrow(/capacity/);
  });
});
