/**
 * The HTTP application's pipeline port over the embedded runtime: a request's progress comes from the in-process
 * event bus (tokens as they are produced, then the terminal record), subscribed before the request is submitted
 * so no event is missed.
 */
import type { CompletionPipeline, RequestProgress, Submission } from '../core/api/pipeline-port';
import { ApiError } from '../core/api/errors';
import { isTerminal, type RequestEvent, type RequestRecord } from '../core/engine/record';
import { StoreUnavailableError } from '../core/engine/retry';
import type { SubmitRequest } from '../core/engine/submission';
import type { EventBus } from '../core/ports';
import type { RequestSpans } from './request-spans';
import type { PipelineRuntime } from './runtime';

/** Seconds a client is told to wait when a store is down: ioredis reconnects every 2 s at most (redis-connection.ts). */
export const STORE_RETRY_AFTER_S = 5;

/** A dependency of the pipeline as GET /healthz reports it. */
export interface DependencyHealth {
  readonly status: 'ok' | 'unavailable';
  /** Measured wall ms of the check. */
  readonly latencyMs: number;
  /** Why it is unavailable, in words fit for a client (never the store's own error text). */
  readonly reason?: string;
}

export interface EmbeddedPipelineOptions {
  readonly spans?: RequestSpans;
  /** The requests admitted and not yet ended, and whether new ones are still taken (drain on shutdown). */
  readonly admitted?: AdmittedRequests;
  /** Checks each store the pipeline depends on (GET /healthz). */
  readonly dependencies?: () => Promise<Record<string, DependencyHealth>>;
}

export function embeddedPipeline(
  runtime: PipelineRuntime,
  events: EventBus<RequestEvent>,
  options: EmbeddedPipelineOptions = {},
): CompletionPipeline {
  const { spans, admitted } = options;
  return {
    async submit(request: SubmitRequest, watch: { deadlineMs: number }): Promise<Submission> {
      admitted?.assertOpen();
      const progress = new EventProgress(events, request.id, watch.deadlineMs, () => runtime.get(request.id));
      const forget = admitted?.watch(request.id);
      // The request's own span, under the client's traceparent; its stages trace under it.
      const traceparent = spans ? spans.begin(request.id, request.traceparent) : request.traceparent;
      let submitted;
      try {
        submitted = await runtime.submit({ ...request, ...(traceparent ? { traceparent } : {}) });
      } catch (err) {
        // Told it failed: nothing of it may be left running, listening or counted.
        progress.close();
        forget?.();
        spans?.abandon(request.id, 'store_unavailable');
        throw clientError(err);
      }
      if (!submitted.accepted) {
        progress.close();
        forget?.();
        spans?.abandon(request.id, 'overloaded');
        return submitted;
      }
      admitted?.accepted(submitted.record);
      return { accepted: true, record: submitted.record, progress };
    },
    get: (id) => runtime.get(id).catch((err: unknown) => Promise.reject(clientError(err))),
    cancel: (id) => runtime.cancel(id).catch((err: unknown) => Promise.reject(clientError(err))),
    async health() {
      const dependencies = options.dependencies ? await options.dependencies() : {};
      const down = Object.values(dependencies).some((d) => d.status !== 'ok');
      const draining = admitted?.closing ?? false;
      return {
        status: down ? 'unavailable' : draining ? 'draining' : 'ok',
        ...runtime.occupancy(),
        dependencies,
      };
    },
  };
}

/** A store that did not answer is a 503 with Retry-After in the API's format; its own error text stays in the log. */
function clientError(err: unknown): unknown {
  if (!(err instanceof StoreUnavailableError)) return err;
  return new ApiError(
    503,
    `${err.message}; nothing was started for this request, send it again in ${STORE_RETRY_AFTER_S} s`,
    'server_error',
    null,
    'store_unavailable',
    STORE_RETRY_AFTER_S,
  );
}

/**
 * The requests this server admitted whose end it has not yet seen, and whether it still admits new ones: a
 * shutdown stops admitting, then waits for these to end (drain), and ends those left at its deadline.
 */
export class AdmittedRequests {
  private readonly open = new Map<string, { record: RequestRecord | null; off: () => void }>();
  private emptied: (() => void)[] = [];
  private closingReason: string | null = null;

  constructor(private readonly events: EventBus<RequestEvent>) {}

  get size(): number {
    return this.open.size;
  }

  get closing(): boolean {
    return this.closingReason !== null;
  }

  /** Refuses new requests from now on (503 `shutting_down`), with `reason` for the client. */
  stopAdmitting(reason: string): void {
    this.closingReason = reason;
  }

  assertOpen(): void {
    if (this.closingReason === null) return;
    throw new ApiError(503, this.closingReason, 'server_error', null, 'shutting_down', 1);
  }

  /** Follows a request from before its submission (so no end is missed); the returned call forgets it. */
  watch(id: string): () => void {
    const off = this.events.subscribe(id, (event) => {
      if (event.type === 'done') this.forget(id);
    });
    this.open.set(id, { record: null, off });
    return () => this.forget(id);
  }

  accepted(record: RequestRecord): void {
    const entry = this.open.get(record.id);
    if (entry && !isTerminal(record.state)) entry.record = record;
  }

  /** Resolves with the requests still open when all have ended (none) or at `deadlineMs` (epoch ms), whichever first. */
  async drained(deadlineMs: number): Promise<RequestRecord[]> {
    const left = deadlineMs - Date.now();
    if (this.open.size > 0 && left > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.emptied.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    return [...this.open.values()].flatMap((e) => (e.record ? [e.record] : []));
  }

  private forget(id: string): void {
    const entry = this.open.get(id);
    if (!entry) return;
    entry.off();
    this.open.delete(id);
    if (this.open.size > 0) return;
    const waiters = this.emptied;
    this.emptied = [];
    for (const wake of waiters) wake();
  }
}

/** Tokens and the terminal record of one request, from the event bus, as async iteration. */
class EventProgress implements RequestProgress {
  private readonly queued: string[] = [];
  private record: RequestRecord | null = null;
  private wake: (() => void) | null = null;
  /** Whether a token wakes the waiter: pieces() wants each one; outcome() only the end (one timer, not one per token). */
  private wakeOnToken = true;
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(
    events: EventBus<RequestEvent>,
    private readonly id: string,
    private readonly deadlineMs: number,
    private readonly read: () => Promise<RequestRecord | null>,
  ) {
    this.unsubscribe = events.subscribe(id, (event) => {
      if (event.type === 'token') {
        this.queued.push(event.text);
        if (!this.wakeOnToken) return;
      } else if (event.type === 'done') this.record = event.record;
      else return;
      this.notify();
    });
  }

  async *pieces(): AsyncGenerator<string> {
    this.wakeOnToken = true;
    for (;;) {
      while (this.queued.length > 0) yield this.queued.shift()!;
      if (this.record || this.closed || !(await this.waitForEvent())) return;
    }
  }

  async outcome(): Promise<RequestRecord> {
    this.wakeOnToken = false;
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
