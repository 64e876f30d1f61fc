import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MemoryKvStore } from '../../lib/adapters/kv-memory';
import { RedisKvStore } from '../../lib/adapters/kv-redis';
import { createRedis } from '../../lib/adapters/redis-connection';
import { RedisResultStore } from '../../lib/adapters/result-redis';
import { decodeBatchTokenTime, prefillTime, stackSpeculation } from '../../lib/core/emulator';
import { engineConfig } from '../../lib/core/engine/config';
import { transferMs, type CancellationMarker } from '../../lib/core/engine/decode-stage';
import { kvBlobPool, POOLED_MIN_BYTES } from '../../lib/core/handoff/blob-pool';
import type { RequestRecord } from '../../lib/core/engine/record';
import type { KvStore } from '../../lib/core/ports';
import { expectNoLeaksThenClean, testRedisPrefix } from '../redis-test-keys';
import { createHarness, prompts, tokens } from './pipeline-harness';

const samplings = [
  { temperature: 0, topP: 1, seed: 0 },
  { temperature: 0.8, topP: 0.95, seed: 7 },
  { temperature: 1.2, topP: 0.9, seed: 12345 },
];

describe('disaggregated output equals colocated output, token for token', () => {
  it('over memory adapters, for many prompts and sampling seeds (KV inline and through the KV store)', async () => {
    const h = createHarness();
    try {
      let viaStore = 0;
      for (const messages of prompts()) {
        for (const sampling of samplings) {
          const disagg = await h.run(messages, { ...sampling, maxTokens: 24 }, 'disaggregated');
          const colocated = await h.run(messages, { ...sampling, maxTokens: 24 }, 'colocated');
          expect(disagg.state).toBe('completed');
          expect(colocated.state).toBe('completed');
          expect(disagg.mode).toBe('disaggregated');
          expect(colocated.mode).toBe('colocated');
          expect(disagg.completionTokens).toBeGreaterThan(0);
          expect(tokens(disagg)).toBe(tokens(colocated));
          const put = disagg.timeline.find((t) => t.event === 'kv_put');
          if (put?.detail?.inline === false) viaStore += 1;
        }
      }
      expect(viaStore).toBeGreaterThan(0);
      expect(await h.kv.count()).toBe(0);
    } finally {
      await h.close();
    }
  });

  describe('with KV blobs and results in the real Redis', () => {
    const redis = createRedis({
      url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      connectionName: 'disagg-pipeline-test',
    });
    const prefix = testRedisPrefix('pipeline');
    const kv = new RedisKvStore({ redis, prefix: `${prefix}kv:` });

    afterAll(async () => {
      // Checked, not deleted blindly: a leaked blob or unfinished record fails here and stays for the global teardown.
      await expectNoLeaksThenClean(redis, prefix);
      await redis.quit();
    });

    it('holds for every prompt and seed, and leaves no KV blob behind (counted by SCAN)', async () => {
      const h = createHarness(
        {},
        {
          kv,
          results: new RedisResultStore<RequestRecord>({ redis, prefix: `${prefix}result:` }),
          cancellations: new RedisResultStore<CancellationMarker>({ redis, prefix: `${prefix}cancel:` }),
        },
      );
      try {
        let viaRedis = 0;
        for (const messages of prompts()) {
          for (const sampling of samplings) {
            const disagg = await h.run(messages, { ...sampling, maxTokens: 20 }, 'disaggregated');
            const colocated = await h.run(messages, { ...sampling, maxTokens: 20 }, 'colocated');
            expect(disagg.state).toBe('completed');
            expect(tokens(disagg)).toBe(tokens(colocated));
            if (disagg.timeline.some((t) => t.event === 'kv_put' && t.detail?.inline === false)) viaRedis += 1;
            // The record the API reads back is the one decode wrote.
            const stored = await h.results.get(disagg.id);
            expect(stored?.state).toBe('completed');
            expect(stored?.pieces.join('|')).toBe(tokens(disagg));
          }
        }
        expect(viaRedis).toBeGreaterThanOrEqual(3);
        expect(await kv.count()).toBe(0);
      } finally {
        await h.close();
      }
    });
  });
});

