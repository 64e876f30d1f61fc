import { describe, expect, it } from 'vitest';
import { MemoryEventBus } from '../../lib/adapters/events-memory';

describe('MemoryEventBus', () => {
  it('contains a throwing watcher or listener and still delivers to the others', () => {
    const bus = new MemoryEventBus<number>();
    const heard: string[] = [];
    bus.watchAll(() => {
      throw new Error('broken watcher');
    });
    bus.watchAll((id, n) => heard.push(`watch ${id} ${n}`));
    bus.subscribe('a', () => {
      throw new Error('broken listener');
    });
    bus.subscribe('a', (n) => heard.push(`a ${n}`));
    expect(() => bus.publish('a', 1)).not.toThrow();
    expect(heard).toEqual(['watch a 1', 'a 1']);
  });

  it('delivers to a single listener, and one added during delivery hears only the next event', () => {
    const bus = new MemoryEventBus<number>();
    const heard: string[] = [];
    let added = false;
    bus.subscribe('a', (n) => {
      heard.push(`first ${n}`);
      if (!added) {
        added = true;
        bus.subscribe('a', (m) => heard.push(`second ${m}`));
      }
    });
    bus.publish('a', 1);
    bus.publish('a', 2);
    bus.publish('b', 3);
    expect(heard).toEqual(['first 1', 'first 2', 'second 2']);
  });

  it('forgets a request once its last listener unsubscribes', () => {
    const bus = new MemoryEventBus<number>();
    const heard: number[] = [];
    const off = bus.subscribe('a', (n) => heard.push(n));
    expect(bus.subscribedRequests).toBe(1);
    bus.publish('a', 1);
    off();
    bus.publish('a', 2);
    expect(heard).toEqual([1]);
    expect(bus.subscribedRequests).toBe(0);
  });
});
