/**
 * Keeps a request's record as a stage works on it: timeline stamps with emulated and measured
 * time kept apart, state changes, and writes to the ResultStore and the EventBus.
 */
import type { EventBus, ResultStore } from '../ports';
import { retryDelayMs, StoreUnavailableError, type RetryPolicy } from './retry';

/**
 * A terminal save that found the store down is tried again in the background, about 15 s in all: a record left
 * non-terminal would read as running for its whole TTL once the store is back.
 */
export const TERMINAL_SAVE_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 250, maxDelayMs: 4000 };
import { isTerminal, type RequestEvent, type RequestRecord, type RequestState, type TimelineEventName } from './record';

export interface TrackerDeps {
  readonly results: ResultStore<RequestRecord>;
  readonly events: EventBus<RequestEvent>;
  /** Epoch milliseconds with sub-millisecond precision (measured time, comparable across processes). */
  readonly wallClockMs: () => number;
}

export class RequestTracker {
  constructor(
    readonly record: RequestRecord,
    private readonly deps: TrackerDeps,
    private readonly resultTtlMs: number,
  ) {}

  /** Measured wall ms since the request was received. */
  elapsedMs(): number {
    return this.deps.wallClockMs() - this.record.createdAtMs;
  }

  /** Emulated device ms charged to this request so far. */
  emulatedSoFar(): number {
    const e = this.record.emulated;
    return e.prefillMs + e.transferMs + this.decodeEmulatedMs;
  }

  /** Emulated ms of all decode steps charged so far (first step included). */
  decodeEmulatedMs = 0;

  stamp(event: TimelineEventName, detail?: Record<string, string | number | boolean>): number {
    const measuredMs = this.elapsedMs();
    const stamp = { event, measuredMs, emulatedMs: this.emulatedSoFar(), ...(detail ? { detail } : {}) };
    this.record.timeline.push(stamp);
    const { createdAtMs, mode } = this.record;
    this.deps.events.publish(this.record.id, { type: 'timeline', stamp, createdAtMs, mode });
    return measuredMs;
  }

  /** The measured ms at which `event` was first stamped, or undefined. */
  stampedAt(event: TimelineEventName): number | undefined {
    return this.record.timeline.find((t) => t.event === event)?.measuredMs;
  }

  publish(event: RequestEvent): void {
    this.deps.events.publish(this.record.id, event);
  }

  setState(state: RequestState): void {
    this.record.state = state;
    this.deps.events.publish(this.record.id, { type: 'state', state });
  }

  private lastSave: Promise<void> = Promise.resolve();
  /** deps.wallClockMs() when this tracker last asked for a save; -Infinity before the first. */
  private lastSaveAskedMs = -Infinity;

  /**
   * Writes the record. Saves are chained so they land in the order they were asked for: stores
   * like DynamoDB do not order concurrent writes, and a late progress save must never overwrite
   * the terminal record. A failed save does not block the ones after it.
   */
  save(): Promise<void> {
    this.lastSaveAskedMs = this.deps.wallClockMs();
    const next = this.lastSave
      .catch(() => undefined)
      .then(() => this.deps.results.put(this.record.id, this.record, this.resultTtlMs));
    this.lastSave = next;
    return next;
  }

  /**
   * A progress save, unless this tracker asked for one less than `everyMs` ago: null when skipped. So a
   * reader of the store sees progress at most `everyMs` stale (plus the write), and the first progress
   * after a stage picks the request up is saved at once. Costs a store write per `everyMs`, not per token.
   */
  saveProgress(everyMs: number): Promise<void> | null {
    if (this.deps.wallClockMs() - this.lastSaveAskedMs < everyMs) return null;
    return this.save();
  }

  /**
   * Ends the request in a terminal state, saves it and tells listeners. Idempotent. Listeners hear the
   * end even when the save fails (a store outage must not leave a client waiting); the error is rethrown.
   */
  async finish(
    state: Extract<RequestState, 'completed' | 'failed' | 'cancelled' | 'rejected'>,
    error?: { code: string; message: string },
  ): Promise<void> {
    if (!this.end(state, error)) return;
    try {
      await this.save();
    } catch (err) {
      if (err instanceof StoreUnavailableError) this.retryTerminalSave(2);
      throw err;
    } finally {
      this.announceEnd();
    }
  }

  /** Tries the terminal save again after a backoff (TERMINAL_SAVE_RETRY), on a timer that never holds the process. */
  private retryTerminalSave(attempt: number): void {
    if (attempt > TERMINAL_SAVE_RETRY.attempts) return;
    setTimeout(
      () => {
        this.save().catch((err: unknown) => {
          if (err instanceof StoreUnavailableError) this.retryTerminalSave(attempt + 1);
        });
      },
      retryDelayMs(attempt, TERMINAL_SAVE_RETRY),
    ).unref();
  }

  /**
   * Ends a request refused at admission: its record is never stored (the client got no id to read it by, and
   * overload must not multiply store writes; the rejection is counted in metrics instead). Listeners hear it.
   */
  reject(error: { code: string; message: string }): void {
    if (this.end('rejected', error)) this.announceEnd();
  }

  /** Moves the record to a terminal state; false when it already was in one. */
  private end(
    state: Extract<RequestState, 'completed' | 'failed' | 'cancelled' | 'rejected'>,
    error?: { code: string; message: string },
  ): boolean {
    if (isTerminal(this.record.state)) return false;
    this.record.state = state;
    if (error) this.record.error = error;
    const at = this.stamp(state, error ? { code: error.code } : undefined);
    this.record.measured.totalMs = at;
    this.record.emulated.e2eMs = this.emulatedSoFar();
    return true;
  }

  private announceEnd(): void {
    this.deps.events.publish(this.record.id, { type: 'state', state: this.record.state });
    this.deps.events.publish(this.record.id, { type: 'done', record: this.record });
  }
}
