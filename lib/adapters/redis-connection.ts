import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';

/** Used when neither an explicit URL nor `REDIS_URL` is given. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export interface RedisConnectionOptions {
  /** `redis://[user:pass@]host:port[/db]` or `rediss://...` for TLS (ElastiCache/Valkey). Default `REDIS_URL`, else localhost. */
  readonly url?: string;
  /** Give up a connection attempt after this long. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** Reconnect attempts a command waits through before it fails. Default 1, so a down Redis errors instead of hanging. */
  readonly maxRetriesPerRequest?: number;
  /**
   * A command unanswered this long fails (default 2000 ms): a Redis that hangs (paused, swapping, a dead link
   * with the socket still open) must fail like one that is down, not hold every request with it.
   */
  readonly commandTimeoutMs?: number;
  /** Shown in `CLIENT LIST`, to tell workers apart. */
  readonly connectionName?: string;
  /** Extra TLS settings for `rediss://` (e.g. `servername`, `ca`); TLS is on whenever the scheme is `rediss`. */
  readonly tls?: TlsOptions;
  /** Connect on first command instead of at once. Default false. */
  readonly lazyConnect?: boolean;
  /** Connection errors; commands still reject with them. Default: one warning per outage on stderr. */
  readonly onError?: (error: Error) => void;
}

/** The URL to use: the argument, else `REDIS_URL`, else localhost. */
export function redisUrl(url?: string, env: NodeJS.ProcessEnv = process.env): string {
  return url ?? (env.REDIS_URL || DEFAULT_REDIS_URL);
}

/**
 * Creates an ioredis client with options that fail fast. No `keyPrefix`: every adapter passes its own
 * prefix explicitly so keys read the same in code and in `redis-cli`.
 */
export function createRedis(options: RedisConnectionOptions = {}): Redis {
  const url = redisUrl(options.url);
  const useTls = /^rediss:\/\//i.test(url);
  const redisOptions: RedisOptions = {
    connectTimeout: options.connectTimeoutMs ?? 5000,
    maxRetriesPerRequest: options.maxRetriesPerRequest ?? 1,
    commandTimeout: options.commandTimeoutMs ?? 2000,
    // Commands issued before the first connect wait for it; maxRetriesPerRequest bounds that wait.
    enableOfflineQueue: true,
    lazyConnect: options.lazyConnect ?? false,
    // Back off up to 2 s between reconnects so a restarting Redis is picked up again without a storm.
    retryStrategy: (times) => Math.min(times * 100, 2000),
    ...(options.connectionName ? { connectionName: options.connectionName } : {}),
    ...(useTls ? { tls: { ...options.tls } } : {}),
  };
  const redis = new Redis(url, redisOptions);
  let warned = false;
  const onError =
    options.onError ??
    ((error: Error) => {
      // One line per outage, not one per reconnect attempt.
      if (warned) return;
      warned = true;
      console.warn(`redis: ${error.message}`);
    });
  redis.on('error', onError);
  redis.on('ready', () => {
    warned = false;
  });
  return redis;
}
