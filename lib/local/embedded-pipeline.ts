/**
 * The HTTP application's pipeline port over the embedded runtime: a request's progress comes from the in-process
 * event bus (tokens as they are produced, then the terminal record), subscribed before the request is submitted
 * so no event is missed.
 */
import type { CompletionPipeline, RequestProgress, Submission } from '../core/api/pipeline-port';
import type { RequestEvent, RequestRecord } from '../core/engine/record';
import type { SubmitRequest } from '../core/engine/submission';
import type { EventBus } from '../core/ports';
import type { RequestSpans } from './request-spans';
import type { PipelineRuntime } from './runtime';

export function embeddedPipeline(
  runtime: PipelineRuntime,
  events: EventBus<RequestEvent>,
  spans?: RequestSpans,
): CompletionPipeline {
  return {
    async submit(request: SubmitRequest, watch: { deadlineMs: number }): Promise<Submission> {
      const progress = new EventProgress(events, request.id, watch.deadlineMs, () => runtime.get(request.id));
      // The request's own span, under the client's traceparent; its stages trace under it.
      const traceparent = spans ? spans.begin(request.id, request.traceparent) : request.traceparent;
      const submitted = await runtime.submit({ ...request, ...(traceparent ? { traceparent } : {}) });
      if (!submitted.accepted) {
        progress.close();
        spans?.abandon(request.id, 'overloaded');
        return submitted;
      }
      return { accepted: true, record: submitted.record, progress };
    },
    get: (id) => runtime.get(id),
    cancel: (id) => runtime.cancel(id),
    health: () => Promise.resolve(runtime.occupancy()),
  };
}

/** Tokens and the terminal record of one request, from the event bus, as async iteration. */
class EventProgress implements RequestProgress {
  private readonly queued: string[] = [];
  private record: RequestRecord | null = null;
  private wake: (() => void) | null = null;
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(
    events: EventBus<RequestEvent>,
    private readonly id: string,
    private readonly deadlineMs: number,
    private readonly read: () => Promise<RequestRecord | null>,
  ) {
    this.unsubscribe = events.subscribe(id, (event) => {
      if (event.type === 'token') this.queued.push(event.text);
      else if (event.type === 'done') this.record = event.record;
      else return;
      this.notify();
    });
  }

  async *pieces(): AsyncGenerator<string> {
    for (;;) {
      while (this.queued.length > 0) yield this.queued.shift()!;
      if (this.record || this.closed || !(await this.waitForEvent())) return;
    }
  }

  async outcome(): Promise<RequestRecord> {
    while (!this.record && !this.closed && (await this.waitForEvent()));
    if (this.record) return this.record;
    // The deadline (or close) came first: the record as stored now.
    const stored = await this.read();
    if (stored === null) throw new Error(`request ${this.id} has no record`);
    return stored;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** False when the deadline passed first. */
  private waitForEvent(): Promise<boolean> {
    const left = this.deadlineMs - Date.now();
    if (left <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = Number.isFinite(left) ? setTimeout(() => resolve(false), left) : null;
      this.wake = () => {
        if (timer) clearTimeout(timer);
        resolve(true);
      };
    });
  }
}
