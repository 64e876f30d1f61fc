/** The stores the embedded pipeline keeps its KV blobs, records and cancellation markers in: Redis when given, else memory. */
import type { Redis } from 'ioredis';
import { MemoryKvStore } from '../adapters/kv-memory';
import { RedisKvStore } from '../adapters/kv-redis';
import { MemoryResultStore } from '../adapters/result-memory';
import { RedisResultStore } from '../adapters/result-redis';
import type { CancellationMarker } from '../core/engine/decode-stage';
import type { RequestRecord } from '../core/engine/record';
import type { KvStore, ResultStore } from '../core/ports';

export interface PipelineStores {
  readonly kv: KvStore;
  readonly results: ResultStore<RequestRecord>;
  readonly cancellations: ResultStore<CancellationMarker>;
}

/** Key prefix when none is given; several servers (or test runs) sharing one Redis pass their own. */
export const DEFAULT_REDIS_PREFIX = 'disagg:';

export function pipelineStores(redis: Redis | null, prefix = DEFAULT_REDIS_PREFIX): PipelineStores {
  if (redis) {
    return {
      kv: new RedisKvStore({ redis, prefix: `${prefix}kv:` }),
      results: new RedisResultStore<RequestRecord>({ redis, prefix: `${prefix}result:` }),
      cancellations: new RedisResultStore<CancellationMarker>({
        redis,
        prefix: `${prefix}cancel:`,
        name: 'cancellations',
      }),
    };
  }
  return {
    // The stages never write a blob after putting it, nor after reading it: no need to copy MBs in and out.
    kv: new MemoryKvStore({ ownership: 'handover' }),
    results: new MemoryResultStore<RequestRecord>(),
    cancellations: new MemoryResultStore<CancellationMarker>(),
  };
}
