import type { ResultStore } from '../core/ports';

export interface MemoryResultStoreOptions {
  /** Time source for TTLs, in ms. Default `Date.now`; inject one to test expiry without sleeping. */
  readonly now?: () => number;
}

interface Entry {
  readonly json: string;
  readonly expiresAt: number;
}

/**
 * In-process result store with TTL (lazy expiry on read). Records are stored as JSON, exactly as the
 * Redis store does, so a record that doesn't survive JSON fails here too rather than only in production.
 */
export class MemoryResultStore<T = unknown> implements ResultStore<T> {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(options: MemoryResultStoreOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  put(id: string, record: T, ttlMs: number): Promise<void> {
    const json = JSON.stringify(record);
    if (json === undefined) {
      return Promise.reject(new TypeError(`MemoryResultStore.put: record for ${id} is not JSON-serializable`));
    }
    return this.putJson(id, json, ttlMs);
  }

  get(id: string): Promise<T | null> {
    return this.getJson(id).then((json) => (json === null ? null : (JSON.parse(json) as T)));
  }

  /** `put` of a record its caller already serialized (a store serving another thread keeps the JSON it is sent). */
  putJson(id: string, json: string, ttlMs: number): Promise<void> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
      return Promise.reject(new RangeError(`MemoryResultStore.put: ttlMs must be finite and > 0, got ${ttlMs}`));
    }
    this.entries.set(id, { json, expiresAt: this.now() + ttlMs });
    return Promise.resolve();
  }

  /** The stored JSON, or null when missing or expired. */
  getJson(id: string): Promise<string | null> {
    const entry = this.entries.get(id);
    if (!entry) return Promise.resolve(null);
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(id);
      return Promise.resolve(null);
    }
    return Promise.resolve(entry.json);
  }

  delete(id: string): Promise<void> {
    this.entries.delete(id);
    return Promise.resolve();
  }
}
