import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKvStore, escapeGlob } from '../../lib/adapters/kv-redis';
import { createRedis, redisUrl } from '../../lib/adapters/redis-connection';
import { RedisQueue } from '../../lib/adapters/queue-redis';
import { RedisResultStore } from '../../lib/adapters/result-redis';
import { describeQueueContract } from '../contracts/queue-contract';
import { testRedisPrefix } from '../redis-test-keys';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Every key this run writes starts with this, so parallel runs don't collide and cleanup is exact. */
const run = testRedisPrefix('adapters');
const connections: Redis[] = [];
const connect = (): Redis => {
  const redis = createRedis({ url });
  connections.push(redis);
  return redis;
};
let redis: Redis;
let otherProcess: Redis;

beforeAll(() => {
  redis = connect();
  otherProcess = connect();
});

/** Every key under `prefix`, by a full SCAN (one SCAN page may hold none of them). */
async function keysUnder(prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

afterAll(async () => {
  // These tests store blobs and messages on purpose (they test the stores, not the pipeline), so they delete them all.
  const keys = await keysUnder(run);
  for (let i = 0; i < keys.length; i += 1000) await redis.unlink(...keys.slice(i, i + 1000));
  await Promise.all(connections.map((c) => c.quit()));
});

let queues = 0;
describeQueueContract('RedisQueue', async (options) => {
  // Fresh name per test; the peer uses its own connection, as a consumer in another process would.
  const name = `q${++queues}`;
  const prefix = `${run}queue:`;
  return {
    queue: new RedisQueue({ redis, name, prefix, consumer: 'a', ...options }),
    peer: new RedisQueue({ redis: otherProcess, name, prefix, consumer: 'b', ...options }),
  };
});

describe('RedisQueue', () => {
  it('keeps all of its keys under its prefix', async () => {
    const queue = new RedisQueue({
      redis,
      name: 'layout',
      prefix: `${run}layout:`,
      visibilityTimeoutMs: 1000,
      maxReceives: 1,
    });
    await queue.send('x');
    const [message] = await queue.receive(1, 0);
    expect(message).toBeDefined();
    const keys = await keysUnder(`${run}layout:`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key.startsWith(`${run}layout:{layout}:`)).toBe(true);
    await queue.close();
  });

  it('rejects a queue name with braces, which would break its hash tag', () => {
    expect(() => new RedisQueue({ redis, name: 'a{b}', visibilityTimeoutMs: 1000, maxReceives: 1 })).toThrow(/name/);
  });
});

describe('RedisKvStore', () => {
  const kv = () => new RedisKvStore({ redis, prefix: `${run}kv:` });

  it('round-trips bytes and returns a plain Uint8Array', async () => {
    const store = kv();
    await store.put('small', new Uint8Array([0, 1, 254, 255]), 60_000);
    const got = await store.get('small');
    expect(got).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(got)).toBe(false);
    expect(got).toEqual(new Uint8Array([0, 1, 254, 255]));
  });

  it('round-trips a 16 MB random blob byte for byte, from a view with a non-zero offset', async () => {
    const store = kv();
    const size = 16 * 1024 * 1024;
    const backing = randomBytes(size + 7);
    const blob = new Uint8Array(backing.buffer, backing.byteOffset + 3, size);
    await store.put('big', blob, 60_000);
    const got = await store.get('big');
    expect(got?.byteLength).toBe(size);
    expect(Buffer.compare(Buffer.from(got!.buffer, got!.byteOffset, got!.byteLength), Buffer.from(blob))).toBe(0);
    await store.delete('big');
  });

  it('writes a blob under a key of any characters, with its lease, and while the client is still connecting', async () => {
    const store = kv();
    await store.put('ключ-🙂', new Uint8Array([3, 1, 4]), 60_000);
    expect(await store.get('ключ-🙂')).toEqual(new Uint8Array([3, 1, 4]));
    const ttl = await redis.pttl(`${run}kv:ключ-🙂`);
    expect(ttl).toBeGreaterThan(59_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    // Queued before the connection is up (a lazy client connects on its first command), then written on connect.
    const late = createRedis({ url, lazyConnect: true });
    connections.push(late);
    const blob = randomBytes(300_000);
    const early = new RedisKvStore({ redis: late, prefix: `${run}kv:` });
    expect(late.status).toBe('wait');
    await early.put('early', blob, 60_000);
    const got = await store.take('early');
    expect(Buffer.compare(Buffer.from(got!.buffer, got!.byteOffset, got!.byteLength), blob)).toBe(0);
  });

  it('returns null for a missing key and after delete', async () => {
    const store = kv();
    expect(await store.get('missing')).toBeNull();
    await store.put('gone', new Uint8Array([1]), 60_000);
    await store.delete('gone');
    expect(await store.get('gone')).toBeNull();
  });

  it('expires a blob after its TTL', async () => {
    const store = kv();
    await store.put('lease', new Uint8Array([1]), 100);
    expect(await store.get('lease')).not.toBeNull();
    expect(await redis.pttl(`${run}kv:lease`)).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await store.get('lease')).toBeNull();
  });

  it('counts by SCAN exactly the keys under its own prefix, over many SCAN pages', async () => {
    const store = new RedisKvStore({ redis, prefix: `${run}count*:` });
    const lookalike = new RedisKvStore({ redis, prefix: `${run}countX:` });
    const pipeline = redis.pipeline();
    for (let i = 0; i < 2500; i++) pipeline.set(`${run}count*:${i}`, 'x', 'PX', 60_000);
    await pipeline.exec();
    await lookalike.put('other', new Uint8Array([1]), 60_000);
    expect(await store.count()).toBe(2500);
    expect(await lookalike.count()).toBe(1);
    await store.delete('0');
    expect(await store.count()).toBe(2499);
  });

  it('take reads and deletes a blob in one command (GETDEL), null when missing', async () => {
    const store = kv();
    await store.put('taken', new Uint8Array([7, 8, 9]), 60_000);
    const got = await store.take('taken');
    expect(got).toEqual(new Uint8Array([7, 8, 9]));
    expect(Buffer.isBuffer(got)).toBe(false);
    expect(await redis.exists(`${run}kv:taken`)).toBe(0);
    expect(await store.take('taken')).toBeNull();
    expect(store.copiesOnPut).toBe(true);
  });

  it('uses disagg:kv: as the default prefix', () => {
    expect(new RedisKvStore({ redis }).prefix).toBe('disagg:kv:');
  });
});

