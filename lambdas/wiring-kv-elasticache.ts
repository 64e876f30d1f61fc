/** The ElastiCache (Valkey) KV store, imported by lambdas/wiring.ts only where the deployment uses it. */
import { RedisKvStore } from '../lib/adapters/kv-redis';
import { createRedis } from '../lib/adapters/redis-connection';
import type { KvStore } from '../lib/core/ports';

export function elasticacheKvStore(url: string, connectionName: string): KvStore {
  // Connect on the first command: a function that never touches KV never opens a socket.
  return new RedisKvStore({ redis: createRedis({ url, connectionName, lazyConnect: true }) });
}
