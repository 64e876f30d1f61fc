import type { Redis } from 'ioredis';
import { storeCall } from '../core/engine/retry';
import type { KvStore } from '../core/ports';

export interface RedisKvStoreOptions {
  readonly redis: Redis;
  /** Prepended to every key; `count()` scans exactly this prefix. Default `disagg:kv:`. */
  readonly prefix?: string;
}

/**
 * KV blob store on Redis/Valkey: one string key per blob, `SET ... PX ttl` as the lease. A Redis that does not
 * answer fails as StoreUnavailableError, its own error text kept as the cause.
 */
export class RedisKvStore implements KvStore {
  /** Once SET is answered the bytes were written to the socket; the client keeps no reference to them. */
  readonly copiesOnPut = true;
  readonly prefix: string;
  private readonly redis: Redis;

  constructor(options: RedisKvStoreOptions) {
    this.redis = options.redis;
    this.prefix = options.prefix ?? 'disagg:kv:';
  }

  // put and get return the client's promise through storeCall, not through async functions of their own: the
  // blob's round trip is the figure the store is held to against plain SET/GET, and each await adds a hop.
  put(key: string, bytes: Uint8Array, ttlMs: number): Promise<void> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
      return Promise.reject(new RangeError(`RedisKvStore.put: ttlMs must be finite and > 0, got ${ttlMs}`));
    }
    // A view, not a copy: KV blobs can be many MB.
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return storeCall('kv', () => this.redis.set(this.prefix + key, buffer, 'PX', Math.ceil(ttlMs))).then(done);
  }

  get(key: string): Promise<Uint8Array | null> {
    return storeCall('kv', () => this.redis.getBuffer(this.prefix + key)).then(plainBytes);
  }

  /** GETDEL: the blob and its deletion in one command (Redis 6.2+, every Valkey). */
  take(key: string): Promise<Uint8Array | null> {
    return storeCall('kv', () => this.redis.getdelBuffer(this.prefix + key)).then(plainBytes);
  }

  async delete(key: string): Promise<void> {
    await storeCall('kv', () => this.redis.del(this.prefix + key));
  }

  /** Counts keys under the prefix with SCAN (never KEYS, which blocks the server). */
  async count(): Promise<number> {
    return scanCount(this.redis, `${escapeGlob(this.prefix)}*`);
  }
}

/** A plain Uint8Array view, so callers get Uint8Array semantics (slice copies) rather than Buffer's. */
function plainBytes(buffer: Buffer | null): Uint8Array | null {
  return buffer ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : null;
}

/** Ends a chain whose value the caller does not get (SET's "OK"). */
function done(): void {}

/** Escapes SCAN MATCH glob characters so a prefix matches only itself. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

async function scanCount(redis: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let total = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    total += keys.length;
  } while (cursor !== '0');
  return total;
}
