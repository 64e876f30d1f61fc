import type { Redis } from 'ioredis';
import type { ResultStore } from '../core/ports';

export interface RedisResultStoreOptions {
  readonly redis: Redis;
  /** Prepended to every record id. Default `disagg:result:`. */
  readonly prefix?: string;
}

/** Result store on Redis/Valkey: one JSON string per record, expiring with `SET ... PX ttl`. */
export class RedisResultStore<T = unknown> implements ResultStore<T> {
  readonly prefix: string;
  private readonly redis: Redis;

  constructor(options: RedisResultStoreOptions) {
    this.redis = options.redis;
    this.prefix = options.prefix ?? 'disagg:result:';
  }

  async put(id: string, record: T, ttlMs: number): Promise<void> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
      throw new RangeError(`RedisResultStore.put: ttlMs must be finite and > 0, got ${ttlMs}`);
    }
    const json = JSON.stringify(record);
    if (json === undefined) throw new TypeError(`RedisResultStore.put: record for ${id} is not JSON-serializable`);
    await this.redis.set(this.prefix + id, json, 'PX', Math.ceil(ttlMs));
  }

  async get(id: string): Promise<T | null> {
    const json = await this.redis.get(this.prefix + id);
    return json === null ? null : (JSON.parse(json) as T);
  }

  async delete(id: string): Promise<void> {
    await this.redis.del(this.prefix + id);
  }
}