describe('KV blob memory handed over in one process (the memory store without copies)', () => {
  it('is lent again once decode is done with it, never while a request still decodes from it', async () => {
    const acquire = vi.spyOn(kvBlobPool, 'acquire');
    // Emulated time slowed enough that the six concurrent requests below overlap however the machine is loaded.
    const h = createHarness({ timeScale: 0.05 }, { kv: new MemoryKvStore({ ownership: 'handover' }) });
    try {
      const long = prompts()[5]!;
      const sampling = { temperature: 0.7, seed: 9, maxTokens: 12 };
      const expected = tokens(await h.run(long, sampling, 'colocated'));
      const first = await h.run(long, sampling, 'disaggregated');
      const second = await h.run(long, sampling, 'disaggregated');
      expect(first.timeline.find((t) => t.event === 'kv_put')?.detail?.bytes).toBeGreaterThanOrEqual(POOLED_MIN_BYTES);
      expect([tokens(first), tokens(second)]).toEqual([expected, expected]);
      const buffers = acquire.mock.results.map((r) => (r.value as Uint8Array).buffer);
      expect(buffers).toHaveLength(2);
      expect(buffers[1]).toBe(buffers[0]);
      // Many at once: each decodes from its own memory, so each output is the colocated one.
      acquire.mockClear();
      const all = await Promise.all(Array.from({ length: 6 }, () => h.run(long, sampling, 'disaggregated')));
      expect(all.map(tokens)).toEqual(all.map(() => expected));
      expect(new Set(acquire.mock.results.map((r) => (r.value as Uint8Array).buffer)).size).toBeGreaterThan(1);
      expect(await h.kv.count()).toBe(0);
    } finally {
      acquire.mockRestore();
      await h.close();
    }
  });
});

describe('continuous batching', () => {
  it('runs concurrent requests in shared decode steps, never above the batch limit', async () => {
    const h = createHarness({ decodeBatchMax: 4 });
    try {
      const all = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          h.run([{ role: 'user', content: `question ${i} about decode` }], { maxTokens: 30 }, 'disaggregated'),
        ),
      );
      expect(all.every((r) => r.state === 'completed' && r.completionTokens === 30)).toBe(true);
      const batchSizes = all.map((r) => Number(r.timeline.find((t) => t.event === 'decode_start')?.detail?.batch));
      expect(Math.max(...batchSizes)).toBeGreaterThan(1);
      expect(Math.max(...batchSizes)).toBeLessThanOrEqual(4);
    } finally {
      await h.close();
    }
  });

  it('ends a request whose KV could never fit the decode pool failed, and keeps serving the others', async () => {
    // cs3x4 holds about 52,800 tokens of Llama 3.3 70B KV beside the weights; this one may need 60,000+.
    const h = createHarness();
    try {
      const huge = await h.run(
        [{ role: 'user', content: 'write a very long story' }],
        { maxTokens: 60_000 },
        'disaggregated',
      );
      expect(huge.state).toBe('failed');
      expect(huge.error?.code).toBe('too_large_for_decode_memory');
      expect(huge.error?.message).toMatch(
        /max tokens = \d+ tokens\), but the decode pool cs3x4 holds only 17\.3 GB of KV/,
      );
      expect(huge.timeline.some((t) => t.event === 'decode_start')).toBe(false);
      const next = await h.run([{ role: 'user', content: 'and a short one' }], { maxTokens: 4 }, 'disaggregated');
      expect(next.state).toBe('completed');
      expect(h.runtime.occupancy()).toEqual({ prefillQueue: 0, decodeQueue: 0, decodeBatch: 0 });
    } finally {
      await h.close();
    }
  });
});

