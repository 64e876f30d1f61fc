import type { KvStore } from '../core/ports';

export interface MemoryKvStoreOptions {
  /** Time source for TTLs, in ms. Default `Date.now`; inject one to test expiry without sleeping. */
  readonly now?: () => number;
}

interface Entry {
  readonly bytes: Uint8Array;
  readonly expiresAt: number;
}

/**
 * In-process KV blob store. Expiry is lazy (checked on read) plus a sweep in `count()`, so no timers
 * keep the process alive. Bytes are copied in and out, as a networked store would, so callers can't
 * alias the stored blob.
 */
export class MemoryKvStore implements KvStore {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(options: MemoryKvStoreOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  put(key: string, bytes: Uint8Array, ttlMs: number): Promise<void> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
      return Promise.reject(new RangeError(`MemoryKvStore.put: ttlMs must be finite and > 0, got ${ttlMs}`));
    }
    this.entries.set(key, { bytes: bytes.slice(), expiresAt: this.now() + ttlMs });
    return Promise.resolve();
  }

  get(key: string): Promise<Uint8Array | null> {
    const entry = this.live(key, this.now());
    return Promise.resolve(entry ? entry.bytes.slice() : null);
  }

  delete(key: string): Promise<void> {
    this.entries.delete(key);
    return Promise.resolve();
  }

  count(): Promise<number> {
    const now = this.now();
    for (const key of [...this.entries.keys()]) this.live(key, now);
    return Promise.resolve(this.entries.size);
  }

  private live(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }
}
