/**
 * KV handoff throughput: put + get of KV blobs through the Redis KV store, against a plain SET and GET of
 * the same bytes with the same client, in the same run (alternating, so machine noise hits both alike).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { RedisKvStore } from '../lib/adapters/kv-redis';
import { createRedis } from '../lib/adapters/redis-connection';
import { median, type BenchRow } from './results';

const SIZES_MB = [1, 16, 64];
const ROUNDS: Record<number, number> = { 1: 60, 16: 12, 64: 5 };
const TARGET_RATIO = 0.8;

export async function kvHandoffBench(redisUrl: string, progress: (line: string) => void): Promise<BenchRow[]> {
  const redis = createRedis({ url: redisUrl, connectionName: 'disagg-bench' });
  const prefix = `disagg-bench:${randomUUID()}:`;
  const store = new RedisKvStore({ redis, prefix: `${prefix}kv:` });
  const rows: BenchRow[] = [];
  try {
    for (const mb of SIZES_MB) {
      progress(`KV handoff: ${mb} MB blobs`);
      const bytes = new Uint8Array(randomBytes(mb * 1024 * 1024));
      const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const kvTimes: number[] = [];
      const plainTimes: number[] = [];
      for (let round = 0; round < ROUNDS[mb]!; round++) {
        const key = `blob-${round}`;
        let t0 = performance.now();
        await store.put(key, bytes, 60_000);
        const got = await store.get(key);
        kvTimes.push(performance.now() - t0);
        await store.delete(key);
        if (!got || got.length !== bytes.length) throw new Error('KV store round trip lost bytes');
        t0 = performance.now();
        await redis.set(`${prefix}plain:${key}`, buffer);
        const plain = await redis.getBuffer(`${prefix}plain:${key}`);
        plainTimes.push(performance.now() - t0);
        await redis.del(`${prefix}plain:${key}`);
        if (!plain || plain.length !== bytes.length) throw new Error('plain round trip lost bytes');
      }
      const mbPerS = (ms: number): number => (2 * mb) / (ms / 1000); // put and get both move the blob
      const kvRate = mbPerS(median(kvTimes));
      const plainRate = mbPerS(median(plainTimes));
      const section = `KV handoff (Redis, ${mb} MB)`;
      rows.push({ section, metric: 'KV store put+get', value: kvRate, unit: 'MB/s', target: '', pass: null });
      rows.push({ section, metric: 'plain SET+GET', value: plainRate, unit: 'MB/s', target: '', pass: null });
      rows.push({
        section,
        metric: 'ratio to plain',
        value: kvRate / plainRate,
        unit: 'x',
        target: `>= ${TARGET_RATIO}`,
        pass: kvRate / plainRate >= TARGET_RATIO,
      });
    }
  } finally {
    await redis.quit();
  }
  return rows;
}
