import type { Writable } from 'node:stream';
import { Command, type Redis } from 'ioredis';
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
    const px = String(Math.ceil(ttlMs));
    // Auto-pipelining hands a command's wire form to a batch, not to the socket, and a client's own key prefix is
    // applied by its command methods: with either, ioredis's own SET.
    if (this.redis.options.enableAutoPipelining || this.redis.options.keyPrefix) {
      return storeCall('kv', () => this.redis.set(this.prefix + key, buffer, 'PX', px)).then(done);
    }
    return storeCall(
      'kv',
      () => this.redis.sendCommand(new BlobSet(this.prefix + key, buffer, px)) as Promise<unknown>,
    ).then(done);
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

/**
 * `SET key blob PX ttl`, written as the blob's framing around the blob itself in one corked write. ioredis's SET
 * copies a command with a Buffer argument into one new buffer first: a fresh many-MB allocation per blob, whose
 * page faults cost the kernel more than the socket write. Written from the caller's memory, the blob is read by the
 * socket until the command is answered (and again should ioredis resend it after a reconnect), never after.
 */
class BlobSet extends Command {
  constructor(
    private readonly key: string,
    private readonly blob: Buffer,
    private readonly px: string,
  ) {
    super('set', [key, blob, 'PX', px]);
  }

  override toWritable(socket: object): string {
    const stream = socket as Writable;
    const key = this.key;
    stream.cork();
    stream.write(`*5\r\n$3\r\nset\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n$${this.blob.length}\r\n`);
    stream.write(this.blob);
    // ioredis writes what this returns next; the three go out together when the socket is uncorked.
    process.nextTick(() => stream.uncork());
    return `\r\n$2\r\nPX\r\n$${this.px.length}\r\n${this.px}\r\n`;
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