describe('emulated time charged to a request', () => {
  it('is exactly the timing model: the first token with the prefill, then the transfer and one step per later token', async () => {
    const h = createHarness();
    try {
      const r = await h.run(
        [{ role: 'user', content: 'how long does this take?' }],
        { maxTokens: 10 },
        'disaggregated',
      );
      const config = engineConfig({ timeScale: 0 });
      const n = r.promptTokens;
      const prefill = prefillTime(config.model, config.prefillPool, [{ newTokens: n, cachedTokens: 0 }]).ms;
      // Tokens 2..10, each at the context it is generated at, with the stack's published speculation (if any).
      const spec = stackSpeculation(config.model, config.decodePool, config.compute);
      const steps = Array.from({ length: 9 }, (_, i) =>
        decodeBatchTokenTime(config.model, config.decodePool, [n + 1 + i], config.compute, spec),
      );
      const decode = steps.reduce((a, b) => a + b, 0);
      expect(r.emulated.prefillMs).toBeCloseTo(prefill, 9);
      expect(r.emulated.transferMs).toBeCloseTo(transferMs(config, n), 9);
      expect(r.emulated.ttftMs).toBeCloseTo(prefill, 9);
      expect(r.emulated.tpotMs).toBeCloseTo(decode / 9, 9);
      expect(r.emulated.e2eMs).toBeCloseTo(prefill + transferMs(config, n) + decode, 9);
      // Measured wall time is reported apart from it, and is positive.
      expect(r.measured.totalMs).toBeGreaterThan(0);
      const names = r.timeline.map((t) => t.event);
      for (const e of [
        'received',
        'admitted',
        'prefill_queued',
        'prefill_start',
        'prefill_end',
        'kv_put',
        'kv_get',
        'decode_start',
        'first_token',
        'completed',
      ]) {
        expect(names).toContain(e);
      }
    } finally {
      await h.close();
    }
  });

  it('at timeScale 1 the request takes at least its emulated time in wall time', async () => {
    const h = createHarness({ timeScale: 1 });
    try {
      const r = await h.run([{ role: 'user', content: 'pace me' }], { maxTokens: 20 }, 'colocated');
      expect(r.measured.totalMs).toBeGreaterThanOrEqual(r.emulated.e2eMs * 0.95);
    } finally {
      await h.close();
    }
  });
});

