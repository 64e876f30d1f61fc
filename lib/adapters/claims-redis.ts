import type { Redis } from 'ioredis';
import type { ClaimStore } from '../core/ports';

/** Takes the claim if free, or renews it for its owner: one atomic script. */
const CLAIM = `
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

/** Deletes the claim only if the caller holds it (compare-and-delete). */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

export interface RedisClaimStoreOptions {
  readonly redis: Redis;
  /** Default `disagg:claim:`. */
  readonly prefix?: string;
}

/** Claims in Redis/Valkey, shared by every worker that reaches it; the key's PX expiry is the lease. */
export class RedisClaimStore implements ClaimStore {
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(options: RedisClaimStoreOptions) {
    this.redis = options.redis;
    this.prefix = options.prefix ?? 'disagg:claim:';
  }

  async claim(key: string, owner: string, leaseMs: number): Promise<boolean> {
    const taken = await this.redis.eval(CLAIM, 1, this.prefix + key, owner, Math.max(1, Math.ceil(leaseMs)));
    return taken === 1;
  }

  async release(key: string, owner: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.prefix + key, owner);
  }
}
