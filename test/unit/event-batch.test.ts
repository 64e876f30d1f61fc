/**
 * The events a stage thread sends the main thread in one message (lib/local/stage-threads.ts EventBatch): grouped
 * by request, a run of tokens as one array; read back, every event arrives, each request's in the order published.
 */
import { describe, expect, it } from 'vitest';
import type { RequestEvent } from '../../lib/core/engine/record';
import { EventBatch } from '../../lib/local/stage-threads';

type Pair = [string, RequestEvent];

function roundTrip(events: readonly Pair[]): { json: string; back: Pair[] } {
  const batch = new EventBatch();
  for (const [id, event] of events) batch.add(id, event);
  const json = batch.take();
  const back: Pair[] = [];
  EventBatch.forEach(json, (id, event) => back.push([id, event]));
  return { json, back };
}

const token = (index: number, text = ` t${index}`): RequestEvent => ({ type: 'token', index, text });
const ofRequest = (pairs: readonly Pair[], id: string): RequestEvent[] =>
  pairs.filter(([i]) => i === id).map(([, e]) => e);

describe('EventBatch', () => {
  it("delivers every event, each request's in order, interleaved requests and all", () => {
    const events: Pair[] = [
      ['a', { type: 'state', state: 'decoding' }],
      ['a', token(0)],
      ['b', token(7)],
      ['a', token(1)],
      ['b', token(8)],
      ['a', token(2)],
      ['b', { type: 'state', state: 'completed' }],
      [
        'a',
        {
          type: 'timeline',
          stamp: { event: 'tokens', measuredMs: 1, emulatedMs: 2 },
          createdAtMs: 3,
          mode: 'disaggregated',
        },
      ],
      ['a', token(3)],
      ['c', token(0, '')],
    ];
    const { back } = roundTrip(events);
    expect(back).toHaveLength(events.length);
    for (const id of ['a', 'b', 'c']) expect(ofRequest(back, id)).toEqual(ofRequest(events, id));
  });

  it('sends a run of tokens as one index and its texts, and a gap in the indices starts another run', () => {
    const events: Pair[] = [token(0), token(1), token(2), token(5), token(6), token(5)].map((e) => ['r', e]);
    const { json, back } = roundTrip(events);
    expect(JSON.parse(json)).toEqual([
      [
        'r',
        [
          [0, ' t0', ' t1', ' t2'],
          [5, ' t5', ' t6'],
          [5, ' t5'],
        ],
      ],
    ]);
    expect(back).toEqual(events);
  });

  it('is empty after take, and an empty batch reads back as nothing', () => {
    const batch = new EventBatch();
    batch.add('a', token(0));
    expect(batch.size).toBe(1);
    batch.take();
    expect(batch.size).toBe(0);
    const back: Pair[] = [];
    EventBatch.forEach(batch.take(), (id, event) => back.push([id, event]));
    expect(back).toEqual([]);
  });
});
