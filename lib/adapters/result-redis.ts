import type { Redis } from 'ioredis';
import { storeCall, type StoreUnavailableError } from '../core/engine/retry';
import type { ResultStore } from '../core/ports';

export interface RedisResultStoreOptions {
  readonly redis: Redis;
  /** Prepended to every record id. Default `disagg:result:`. */
  readonly prefix?: string;
  /** What its errors call it (StoreUnavailableError): `results` by default, `cancellations` for markers. */
  readonly name?: StoreUnavailableError['store'];
}

/**
 * Result store on Redis/Valkey: one JSON string per record, expiring with `SET ... PX ttl`. A Redis that does
 * not answer fails as StoreUnavailableError, its own error text kept as the cause.
 */
export class RedisResultStore<T = unknown> implements ResultStore<T> {
  readonly prefix: string;
  private readonly redis: Redis;
  private readonly name: StoreUnavailableError['store'];

  constructor(options: RedisResultStoreOptions) {
    this.redis = options.redis;
    this.prefix = options.prefix ?? 'disagg:result:';
    this.name = options.name ?? 'results';
  }

  async put(id: string, record: T, ttlMs: number): Promise<void> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
      throw new RangeError(`RedisResultStore.put: ttlMs must be finite and > 0, got ${ttlMs}`);
    }
    const json = JSON.stringify(record);
    if (json === undefined) throw new TypeError(`RedisResultStore.put: record for ${id} is not JSON-serializable`);
    await storeCall(this.name, () => this.redis.set(this.prefix + id, json, 'PX', Math.ceil(ttlMs)));
  }

  async get(id: string): Promise<T | null> {
    const json = await storeCall(this.name, () => this.redis.get(this.prefix + id));
    return json === null ? null : (JSON.parse(json) as T);
  }

  async delete(id: string): Promise<void> {
    await storeCall(this.name, () => this.redis.del(this.prefix + id));
  }
}
