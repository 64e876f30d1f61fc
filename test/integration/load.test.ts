/**
 * The load test (scripts/load-test.ts, `npm run loadtest`) as a test: 300 concurrent mixed requests
 * against the embedded server with Redis, admission limits below the load. Results go to a temp dir
 * so a test run never dirties bench/.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LOAD, runLoadTest, writeLoadResults, type LoadTestResult } from '../../scripts/load-test';
import { testRedisPrefix } from '../redis-test-keys';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('300 concurrent requests against admission limits of 16 (timeScale 0, Redis)', () => {
  let result: LoadTestResult;

  beforeAll(async () => {
    result = await runLoadTest({
      ...DEFAULT_LOAD,
      redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      redisPrefix: testRedisPrefix('load'),
      // Bounded: a request that hangs fails the test instead of stalling it.
      requestTimeoutMs: 45_000,
    });
  }, 90_000);

  it('every request is answered 200 complete or 429 with Retry-After, never a timeout or 5xx', () => {
    expect(result.counts.total).toBe(300);
    // problems lists any 200 without content or [DONE], any 429 without an integer Retry-After >= 1
    // in the API error format, and any other status or network error.
    expect(result.problems).toEqual([]);
    expect(result.counts.other).toBe(0);
    expect(result.counts.ok + result.counts.rejected).toBe(300);
    // The limits really were exceeded, and every kind of request got through.
    expect(result.counts.rejected).toBeGreaterThan(0);
    expect(result.counts.ok).toBeGreaterThanOrEqual(DEFAULT_LOAD.maxPrefillQueue);
    for (const kind of ['chat', 'chat stream', 'completion', 'completion stream']) {
      expect(result.byKind[kind]?.ok, kind).toBeGreaterThan(0);
    }
    expect(result.retryAfterSeconds?.min).toBeGreaterThanOrEqual(1);
  });

  it('leaves no KV blob or unfinished record in Redis, and the server healthy and empty', () => {
    expect(result.after).toEqual({
      kvBlobs: 0,
      openRecords: 0,
      queuedMessages: 0,
      healthStatus: 200,
      occupancy: { prefillQueue: 0, decodeQueue: 0, decodeBatch: 0 },
    });
  });

  it('records p50/p99 latency and throughput, and writes them as JSON and Markdown', async () => {
    expect(result.latencyMs.p50).toBeGreaterThan(0);
    expect(result.latencyMs.p99).toBeGreaterThanOrEqual(result.latencyMs.p50);
    expect(result.throughput.completedPerS).toBeGreaterThan(0);
    expect(result.throughput.completionTokensPerS).toBeGreaterThan(0);
    const dir = await mkdtemp(join(tmpdir(), 'disagg-load-'));
    dirs.push(dir);
    await writeLoadResults(result, dir);
    const json = JSON.parse(await readFile(join(dir, 'load-results.json'), 'utf8')) as LoadTestResult;
    expect(json.counts).toEqual(result.counts);
    const md = await readFile(join(dir, 'load-results.md'), 'utf8');
    expect(md).toMatch(new RegExp(`\\| latency of accepted requests, p99 +\\| ${result.latencyMs.p99} ms +\\|`));
    expect(md).toMatch(new RegExp(`\\| 429 with Retry-After [^|]*\\| ${result.counts.rejected} +\\|`));
  });
});
