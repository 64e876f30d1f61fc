import type { KvStore } from '../core/ports';

export interface MemoryKvStoreOptions {
  /** Time source for TTLs, in ms. Default `Date.now`; inject one to test expiry without sleeping. */
  readonly now?: () => number;
  /**
   * 'copy' (default): bytes are copied in and out, as a networked store would. 'handover': `put` keeps
   * the caller's bytes and `get` returns them, no copy of a many-MB blob either way; for a pipeline whose
   * writer never touches a blob after putting it and whose readers only read it.
   */
  readonly ownership?: 'copy' | 'handover';
}

interface Entry {
  readonly bytes: Uint8Array;
  readonly expiresAt: number;
}

/**
 * In-process KV blob store. Expiry is lazy (checked on read) plus a sweep in `count()`, so no timers
 * keep the process alive. By default bytes are copied in and out, as a networked store would, so
 * callers can't alias the stored blob (see `ownership`).
 */
export class MemoryKvStore implements KvStore {
  /** Copying in, yes; handing over, no: the store keeps the very bytes it was given. */
  readonly copiesOnPut: boolean;
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly copy: boolean;

  constructor(options: MemoryKvStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.copy = (options.ownership ?? 'copy') === 'copy';
    this.copiesOnPut = this.copy;
  }

  put(key: string, bytes: Uint8Array, ttlMs: number): Promise<void> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
      return Promise.reject(new RangeError(`MemoryKvStore.put: ttlMs must be finite and > 0, got ${ttlMs}`));
    }
    this.entries.set(key, { bytes: this.copy ? bytes.slice() : bytes, expiresAt: this.now() + ttlMs });
    return Promise.resolve();
  }

  get(key: string): Promise<Uint8Array | null> {
    const entry = this.live(key, this.now());
    if (!entry) return Promise.resolve(null);
    return Promise.resolve(this.copy ? entry.bytes.slice() : entry.bytes);
  }

  take(key: string): Promise<Uint8Array | null> {
    const bytes = this.get(key);
    this.entries.delete(key);
    return bytes;
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
