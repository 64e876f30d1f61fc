import { describe, expect, it } from 'vitest';
import { RealClock } from '../../lib/adapters/clock-real';
import { VirtualClock } from '../../lib/adapters/clock-virtual';
import { MemoryKvStore } from '../../lib/adapters/kv-memory';
import { MemoryQueue } from '../../lib/adapters/queue-memory';
import { MemoryResultStore } from '../../lib/adapters/result-memory';
import { describeQueueContract } from '../contracts/queue-contract';

describeQueueContract('MemoryQueue', async (options) => {
  const queue = new MemoryQueue(options);
  return { queue, peer: queue };
});

describe('MemoryQueue', () => {
  it('rejects a non-positive visibility timeout and a maxReceives below 1', () => {
    expect(() => new MemoryQueue({ visibilityTimeoutMs: 0, maxReceives: 1 })).toThrow(/visibilityTimeoutMs/);
    expect(() => new MemoryQueue({ visibilityTimeoutMs: 100, maxReceives: 0 })).toThrow(/maxReceives/);
    expect(() => new MemoryQueue({ visibilityTimeoutMs: 100, maxReceives: 1.5 })).toThrow(/maxReceives/);
  });

  it('rejects sends after close', async () => {
    const queue = new MemoryQueue({ visibilityTimeoutMs: 100, maxReceives: 1 });
    await queue.close();
    await expect(queue.send('x')).rejects.toThrow(/closed/);
  });
});

