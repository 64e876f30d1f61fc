import type { EventBus } from '../core/ports';

/** In-process event bus: listeners per request id. Listener errors are contained, never thrown at publishers. */
export class MemoryEventBus<TEvent> implements EventBus<TEvent> {
  private readonly listeners = new Map<string, Set<(event: TEvent) => void>>();

  publish(requestId: string, event: TEvent): void {
    const set = this.listeners.get(requestId);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(event);
      } catch {
        // A broken subscriber (e.g. a closed socket) must not stop the pipeline.
      }
    }
  }

  subscribe(requestId: string, listener: (event: TEvent) => void): () => void {
    let set = this.listeners.get(requestId);
    if (!set) {
      set = new Set();
      this.listeners.set(requestId, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(requestId);
    };
  }

  /** Requests with at least one listener (for leak checks in tests). */
  get subscribedRequests(): number {
    return this.listeners.size;
  }
}
