/**
 * Vitest global setup: gives the run an id that every test Redis prefix includes (see
 * redis-test-keys.ts), and after every run checks the real Redis (REDIS_URL or 127.0.0.1:6379) for
 * what the run's tests left behind: KV blobs, request records in a non-terminal state, queue keys
 * holding messages. Any of those fails the run, naming a few keys.
 *
 * Pipeline tests (pipeline, lambda handlers, load) assert in their afterAll that nothing leaked and
 * delete only the rest, so a leak survives until here. The adapter contract tests
 * (redis-adapters.test.ts) store blobs and messages on purpose, to test the stores themselves, and
 * delete their own keys: what they leave is not a pipeline leak, so it never reaches this check.
 */
import { randomUUID } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { createRedis } from '../lib/adapters/redis-connection';
import { describeLeaks, findRedisLeaks, leakCount, scanKeys } from '../scripts/redis-leaks';

declare module 'vitest' {
  export interface ProvidedContext {
    redisTestRun: string;
  }
}

export default function setup(project: TestProject): () => Promise<void> {
  const run = randomUUID();
  project.provide('redisTestRun', run);
  return () => teardown(`disagg-test:${run}:`);
}

async function teardown(root: string): Promise<void> {
  const redis = createRedis({
    url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    connectTimeoutMs: 2000,
    connectionName: 'disagg-test-teardown',
    onError: () => undefined,
  });
  try {
    try {
      await redis.ping();
    } catch {
      // No Redis, no Redis-backed test passed, so there is nothing of this run's to check.
      console.warn('global teardown: Redis is not reachable; leak check skipped');
      return;
    }
    const leaks = await findRedisLeaks(redis, root);
    // Whatever is left goes, leak or not, so a failed run doesn't litter a shared Redis.
    const keys = await scanKeys(redis, root);
    for (let i = 0; i < keys.length; i += 1000) await redis.unlink(...keys.slice(i, i + 1000));
    if (leakCount(leaks) > 0) {
      // Vitest only logs a teardown error ("error during close"); the exit code is what fails CI.
      process.exitCode = 1;
      throw new Error(`tests left state in Redis under ${root}: ${describeLeaks(leaks)}`);
    }
  } finally {
    redis.disconnect();
  }
}