/** A KV store that loses or damages the next blob it is asked for. */
class FaultyKv implements KvStore {
  mode: 'lose' | 'corrupt' | 'none' = 'none';
  constructor(private readonly inner: KvStore) {}
  put(key: string, bytes: Uint8Array, ttlMs: number): Promise<void> {
    return this.inner.put(key, bytes, ttlMs);
  }
  async get(key: string): Promise<Uint8Array | null> {
    const bytes = await this.inner.get(key);
    if (this.mode === 'lose') return null;
    if (this.mode === 'corrupt' && bytes) {
      const copy = bytes.slice();
      copy[Math.floor(copy.length / 2)]! ^= 0xff;
      return copy;
    }
    return bytes;
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  count(): Promise<number> {
    return this.inner.count();
  }
}

describe('missing or corrupt KV follows the stated policy', () => {
  const longPrompt = prompts()[5]!; // large enough to go through the KV store, not inline
  const cases = [
    { mode: 'lose', code: 'kv_missing' },
    { mode: 'corrupt', code: 'kv_corrupt' },
  ] as const;

  it.each(cases)('policy fail: a $mode blob ends the request failed with $code', async ({ mode, code }) => {
    const kv = new FaultyKv(new MemoryKvStore());
    const h = createHarness({ kvFailurePolicy: 'fail' }, { kv });
    try {
      kv.mode = mode;
      const r = await h.run(longPrompt, { maxTokens: 8 }, 'disaggregated');
      expect(r.state).toBe('failed');
      expect(r.error?.code).toBe(code);
      expect(r.error?.message).toContain(r.id);
      expect(await kv.count()).toBe(0);
    } finally {
      await h.close();
    }
  });

  it.each(cases)(
    'policy recompute: a $mode blob is recomputed (attempt 2) and the output is unchanged',
    async ({ mode }) => {
      const kv = new FaultyKv(new MemoryKvStore());
      const h = createHarness({ kvFailurePolicy: 'recompute' }, { kv });
      try {
        const clean = await h.run(longPrompt, { maxTokens: 8, temperature: 0.7, seed: 3 }, 'disaggregated');
        kv.mode = mode;
        const r = await h.run(longPrompt, { maxTokens: 8, temperature: 0.7, seed: 3 }, 'disaggregated');
        expect(r.state).toBe('completed');
        expect(r.attempt).toBe(2);
        expect(tokens(r)).toBe(tokens(clean));
        expect(r.timeline.some((t) => t.event === 'prefill_start' && t.detail?.recompute === true)).toBe(true);
        expect(await kv.count()).toBe(0);
      } finally {
        await h.close();
      }
    },
  );
});

describe('cancellation, deadlines and admission', () => {
  let h: ReturnType<typeof createHarness>;
  beforeAll(() => {
    h = createHarness({ timeScale: 1, requestTimeoutMs: 2000 });
  });
  afterAll(async () => h.close());

  it('a cancelled request stops decoding and frees its KV', async () => {
    const { done, result } = await h.submit(prompts()[4]!, { maxTokens: 2000 }, 'disaggregated');
    expect(result.accepted).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 150));
    await h.runtime.cancel(result.record.id);
    const r = await done;
    expect(r.state).toBe('cancelled');
    expect(r.completionTokens).toBeLessThan(2000);
    expect(await h.kv.count()).toBe(0);
  });

  it('a request past its deadline ends with a timeout error instead of running on', async () => {
    // 4,000 tokens at ~2.2 ms per emulated step would take ~9 s; the deadline is 2 s.
    const r = await h.run([{ role: 'user', content: 'a long answer please' }], { maxTokens: 4000 }, 'disaggregated');
    expect(r.state).toBe('failed');
    expect(r.error?.code).toBe('timeout');
    expect(r.measured.totalMs).toBeLessThan(4000);
  });

  it('over the prefill queue limit a request is rejected at once with a Retry-After, and no record is stored for it', async () => {
    const small = createHarness({ timeScale: 1, maxPrefillQueue: 1 });
    try {
      const submissions = await Promise.all(
        Array.from({ length: 4 }, () => small.submit(prompts()[5]!, { maxTokens: 4 }, 'disaggregated')),
      );
      const rejected = submissions.filter((s) => !s.result.accepted);
      expect(rejected.length).toBeGreaterThan(0);
      for (const s of rejected) {
        if (s.result.accepted) continue;
        expect(s.result.decision.retryAfterSeconds).toBeGreaterThanOrEqual(1);
        expect(s.result.record.state).toBe('rejected');
        // Overload must not multiply store writes: a rejection is counted in metrics, never stored.
        expect(await small.results.get(s.result.record.id)).toBeNull();
        expect((await s.done).state).toBe('rejected');
      }
      const accepted = await Promise.all(submissions.filter((s) => s.result.accepted).map((s) => s.done));
      expect(accepted.every((r) => r.state === 'completed')).toBe(true);
    } finally {
      await small.close();
    }
  });
});

describe('poison descriptors', () => {
  it('are given back until the queue dead-letters them, and the worker keeps serving', async () => {
    const h = createHarness();
    try {
      await h.queue.send('{"v": 1, "this is": "not a descriptor"');
      for (let i = 0; i < 100 && (await h.queue.deadLetters()).length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await h.queue.deadLetters()).toHaveLength(1);
      const r = await h.run([{ role: 'user', content: 'still there?' }], { maxTokens: 4 }, 'disaggregated');
      expect(r.state).toBe('completed');
    } finally {
      await h.close();
    }
  });
});