/** A hand-driven time source, so TTL tests don't sleep. */
function manualTime(start = 1_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('MemoryKvStore', () => {
  it('returns the stored bytes until the TTL passes, then null', async () => {
    const time = manualTime();
    const kv = new MemoryKvStore({ now: time.now });
    await kv.put('k', new Uint8Array([1, 2, 3]), 100);
    time.advance(99);
    expect(await kv.get('k')).toEqual(new Uint8Array([1, 2, 3]));
    time.advance(1);
    expect(await kv.get('k')).toBeNull();
  });

  it('counts only live blobs, sweeping expired ones', async () => {
    const time = manualTime();
    const kv = new MemoryKvStore({ now: time.now });
    await kv.put('short', new Uint8Array(1), 50);
    await kv.put('long', new Uint8Array(1), 500);
    expect(await kv.count()).toBe(2);
    time.advance(50);
    expect(await kv.count()).toBe(1);
    await kv.delete('long');
    expect(await kv.count()).toBe(0);
  });

  it('returns null for a missing key and after delete', async () => {
    const kv = new MemoryKvStore();
    expect(await kv.get('nope')).toBeNull();
    await kv.put('k', new Uint8Array([9]), 10_000);
    await kv.delete('k');
    expect(await kv.get('k')).toBeNull();
  });

  it('keeps its own copy, unaffected by later writes to the caller’s or the returned array', async () => {
    const kv = new MemoryKvStore();
    const source = new Uint8Array([1, 2, 3, 4, 5]);
    await kv.put('k', source.subarray(1, 4), 10_000);
    source.fill(0);
    const first = await kv.get('k');
    expect(first).toEqual(new Uint8Array([2, 3, 4]));
    first!.fill(7);
    expect(await kv.get('k')).toEqual(new Uint8Array([2, 3, 4]));
  });

  it('with ownership handover keeps and returns the very bytes it was given, no copy either way', async () => {
    const kv = new MemoryKvStore({ ownership: 'handover' });
    const blob = new Uint8Array([1, 2, 3]);
    await kv.put('k', blob, 10_000);
    expect(await kv.get('k')).toBe(blob);
    await kv.delete('k');
    expect(await kv.get('k')).toBeNull();
  });

  it('take returns the bytes and forgets them, null when missing; copying says it is done with put bytes', async () => {
    const copying = new MemoryKvStore();
    const handover = new MemoryKvStore({ ownership: 'handover' });
    expect([copying.copiesOnPut, handover.copiesOnPut]).toEqual([true, false]);
    const blob = new Uint8Array([4, 5, 6]);
    await handover.put('k', blob, 10_000);
    expect(await handover.take('k')).toBe(blob);
    expect(await handover.take('k')).toBeNull();
    await copying.put('k', blob, 10_000);
    expect(await copying.take('k')).toEqual(blob);
    expect(await copying.count()).toBe(0);
  });

  it('rejects a TTL that is not a positive finite number', async () => {
    const kv = new MemoryKvStore();
    await expect(kv.put('k', new Uint8Array(1), 0)).rejects.toThrow(RangeError);
    await expect(kv.put('k', new Uint8Array(1), Number.NaN)).rejects.toThrow(RangeError);
  });
});

describe('MemoryResultStore', () => {
  it('returns a record until its TTL passes, then null', async () => {
    const time = manualTime();
    const results = new MemoryResultStore<{ state: string; tokens: string[] }>({ now: time.now });
    await results.put('r1', { state: 'done', tokens: ['a', 'b'] }, 1000);
    time.advance(999);
    expect(await results.get('r1')).toEqual({ state: 'done', tokens: ['a', 'b'] });
    time.advance(1);
    expect(await results.get('r1')).toBeNull();
  });

  it('stores a snapshot: mutating the record after put does not change what get returns', async () => {
    const results = new MemoryResultStore<{ tokens: string[] }>();
    const record = { tokens: ['a'] };
    await results.put('r1', record, 1000);
    record.tokens.push('b');
    expect(await results.get('r1')).toEqual({ tokens: ['a'] });
  });

  it('forgets a deleted record and rejects what JSON cannot hold', async () => {
    const results = new MemoryResultStore<unknown>();
    await results.put('r1', { ok: true }, 1000);
    await results.delete('r1');
    expect(await results.get('r1')).toBeNull();
    await expect(results.put('r2', undefined, 1000)).rejects.toThrow(TypeError);
  });

  it('sweeps out expired records on its timer, though nothing reads them again', async () => {
    const time = manualTime();
    const results = new MemoryResultStore<{ n: number }>({ now: time.now, sweepEveryMs: 5 });
    try {
      for (let n = 0; n < 50; n++) await results.put(`r${n}`, { n }, 1000);
      await results.put('late', { n: -1 }, 5000);
      time.advance(1000);
      await new Promise((resolve) => setTimeout(resolve, 40));
      expect(results.size).toBe(1);
      expect(await results.get('late')).toEqual({ n: -1 });
    } finally {
      results.close();
    }
  });

  it('holds at most maxEntries, the oldest written evicted first', async () => {
    const results = new MemoryResultStore<{ n: number }>({ maxEntries: 3, sweepEveryMs: 0 });
    for (let n = 0; n < 5; n++) await results.put(`r${n}`, { n }, 60_000);
    await results.put('r2', { n: 22 }, 60_000); // rewritten: now the newest
    await results.put('r5', { n: 5 }, 60_000);
    expect(results.size).toBe(3);
    expect(await results.get('r3')).toBeNull();
    expect(await results.get('r2')).toEqual({ n: 22 });
    expect(await results.get('r4')).toEqual({ n: 4 });
    expect(await results.get('r5')).toEqual({ n: 5 });
  });
});

describe('RealClock', () => {
  it('never sleeps at timeScale 0', async () => {
    const clock = new RealClock({ timeScale: 0 });
    const start = performance.now();
    await clock.charge(60_000);
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('sleeps at least about the emulated time at timeScale 1', async () => {
    const clock = new RealClock({ timeScale: 1 });
    const start = clock.nowMs();
    await clock.charge(100);
    expect(clock.nowMs() - start).toBeGreaterThanOrEqual(90);
  });

  it('sleeps a tenth of the emulated time at timeScale 0.1', async () => {
    const clock = new RealClock({ timeScale: 0.1 });
    const start = clock.nowMs();
    await clock.charge(3000);
    const elapsed = clock.nowMs() - start;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2500);
  });

  it('defaults to timeScale 1 and rejects a negative or non-finite timeScale', () => {
    expect(new RealClock().timeScale).toBe(1);
    expect(() => new RealClock({ timeScale: -1 })).toThrow(/timeScale/);
    expect(() => new RealClock({ timeScale: Number.NaN })).toThrow(/timeScale/);
    expect(() => new RealClock({ timeScale: Number.POSITIVE_INFINITY })).toThrow(/timeScale/);
  });

  it('rejects a negative charge', async () => {
    await expect(new RealClock({ timeScale: 0 }).charge(-1)).rejects.toThrow(RangeError);
  });
});

describe('VirtualClock', () => {
  it('advances by each charge at once, without waiting', async () => {
    const clock = new VirtualClock({ startMs: 10 });
    const start = performance.now();
    await clock.charge(60_000);
    await clock.charge(5);
    expect(clock.nowMs()).toBe(60_015);
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('jumps forward with advanceTo and refuses to go back', () => {
    const clock = new VirtualClock();
    expect(clock.nowMs()).toBe(0);
    clock.advanceTo(250);
    expect(clock.nowMs()).toBe(250);
    expect(() => clock.advanceTo(100)).toThrow(/back/);
    expect(clock.nowMs()).toBe(250);
  });

  it('rejects a negative charge without moving time', async () => {
    const clock = new VirtualClock();
    await expect(clock.charge(-1)).rejects.toThrow(RangeError);
    expect(clock.nowMs()).toBe(0);
  });
});
