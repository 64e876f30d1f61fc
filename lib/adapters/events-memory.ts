import type { EventBus } from '../core/ports';

/** In-process event bus: listeners per request id. Listener errors are contained, never thrown at publishers. */
export class MemoryEventBus<TEvent> implements EventBus<TEvent> {
  private readonly listeners = new Map<string, Set<(event: TEvent) => void>>();
  private readonly watchers = new Set<(requestId: string, event: TEvent) => void>();

  /**
   * Runs once per generated token, so it allocates nothing in the usual case (no closure per call, no copy of
   * a one-listener set). A listener added while an event is delivered hears the next event, not this one.
   */
  publish(requestId: string, event: TEvent): void {
    for (const watcher of this.watchers) {
      try {
        watcher(requestId, event);
      } catch {
        // Contained: a broken subscriber (e.g. a closed socket) must not stop the pipeline.
      }
    }
    const set = this.listeners.get(requestId);
    if (!set) return;
    if (set.size === 1) {
      const [only] = set;
      deliver(only!, event);
      return;
    }
    for (const listener of [...set]) deliver(listener, event);
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

  /** Hears every request's events (metrics, request logs, the live dashboard); returns the unsubscribe function. */
  watchAll(watcher: (requestId: string, event: TEvent) => void): () => void {
    this.watchers.add(watcher);
    return () => void this.watchers.delete(watcher);
  }

  /** Requests with at least one listener (for leak checks in tests). */
  get subscribedRequests(): number {
    return this.listeners.size;
  }
}

/** A broken subscriber (e.g. a closed socket) must not stop the pipeline. */
function deliver<TEvent>(listener: (event: TEvent) => void, event: TEvent): void {
  try {
    listener(event);
  } catch {
    // Contained: see above.
  }
}
