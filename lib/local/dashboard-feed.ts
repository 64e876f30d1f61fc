/**
 * What the live dashboard is fed (GET /v1/dashboard/events, server-sent events, behind the API key): every
 * request's timeline stamps as they are made and its figures when it ends, and the pipeline's occupancy twice
 * a second. Ids, stages, sizes and times only: no prompt or completion text ever enters the feed. A page that
 * connects late gets the last few hundred events first, so requests already in flight show up at once.
 */
import type { Occupancy } from './runtime';
import type { RequestEvent } from '../core/engine/record';
import { requestFigures } from '../core/engine/request-figures';

/** One event of the feed, as the page receives it (JSON in the SSE `data`). */
export type FeedEvent =
  | {
      readonly kind: 'stamp';
      readonly id: string;
      readonly mode: string;
      /** Epoch ms the request was received. */
      readonly createdAtMs: number;
      readonly event: string;
      readonly measuredMs: number;
      readonly emulatedMs: number;
      readonly detail?: Readonly<Record<string, string | number | boolean>>;
    }
  | {
      readonly kind: 'end';
      readonly id: string;
      readonly mode: string;
      readonly createdAtMs: number;
      readonly state: string;
      readonly code?: string;
      readonly promptTokens: number;
      readonly outputTokens: number;
      readonly emulated: Readonly<Record<string, number>>;
      readonly measured: Readonly<Record<string, number>>;
    }
  | ({ readonly kind: 'occupancy'; readonly atMs: number; readonly kvBlobsHeld: number } & Occupancy);

/** Events kept for a page that connects late. */
const REPLAY = 600;
const OCCUPANCY_EVERY_MS = 500;

export class DashboardFeed {
  /** The last REPLAY events, a ring: `recent[next]` is the oldest once it is full (no shifting per event). */
  private readonly recent: FeedEvent[] = [];
  private next = 0;
  private readonly listeners = new Set<(event: FeedEvent) => void>();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly occupancy: () => Occupancy & { readonly kvBlobsHeld: number },
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Every pipeline event (MemoryEventBus.watchAll). Token events (text) are never taken. */
  observe(id: string, event: RequestEvent): void {
    if (event.type === 'timeline') {
      const s = event.stamp;
      const stamp: FeedEvent = {
        kind: 'stamp',
        id,
        mode: event.mode,
        createdAtMs: event.createdAtMs,
        event: s.event,
        measuredMs: s.measuredMs,
        emulatedMs: s.emulatedMs,
      };
      this.emit(s.detail ? { ...stamp, detail: s.detail } : stamp);
    } else if (event.type === 'done') {
      const r = event.record;
      const figures = requestFigures(r);
      this.emit({
        kind: 'end',
        id,
        mode: r.mode,
        createdAtMs: r.createdAtMs,
        state: r.state,
        ...(r.error ? { code: r.error.code } : {}),
        promptTokens: r.promptTokens,
        outputTokens: r.completionTokens,
        emulated: { ...figures.emulated },
        measured: { ...figures.measured },
      });
    }
  }

  /** Replays the recent events to `listener`, then sends it every new one; returns the unsubscribe function. */
  subscribe(listener: (event: FeedEvent) => void): () => void {
    const n = this.recent.length;
    for (let i = 0; i < n; i++) listener(this.recent[(this.next + i) % n]!);
    listener(this.snapshot());
    this.listeners.add(listener);
    this.timer ??= setInterval(() => this.broadcast(this.snapshot()), OCCUPANCY_EVERY_MS);
    this.timer.unref?.();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  close(): void {
    this.listeners.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private snapshot(): FeedEvent {
    return { kind: 'occupancy', atMs: this.nowMs(), ...this.occupancy() };
  }

  private emit(event: FeedEvent): void {
    if (this.recent.length < REPLAY) this.recent.push(event);
    else {
      this.recent[this.next] = event;
      this.next = (this.next + 1) % REPLAY;
    }
    if (this.listeners.size > 0) this.broadcast(event);
  }

  private broadcast(event: FeedEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A page that went away is unsubscribed by its stream's cancel.
      }
    }
  }
}
