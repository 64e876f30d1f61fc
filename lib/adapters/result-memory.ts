import type { ResultStore } from '../core/ports';

export interface MemoryResultStoreOptions {
  /** Time source for TTLs, in ms. Default `Date.now`; inject one to test expiry without sleeping. */
  readonly now?: () => number;
  /** How often expired entries are swept out, unread or not (default 30 s; 0: only on read). */
  readonly sweepEveryMs?: number;
  /** Most entries kept; past it the oldest written goes first (default 100,000). */
  readonly maxEntries?: number;
}

/** Entries a memory store keeps at most by default: some hundred MB of records at the worst. */
export const MEMORY_STORE_MAX_ENTRIES = 100_000;
const SWEEP_EVERY_MS = 30_000;

interface Entry {
  readonly json: string;
  readonly expiresAt: number;
}

/**
 * In-process result store with TTL: expiry on read, and a sweep on a timer (which never keeps the process alive)
 * for what is never read again; at most `maxEntries`, the oldest written evicted first, so memory stays bounded
 * however many requests pass. Records are stored as JSON, exactly as the Redis store does, so a record that
 * doesn't survive JSON fails here too rather than only in production.
 */
export class MemoryResultStore<T = unknown> implements ResultStore<T> {
  /** In order of last write: the oldest first, for eviction at the cap. */
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly maxEntries: number;
  private readonly sweeper: NodeJS.Timeout | null;

  constructor(options: MemoryResultStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.maxEntries = options.maxEntries ?? MEMORY_STORE_MAX_ENTRIES;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) {
      throw new RangeError(`MemoryResultStore: maxEntries must be an integer >= 1, got ${this.maxEntries}`);
    }
    const every = options.sweepEveryMs ?? SWEEP_EVERY_MS;
    this.sweeper = every > 0 ? setInterval(() => this.sweep(), every).unref() : null;
  }

  /** Entries held now, expired ones not yet swept included. */
  get size(): number {
    return this.entries.size;
  }

  /** Drops every expired entry now; returns how many. */
  sweep(): number {
    const now = this.now();
    let dropped = 0;
    for (const [id, entry] of this.entries) {
      if (entry.expiresAt <= now) {
        this.entries.delete(id);
        dropped += 1;
      }
    }
    return dropped;
  }

  /** Stops the sweep timer (the entries stay readable). */
  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
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
    // Deleted first, so the map's order stays the order of last write.
    this.entries.delete(id);
    this.entries.set(id, { json, expiresAt: this.now() + ttlMs });
    if (this.entries.size > this.maxEntries) this.evictOldest();
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

  /** Past the cap: the oldest written go (expired or nearest to it: every put of a store has the same TTL or so). */
  private evictOldest(): void {
    for (const id of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(id);
    }
  }
}