describe('RedisResultStore', () => {
  const results = () => new RedisResultStore<{ state: string; tokens: string[] }>({ redis, prefix: `${run}result:` });

  it('round-trips a record as JSON and forgets it on delete', async () => {
    const store = results();
    await store.put('r1', { state: 'done', tokens: ['a', 'ü', '🙂'] }, 60_000);
    expect(await redis.get(`${run}result:r1`)).toBe(JSON.stringify({ state: 'done', tokens: ['a', 'ü', '🙂'] }));
    expect(await store.get('r1')).toEqual({ state: 'done', tokens: ['a', 'ü', '🙂'] });
    await store.delete('r1');
    expect(await store.get('r1')).toBeNull();
  });

  it('expires a record after its TTL', async () => {
    const store = results();
    await store.put('r2', { state: 'queued', tokens: [] }, 100);
    expect(await store.get('r2')).not.toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await store.get('r2')).toBeNull();
  });
});

describe('createRedis', () => {
  it('fails a command with an error, not a hang, when Redis is down', async () => {
    const errors: Error[] = [];
    const down = createRedis({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 1000, onError: (e) => errors.push(e) });
    const start = Date.now();
    await expect(down.ping()).rejects.toThrow();
    expect(Date.now() - start).toBeLessThan(10_000);
    expect(errors.length).toBeGreaterThan(0);
    down.disconnect();
  });

  it('prefers an explicit URL, then REDIS_URL, then localhost', () => {
    expect(redisUrl('redis://h:1')).toBe('redis://h:1');
    expect(redisUrl(undefined, { REDIS_URL: 'rediss://cache:6379' })).toBe('rediss://cache:6379');
    expect(redisUrl(undefined, {})).toBe('redis://127.0.0.1:6379');
  });

  it('turns TLS on for rediss:// URLs only', () => {
    const tls = createRedis({ url: 'rediss://127.0.0.1:1', lazyConnect: true, tls: { servername: 'cache' } });
    const plain = createRedis({ url: 'redis://127.0.0.1:1', lazyConnect: true });
    expect(tls.options.tls).toMatchObject({ servername: 'cache' });
    expect(plain.options.tls).toBeUndefined();
    tls.disconnect();
    plain.disconnect();
  });
});
