import { describe, expect, it } from 'vitest';
import { KvBlobPool, POOLED_MIN_BYTES } from '../../lib/core/handoff/blob-pool';

const SIZE = POOLED_MIN_BYTES * 4 + 12;

describe('KV blob pool', () => {
  it('lends given-back memory again, as a new view of the asked size', () => {
    const pool = new KvBlobPool();
    const first = pool.acquire(SIZE);
    expect(first.byteLength).toBe(SIZE);
    expect(pool.release(first)).toBe(true);
    expect(pool.freeCount).toBe(1);
    const second = pool.acquire(SIZE - 100);
    expect(second.buffer).toBe(first.buffer);
    expect(second).not.toBe(first);
    expect(second.byteLength).toBe(SIZE - 100);
    expect(pool.freeCount).toBe(0);
  });

  it('never lends memory twice at once: a second acquire while the first is out gets other memory', () => {
    const pool = new KvBlobPool();
    const a = pool.acquire(SIZE);
    const b = pool.acquire(SIZE);
    expect(b.buffer).not.toBe(a.buffer);
  });

  it('takes memory back only through the view it was lent as, and only once', () => {
    const pool = new KvBlobPool();
    const first = pool.acquire(SIZE);
    expect(pool.release(new Uint8Array(first.buffer, 0, SIZE))).toBe(false);
    expect(pool.release(first)).toBe(true);
    expect(pool.release(first)).toBe(false);
    expect(pool.freeCount).toBe(1);
    // A holder of the old view cannot give back the memory lent again since.
    const second = pool.acquire(SIZE);
    expect(pool.release(first)).toBe(false);
    expect(pool.freeCount).toBe(0);
    expect(pool.release(second)).toBe(true);
  });

  it('ignores arrays it did not lend, and does not pool small blobs', () => {
    const pool = new KvBlobPool();
    expect(pool.release(new Uint8Array(SIZE))).toBe(false);
    const small = pool.acquire(POOLED_MIN_BYTES - 1);
    expect(small.every((b) => b === 0)).toBe(true);
    expect(pool.release(small)).toBe(false);
    expect(pool.freeCount).toBe(0);
  });

  it('does not tie up a buffer more than twice the size asked for', () => {
    const pool = new KvBlobPool();
    const big = pool.acquire(SIZE * 3);
    pool.release(big);
    expect(pool.acquire(SIZE).buffer).not.toBe(big.buffer);
    expect(pool.freeCount).toBe(1);
  });

  it('keeps at most maxFree buffers and maxFreeBytes free', () => {
    const pool = new KvBlobPool({ maxFree: 2, maxFreeBytes: 1 << 30 });
    const lent = [pool.acquire(SIZE), pool.acquire(SIZE), pool.acquire(SIZE)];
    for (const v of lent) expect(pool.release(v)).toBe(true);
    expect(pool.freeCount).toBe(2);
    const tight = new KvBlobPool({ maxFree: 8, maxFreeBytes: SIZE * 1.5 });
    const two = [tight.acquire(SIZE), tight.acquire(SIZE)];
    for (const v of two) tight.release(v);
    expect(tight.freeCount).toBe(1);
  });

  it('takes nothing back whose memory moved to another thread', () => {
    const pool = new KvBlobPool();
    const view = pool.acquire(SIZE);
    structuredClone(view.buffer, { transfer: [view.buffer as ArrayBuffer] });
    expect(pool.release(view)).toBe(false);
    expect(pool.freeCount).toBe(0);
  });
});
