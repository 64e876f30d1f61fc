/**
 * Decode's store traffic goes by time, not by token: progress saves at most every progressSaveEveryMs
 * (the first at once, the end always) and cancellation checks every cancelCheckEveryMs, so a fast
 * decode costs a few store round trips and a cancel still lands within the stated bound.
 */
import { describe, expect, it } from 'vitest';
import { MemoryEventBus } from '../../lib/adapters/events-memory';
import { MemoryKvStore } from '../../lib/adapters/kv-memory';
import { MemoryResultStore } from '../../lib/adapters/result-memory';
import { engineConfig } from '../../lib/core/engine/config';
import { DecodeBatcher, type CancellationMarker } from '../../lib/core/engine/decode-stage';
import { newRecord, type RequestEvent, type RequestRecord } from '../../lib/core/engine/record';
import { RequestTracker } from '../../lib/core/engine/tracker';
import type { DecodeSession, GenerationBackend, ResultStore } from '../../lib/core/ports';

const config = engineConfig({ timeScale: 0, colocated: null });

/** Counts reads and writes of a store it wraps. */
class Counting<T> implements ResultStore<T> {
  puts = 0;
  gets = 0;
  constructor(readonly inner: ResultStore<T>) {}
  put(id: string, value: T, ttlMs: number): Promise<void> {
    this.puts += 1;
    return this.inner.put(id, value, ttlMs);
  }
  get(id: string): Promise<T | null> {
    this.gets += 1;
    return this.inner.get(id);
  }
  delete(id: string): Promise<void> {
    return this.inner.delete(id);
  }
}

/** A decode of `tokens` tokens on a wall clock that advances `msPerToken` per step. */
async function decode(
  tokens: number,
  msPerToken: number,
  onStep: (step: number, now: number, cancellations: ResultStore<CancellationMarker>) => Promise<void> = async () =>
    undefined,
): Promise<{
  results: Counting<RequestRecord>;
  cancellations: Counting<CancellationMarker>;
  record: RequestRecord;
}> {
  let now = 1_000_000;
  const wallClockMs = (): number => now;
  const results = new Counting(new MemoryResultStore<RequestRecord>());
  const cancellations = new Counting(new MemoryResultStore<CancellationMarker>());
  const batcher = new DecodeBatcher(config.decodePool, config, {
    clock: { nowMs: wallClockMs, charge: () => Promise.resolve() },
    backend: {} as GenerationBackend,
    kv: new MemoryKvStore(),
    cancellations,
    wallClockMs,
  });
  const record = newRecord({
    id: 'r1',
    model: config.model.id,
    mode: 'disaggregated',
    devices: {},
    promptTokens: 10,
    createdAtMs: now,
  });
  const tracker = new RequestTracker(
    record,
    { results, events: new MemoryEventBus<RequestEvent>(), wallClockMs },
    config.resultTtlMs,
  );
  let step = 0;
  const session: DecodeSession = {
    next: async () => {
      now += msPerToken;
      await onStep(step, now, cancellations);
      step += 1;
      return { id: 1, text: ' w' };
    },
    close: () => undefined,
  };
  await batcher.join({
    tracker,
    session,
    firstToken: null,
    promptTokens: 10,
    sampling: { temperature: 0, topP: 1, seed: 0, maxTokens: tokens },
    deadlineMs: Infinity,
    cancelCheckedAtMs: now,
  });
  return { results, cancellations, record };
}

describe('decode store traffic by time', () => {
  it('a fast 100-token decode saves twice (first token, end) and checks cancellation not at all', async () => {
    const { results, cancellations, record } = await decode(100, 0.01);
    expect(record.state).toBe('completed');
    expect(record.completionTokens).toBe(100);
    expect(results.puts).toBe(2);
    expect(cancellations.gets).toBe(0);
  });

  it('a slow decode saves progress and checks cancellation once per interval, not per token', async () => {
    // 100 tokens at 10 ms each: 1 s of decode, so about ten of each, not a hundred.
    const { results, cancellations } = await decode(100, 10);
    const expected = (100 * 10) / config.progressSaveEveryMs;
    expect(results.puts).toBeGreaterThanOrEqual(expected - 1);
    expect(results.puts).toBeLessThanOrEqual(expected + 2);
    const checks = (100 * 10) / config.cancelCheckEveryMs;
    expect(cancellations.gets).toBeGreaterThanOrEqual(checks - 1);
    expect(cancellations.gets).toBeLessThanOrEqual(checks + 1);
  });

  it('a cancel lands within cancelCheckEveryMs plus one step of being marked', async () => {
    let markedAt = 0;
    const stepMs = 7;
    const { record } = await decode(1000, stepMs, async (step, now, cancellations) => {
      if (step === 30) {
        markedAt = now;
        await cancellations.put('r1', { cancelledAtMs: now }, 60_000);
      }
    });
    expect(record.state).toBe('cancelled');
    const endedAt = record.createdAtMs + record.measured.totalMs;
    expect(endedAt - markedAt).toBeLessThanOrEqual(config.cancelCheckEveryMs + stepMs);
  });
});
