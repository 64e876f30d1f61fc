/**
 * Redis key prefixes for tests. Every prefix sits under this run's root (`disagg-test:<run>:`, the
 * run id comes from the global setup), so the global teardown can check exactly what this run left
 * and concurrent runs against the same Redis never see each other's keys.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { expect, inject } from 'vitest';
import { deleteAllButLeaks, describeLeaks, leakCount } from '../scripts/redis-leaks';

/** The root every test key of this run starts with. */
export function testRunRoot(): string {
  // Without the global setup (another config), a random root still keeps runs apart.
  return `disagg-test:${inject('redisTestRun') ?? randomUUID()}:`;
}

/** A fresh prefix for one test file or stack, e.g. `disagg-test:<run>:pipeline:<uuid>:`. */
export function testRedisPrefix(label: string): string {
  return `${testRunRoot()}${label}:${randomUUID()}:`;
}

/**
 * afterAll cleanup for pipeline tests: asserts nothing leaked under `prefix` (KV blobs, non-terminal
 * records, queued messages), deletes the rest, and leaves any leak in place for the global teardown.
 */
export async function expectNoLeaksThenClean(redis: Redis, prefix: string): Promise<void> {
  const leaks = await deleteAllButLeaks(redis, prefix);
  expect(leakCount(leaks), describeLeaks(leaks)).toBe(0);
}
