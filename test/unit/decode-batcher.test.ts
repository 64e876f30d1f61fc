/**
 * The live decode batcher applies the shared batching policy (batching.ts): a job joins the running
 * batch only while the batch's KV at final context fits the decode pool beside the weights, first in
 * first out, and a job that could never fit ends failed instead of waiting.
 */
import { describe, expect, it } from 'vitest';
import { MemoryEventBus } from '../../lib/adapters/events-memory';
import { MemoryKvStore } from '../../lib/adapters/kv-memory';
import { MemoryResultStore } from '../../lib/adapters/result-memory';
import { kvBytesForContext } from '../../lib/core/emulator';
import { engineConfig } from '../../lib/core/engine/config';
import { DecodeBatcher, type CancellationMarker, type DecodeJob } from '../../lib/core/engine/decode-stage';
import { newRecord, type RequestEvent, type RequestRecord } from '../../lib/core/engine/record';
import { RequestTracker } from '../../lib/core/engine/tracker';
import type { DecodeSession, GeneratedToken, GenerationBackend } from '../../lib/core/ports';

// Llama 3.3 70B decoded on cs3x4: about 52,800 tokens of KV fit beside the weights.
const config = engineConfig({ timeScale: 0, decode: 'cs3x4', colocated: null });

interface Harness {
  readonly batcher: DecodeBatcher;
  /** State changes and ends of sequence in order, as `id:state` and `id:eos`. */
  readonly log: string[];
  job(id: string, promptTokens: number, maxTokens: number, session?: FakeSession): DecodeJob;
}

/** A session that yields its tokens, then ends; `hold()` makes the next call wait for `release()`. */
class FakeSession implements DecodeSession {
  closed = false;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  constructor(
    private remaining: number,
    private readonly onEnd: () => void = () => undefined,
  ) {}
  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }
  release(): void {
    this.open?.();
  }
  async next(): Promise<GeneratedToken | null> {
    if (this.gate) await this.gate;
    if (this.remaining <= 0) {
      this.onEnd();
      return null;
    }
    this.remaining -= 1;
    return { id: 1, text: ' word' };
  }
  close(): void {
    this.closed = true;
  }
}

function harness(): Harness {
  const results = new MemoryResultStore<RequestRecord>();
  const events = new MemoryEventBus<RequestEvent>();
  const wallClockMs = (): number => Date.now();
  const log: string[] = [];
  const batcher = new DecodeBatcher(config.decodePool, config, {
    clock: { nowMs: wallClockMs, charge: () => Promise.resolve() },
    // The batcher only steps sessions it is given; it never calls the backend.
    backend: {} as GenerationBackend,
    kv: new MemoryKvStore(),
    cancellations: new MemoryResultStore<CancellationMarker>(),
    wallClockMs,
  });
  const job: Harness['job'] = (
    id,
    promptTokens,
    maxTokens,
    session = new FakeSession(0, () => log.push(`${id}:eos`)),
  ) => {
    const record = newRecord({
      id,
      model: config.model.id,
      mode: 'disaggregated',
      devices: {},
      promptTokens,
      createdAtMs: 0,
    });
    events.subscribe(id, (e) => {
      if (e.type === 'state') log.push(`${id}:${e.state}`);
    });
    return {
      tracker: new RequestTracker(record, { results, events, wallClockMs }, 60_000),
      session,
      firstToken: { id: 1, text: 'first' },
      promptTokens,
      sampling: { temperature: 0, topP: 1, seed: 0, maxTokens },
      deadlineMs: Infinity,
    };
  };
  return { batcher, log, job };
}

describe('DecodeBatcher: memory-aware continuous batching', () => {
  it('holds a job whose KV would overflow the pool until a running one leaves, and nobody jumps the line', async () => {
    const { batcher, log, job } = harness();
    // 100 + 30,000 tokens each: one fits beside the weights, two (60,200) do not.
    expect(batcher.kvNeedOf(job('x', 100, 30_000))).toBe(kvBytesForContext(config.model, 30_100));
    expect(2 * batcher.kvNeedOf(job('y', 100, 30_000))).toBeGreaterThan(batcher.kvBudgetBytes);
    const longSession = new FakeSession(3, () => log.push('a:eos'));
    longSession.hold();
    const a = job('a', 100, 30_000, longSession);
    const b = job('b', 100, 30_000);
    const small = job('small', 100, 16);
    const doneA = batcher.join(a);
    const doneB = batcher.join(b);
    const doneSmall = batcher.join(small);

    expect(batcher.size).toBe(1);
    // b waits for memory; the small one would fit but waits behind b (first in first out).
    expect(batcher.waiting).toBe(2);
    expect(batcher.hasRoom()).toBe(false);
    expect(batcher.room()).toBe(0);
    expect(b.tracker.record.state).toBe('queued');

    longSession.release();
    await Promise.all([doneA, doneB, doneSmall]);
    // b starts only once a's sequence has ended and it left the batch; small follows b.
    expect(log.filter((e) => !e.endsWith(':completed'))).toEqual([
      'a:decoding',
      'a:eos',
      'b:decoding',
      'small:decoding',
      'b:eos',
      'small:eos',
    ]);
    expect([a, b, small].map((j) => j.tracker.record.state)).toEqual(['completed', 'completed', 'completed']);
    expect(b.tracker.record.timeline.find((e) => e.event === 'decode_start')?.detail).toEqual({ batch: 1 });
    expect(batcher.size).toBe(0);
    expect(batcher.hasRoom()).toBe(true);
  });

  it('runs jobs that fit together in one batch', async () => {
    const { batcher, job } = harness();
    const jobs = [job('a', 100, 16), job('b', 100, 16), job('c', 100, 16)];
    const done = jobs.map((j) => batcher.join(j));
    expect(batcher.size).toBe(3);
    expect(batcher.waiting).toBe(0);
    await Promise.all(done);
    expect(jobs.map((j) => j.tracker.record.state)).toEqual(['completed', 'completed', 'completed']);
  });

  it('ends a job whose own KV exceeds the whole budget failed, with the numbers, instead of holding it', async () => {
    const { batcher, job } = harness();
    const session = new FakeSession(5);
    const huge = job('huge', 2000, 60_000, session);
    await batcher.join(huge);
    const record = huge.tracker.record;
    expect(record.state).toBe('failed');
    expect(record.error?.code).toBe('too_large_for_decode_memory');
    expect(record.error?.message).toMatch(
      /needs 20\.3 GB of KV at its final context \(2000 prompt \+ 60000 max tokens = 62000 tokens\), but the decode pool cs3x4 holds only 17\.3 GB of KV: 4 x 44\.0 GB x 90% usable minus 141\.1 GB of llama-3\.3-70b weights/,
    );
    expect(session.closed).toBe(true);
    expect(batcher.size).toBe(0);
    expect(batcher.waiting).toBe(0);
    expect(batcher.hasRoom()).toBe(true);
  });
});
