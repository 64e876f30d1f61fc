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
      const pxTimes: number[] = [];
      const timed = async (times: number[], roundTrip: () => Promise<Buffer | Uint8Array | null>): Promise<void> => {
        const t0 = performance.now();
        const got = await roundTrip();
        times.push(performance.now() - t0);
        if (!got || got.length !== bytes.length) throw new Error('a round trip lost bytes');
      };
      const variants = [
        async (key: string): Promise<void> => {
          await timed(kvTimes, async () => (await store.put(key, bytes, 60_000), store.get(key)));
          await store.delete(key);
        },
        async (key: string): Promise<void> => {
          const k = `${prefix}plain:${key}`;
          await timed(plainTimes, async () => (await redis.set(k, buffer), redis.getBuffer(k)));
          await redis.del(k);
        },
        // The store's exact command (SET with a PX lease) without the store: separates the TTL from the wrapper.
        async (key: string): Promise<void> => {
          const k = `${prefix}px:${key}`;
          await timed(pxTimes, async () => (await redis.set(k, buffer, 'PX', 60_000), redis.getBuffer(k)));
          await redis.del(k);
        },
      ];
      for (let round = 0; round < ROUNDS[mb]!; round++) {
        // Rotated each round, so no variant always runs first (after the previous round's deletes).
        for (let i = 0; i < variants.length; i++) await variants[(round + i) % variants.length]!(`blob-${round}-${i}`);
      }
      const mbPerS = (ms: number): number => (2 * mb) / (ms / 1000); // put and get both move the blob
      const kvRate = mbPerS(median(kvTimes));
      const plainRate = mbPerS(median(plainTimes));
      const pxRate = mbPerS(median(pxTimes));
      const section = `KV handoff (Redis, ${mb} MB)`;
      rows.push({ section, metric: 'KV store put+get', value: kvRate, unit: 'MB/s', target: '', pass: null });
      rows.push({ section, metric: 'plain SET+GET', value: plainRate, unit: 'MB/s', target: '', pass: null });
      rows.push({
        section,
        metric: "SET PX+GET (the store's command, no store)",
        value: pxRate,
        unit: 'MB/s',
        target: '',
        pass: null,
        note: `ratio to plain ${(pxRate / plainRate).toFixed(3)}: what the TTL alone costs`,
      });
      rows.push({
        section,
        metric: 'ratio to plain',
        value: kvRate / plainRate,
        unit: 'x',
        target: `>= ${TARGET_RATIO}`,
        pass: kvRate / plainRate >= TARGET_RATIO,
        note: `medians of ${ROUNDS[mb]} rounds, the three variants interleaved in rotating order; KV store to SET PX ${(kvRate / pxRate).toFixed(3)}: what the wrapper costs`,
      });
    }
  } finally {
    await redis.quit();
  }
  return rows;
}
