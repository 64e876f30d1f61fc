import { describe, expect, it } from 'vitest';
import { MemoryEventBus } from '../../lib/adapters/events-memory';
import { newRecord, type RequestEvent, type RequestRecord } from '../../lib/core/engine/record';
import { StoreUnavailableError } from '../../lib/core/engine/retry';
import { RequestTracker, TERMINAL_SAVE_RETRY } from '../../lib/core/engine/tracker';
import type { ResultStore } from '../../lib/core/ports';

/** A store whose first write is slow, like a DynamoDB PUT that lands after a later one. */
class ReorderingStore implements ResultStore<RequestRecord> {
  readonly writes: string[] = [];
  private calls = 0;
  async put(_id: string, record: RequestRecord): Promise<void> {
    const snapshot = JSON.stringify(record);
    const delay = this.calls++ === 0 ? 30 : 0;
    await new Promise((resolve) => setTimeout(resolve, delay));
    this.writes.push(JSON.parse(snapshot).state);
  }
  async get(): Promise<RequestRecord | null> {
    return null;
  }
  async delete(): Promise<void> {}
}

describe('RequestTracker', () => {
  it('lands saves in the order they were asked for, so the terminal record is written last', async () => {
    const store = new ReorderingStore();
    const record = newRecord({
      id: 'r1',
      model: 'm',
      mode: 'disaggregated',
      devices: {},
      promptTokens: 3,
      createdAtMs: 0,
    });
    const tracker = new RequestTracker(
      record,
      { results: store, events: new MemoryEventBus<RequestEvent>(), wallClockMs: () => 1 },
      60_000,
    );
    tracker.setState('decoding');
    const progress = tracker.save();
    await new Promise((resolve) => setTimeout(resolve, 1)); // the slow progress write is now under way
    await tracker.finish('completed');
    await progress;
    expect(store.writes).toEqual(['decoding', 'completed']);
  });

  it('keeps the emulated and measured times of each timeline stamp apart', () => {
    let now = 100;
    const record = newRecord({
      id: 'r2',
      model: 'm',
      mode: 'colocated',
      devices: {},
      promptTokens: 3,
      createdAtMs: 100,
    });
    const tracker = new RequestTracker(
      record,
      { results: new ReorderingStore(), events: new MemoryEventBus<RequestEvent>(), wallClockMs: () => now },
      60_000,
    );
    now = 105;
    record.emulated.prefillMs = 42;
    tracker.stamp('prefill_end');
    expect(record.timeline.at(-1)).toEqual({ event: 'prefill_end', measuredMs: 5, emulatedMs: 42 });
  });
});

describe('RequestTracker.finish when the store is down', () => {
  it('still tells listeners the request ended, then reports the save error', async () => {
    const failing: ResultStore<RequestRecord> = {
      put: async () => {
        throw new Error('connection refused');
      },
      get: async () => null,
      delete: async () => undefined,
    };
    const events = new MemoryEventBus<RequestEvent>();
    const record = newRecord({
      id: 'r3',
      model: 'm',
      mode: 'disaggregated',
      devices: {},
      promptTokens: 1,
      createdAtMs: 0,
    });
    const heard: string[] = [];
    events.subscribe('r3', (e) => heard.push(e.type === 'done' ? `done:${e.record.state}` : e.type));
    const tracker = new RequestTracker(record, { results: failing, events, wallClockMs: () => 1 }, 60_000);
    await expect(tracker.finish('failed', { code: 'x', message: 'y' })).rejects.toThrow('connection refused');
    expect(heard).toContain('done:failed');
  });
});

describe('RequestTracker terminal save during a store outage', () => {
  it('tells listeners at once, then saves the terminal record once the store is back', async () => {
    const stored: string[] = [];
    let failures = 2;
    const store: ResultStore<RequestRecord> = {
      async put(_id, record) {
        if (failures > 0) {
          failures -= 1;
          throw new StoreUnavailableError('results', new Error('connect ECONNREFUSED'));
        }
        stored.push(record.state);
      },
      get: async () => null,
      delete: async () => undefined,
    };
    const events = new MemoryEventBus<RequestEvent>();
    const heard: string[] = [];
    events.subscribe('r2', (e) => e.type === 'done' && heard.push(e.record.state));
    const record = newRecord({
      id: 'r2',
      model: 'm',
      mode: 'disaggregated',
      devices: {},
      promptTokens: 3,
      createdAtMs: 0,
    });
    const tracker = new RequestTracker(record, { results: store, events, wallClockMs: () => 1 }, 60_000);
    await expect(tracker.finish('completed')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(heard).toEqual(['completed']);
    expect(stored).toEqual([]);
    await expect.poll(() => stored, { timeout: TERMINAL_SAVE_RETRY.maxDelayMs * 2 }).toEqual(['completed']);
  });
});
