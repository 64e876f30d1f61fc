import { describe, expect, it } from 'vitest';
import { DashboardFeed, type FeedEvent } from '../../lib/local/dashboard-feed';

const occupancy = () => ({ prefillQueue: 1, decodeQueue: 2, decodeBatch: 3, kvBlobsHeld: 4 });

function stamp(feed: DashboardFeed, i: number, detail?: Record<string, number>): void {
  feed.observe(`r${i}`, {
    type: 'timeline',
    stamp: { event: 'prefill_start', measuredMs: i, emulatedMs: 2 * i, ...(detail ? { detail } : {}) },
    createdAtMs: 1000,
    mode: 'disaggregated',
  });
}

describe('DashboardFeed', () => {
  it('replays the last 600 events oldest first to a late page, then the occupancy, then new events', () => {
    const feed = new DashboardFeed(occupancy, () => 42);
    for (let i = 0; i < 650; i++) stamp(feed, i, i === 649 ? { bytes: 7 } : undefined);
    feed.observe('r0', { type: 'token', index: 0, text: 'secret' });
    const heard: FeedEvent[] = [];
    const off = feed.subscribe((e) => heard.push(e));
    expect(heard).toHaveLength(601);
    const ids = heard.slice(0, 600).map((e) => (e.kind === 'stamp' ? e.id : e.kind));
    expect(ids[0]).toBe('r50');
    expect(ids[599]).toBe('r649');
    expect(ids).toEqual(Array.from({ length: 600 }, (_, i) => `r${i + 50}`));
    expect(heard[599]).toEqual({
      kind: 'stamp',
      id: 'r649',
      mode: 'disaggregated',
      createdAtMs: 1000,
      event: 'prefill_start',
      measuredMs: 649,
      emulatedMs: 1298,
      detail: { bytes: 7 },
    });
    expect('detail' in heard[598]!).toBe(false);
    expect(heard[600]).toEqual({ kind: 'occupancy', atMs: 42, ...occupancy() });
    stamp(feed, 700);
    expect(heard).toHaveLength(602);
    off();
    stamp(feed, 701);
    expect(heard).toHaveLength(602);
    expect(feed.subscribers).toBe(0);
    feed.close();
  });

  it('replays fewer than 600 events in order', () => {
    const feed = new DashboardFeed(occupancy, () => 0);
    for (let i = 0; i < 3; i++) stamp(feed, i);
    const heard: FeedEvent[] = [];
    feed.subscribe((e) => heard.push(e));
    expect(heard.map((e) => (e.kind === 'stamp' ? e.id : e.kind))).toEqual(['r0', 'r1', 'r2', 'occupancy']);
    feed.close();
  });
});
