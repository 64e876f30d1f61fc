/**
 * Reusable memory for KV blobs. A 1,000-token blob is about 1 MB, written once by prefill and read once by
 * decode; a fresh allocation per request costs a zero fill and a page fault per 4 KiB page on first touch,
 * more than the copy of the floats into it. Buffers given back when their blob is done are lent again.
 *
 * Safety is by identity: a buffer is lent as one Uint8Array view, and only that very view gives it back,
 * once. A holder of an older view of the same memory (a blob whose buffer was given back and lent again)
 * gives nothing back. Lent buffers are tracked weakly, so a blob never given back is simply collected.
 * One pool per thread (module state); a blob that crossed from another thread is not this pool's.
 */

/** Blobs smaller than this are allocated as usual: a small allocation has no page faults to save. */
export const POOLED_MIN_BYTES = 64 * 1024;
/** Capacities are whole multiples of this, so blobs of nearby sizes share buffers. */
const CAPACITY_STEP = 64 * 1024;

export interface KvBlobPoolLimits {
  /** Free buffers kept at most. */
  readonly maxFree: number;
  /** Free bytes kept at most. */
  readonly maxFreeBytes: number;
}

const DEFAULT_LIMITS: KvBlobPoolLimits = { maxFree: 8, maxFreeBytes: 64 * 1024 * 1024 };

export class KvBlobPool {
  private readonly free: ArrayBuffer[] = [];
  private freeBytes = 0;
  /** The view each lent buffer went out as. */
  private readonly lent = new WeakMap<ArrayBuffer, Uint8Array>();
  private readonly limits: KvBlobPoolLimits;

  constructor(limits: Partial<KvBlobPoolLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /**
   * `byteLength` bytes to write a blob into, their content unspecified (a reused buffer holds an older blob):
   * the writer sets every byte. Below POOLED_MIN_BYTES, a fresh zeroed array the pool does not track.
   */
  acquire(byteLength: number): Uint8Array {
    if (byteLength < POOLED_MIN_BYTES) return new Uint8Array(byteLength);
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const cap = this.free[i]!.byteLength;
      // At most twice the need: a huge buffer is not tied up by a small blob.
      if (cap >= byteLength && cap <= 2 * byteLength && (best === -1 || cap < this.free[best]!.byteLength)) best = i;
    }
    let buffer: ArrayBuffer;
    if (best === -1) {
      buffer = new ArrayBuffer(Math.ceil(byteLength / CAPACITY_STEP) * CAPACITY_STEP);
    } else {
      buffer = this.free[best]!;
      this.free.splice(best, 1);
      this.freeBytes -= buffer.byteLength;
    }
    const view = new Uint8Array(buffer, 0, byteLength);
    this.lent.set(buffer, view);
    return view;
  }

  /**
   * Gives back the memory of `view`, a blob that nothing reads or writes any more. True when it was this
   * pool's current loan of that memory; false (and nothing happens) for any other array.
   */
  release(view: Uint8Array): boolean {
    const buffer = view.buffer;
    if (!(buffer instanceof ArrayBuffer) || this.lent.get(buffer) !== view) return false;
    this.lent.delete(buffer);
    // Moved to another thread since (detached): it is not this thread's memory any more.
    if (buffer.byteLength === 0) return false;
    if (this.free.length < this.limits.maxFree && this.freeBytes + buffer.byteLength <= this.limits.maxFreeBytes) {
      this.free.push(buffer);
      this.freeBytes += buffer.byteLength;
    }
    return true;
  }

  /** Free buffers held, for tests. */
  get freeCount(): number {
    return this.free.length;
  }
}

/** This thread's pool: prefill writes its blobs into it, decode gives them back when their session ends. */
export const kvBlobPool = new KvBlobPool();
