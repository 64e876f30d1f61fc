/**
 * The pipeline's two stages as worker loops over the ports: prefill takes admitted requests in order
 * and hands them off (KV blob to the KV store, descriptor to the queue); decode pulls descriptors from
 * the queue whenever its running batch has room (continuous batching). The embedded runtime runs both
 * in one thread; `serve --workers` runs each in its own thread, connected by the same ports.
 */
import { randomUUID } from 'node:crypto';
import { MemoryClaimStore } from '../adapters/claims-memory';
import { TRACING_OFF, type StageSpan, type Tracing } from '../adapters/telemetry';
import type { EngineConfig } from '../core/engine/config';
import {
  DecodeBatcher,
  intakeHandoff,
  parseDescriptor,
  recordForDescriptor,
  type CancellationMarker,
  type DecodeDeps,
} from '../core/engine/decode-stage';
import {
  colocatedDecodeJob,
  handOff,
  HandoffError,
  PrefillError,
  prefillWithRetries,
  type PrefillDeps,
  type PrefillJob,
} from '../core/engine/prefill-stage';
import type { RequestEvent, RequestRecord } from '../core/engine/record';
import { RequestTracker, type TrackerDeps } from '../core/engine/tracker';
import type { Crc32c } from '../core/handoff/checksum';
import { DescriptorError } from '../core/handoff/descriptor';
import type {
  ClaimStore,
  Clock,
  EventBus,
  GenerationBackend,
  KvStore,
  Queue,
  QueueMessage,
  ResultStore,
} from '../core/ports';

export interface RuntimeAdapters {
  readonly clock: Clock;
  readonly queue: Queue;
  readonly kv: KvStore;
  readonly results: ResultStore<RequestRecord>;
  readonly cancellations: ResultStore<CancellationMarker>;
  readonly backend: GenerationBackend;
  readonly events: EventBus<RequestEvent>;
  readonly randomKey: () => string;
  readonly wallClockMs: () => number;
  /** Called when a stage fails unexpectedly (logging); the request itself ends failed. */
  readonly onError?: (err: unknown, context: string) => void;
  /** Decode claims shared by every worker that can receive the same descriptor; default: this process only. */
  readonly claims?: ClaimStore;
  /** How long a decode claim lasts without renewal (default 10 s): how soon a dead worker's request is taken over. */
  readonly claimLeaseMs?: number;
  /** The checksum port for KV blobs (lib/adapters/checksum-native.ts); default the JavaScript reference. */
  readonly crc32c?: Crc32c;
  /** Spans for each stage's work on a request (lib/adapters/telemetry.ts); default none. */
  readonly tracing?: Tracing;
  /** This process's owner id, stamped on the records it creates (lib/local/reconciler.ts); default none. */
  readonly ownerId?: string;
}

/** An admitted request waiting for a prefill replica. */
export interface QueuedPrefill {
  readonly job: PrefillJob;
  readonly tracker: RequestTracker;
  /** Emulated device time its prefill will take (admission sums it over the queue). */
  readonly emulatedMs: number;
  /** Its record's first save; prefill starts only once it has landed. */
  readonly saved?: Promise<void>;
}

export function trackerDeps(adapters: RuntimeAdapters): TrackerDeps {
  return { results: adapters.results, events: adapters.events, wallClockMs: adapters.wallClockMs };
}

/** Work a stage started in the background, kept visible to stop() and never left to fail unhandled. */
class InFlight {
  private readonly work = new Set<Promise<unknown>>();

  constructor(private readonly onError: ((err: unknown, context: string) => void) | undefined) {}

  track<T>(work: Promise<T>): void {
    const tracked = work
      .catch((err: unknown) => this.onError?.(err, 'background work'))
      .finally(() => this.work.delete(tracked));
    this.work.add(tracked);
  }

  async settle(): Promise<void> {
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
  }
}

/**
 * Prefill replicas (each one prompt at a time) over a FIFO of admitted requests. A colocated request
 * decodes here too, in the colocated pool's batch: one device does both phases, its KV never leaves it.
 */
export class PrefillWorker {
  private readonly waiting: QueuedPrefill[] = [];
  private readonly running = new Set<string>();
  /** Running requests cancelled through this worker: they stop before handing off. */
  private readonly cancelled = new Set<string>();
  /** Running requests whose client was told they never started (their record could not be saved): no trace left. */
  private readonly withdrawn = new Set<string>();
  private readonly colocatedBatcher: DecodeBatcher | null;
  private readonly inFlight: InFlight;
  private stopped = false;
  private crashed = false;

  constructor(
    private readonly config: EngineConfig,
    private readonly adapters: RuntimeAdapters,
    private readonly prefillConcurrency = 1,
    /** Told when a request's descriptor went to the queue (it then waits for decode). */
    private readonly onHandedOff: (requestId: string, handedOff: boolean) => void = () => undefined,
  ) {
    this.inFlight = new InFlight(adapters.onError);
    this.colocatedBatcher = config.colocatedPool
      ? new DecodeBatcher(config.colocatedPool, config, decodeDeps(adapters, localClaims(adapters)))
      : null;
  }

  /** Requests waiting for or in prefill; colocated requests held back for, or in, the colocated batch. */
  occupancy(): { prefillQueue: number; colocatedWaiting: number; colocatedBatch: number } {
    return {
      prefillQueue: this.waiting.length + this.running.size,
      colocatedWaiting: this.colocatedBatcher?.waiting ?? 0,
      colocatedBatch: this.colocatedBatcher?.size ?? 0,
    };
  }

  /** Emulated prefill time of everything waiting, for admission's queue-time estimate. */
  queuedEmulatedMs(): number {
    return this.waiting.reduce((sum, q) => sum + q.emulatedMs, 0);
  }

  /**
   * Queues an admitted request and saves its record; resolves once saved. Synchronous up to the save,
   * so an admission check just before and this reservation are one step.
   */
  enqueue(queued: QueuedPrefill): Promise<void> {
    const saved = queued.tracker.save();
    // A replica that takes it first waits for the save: a request whose record could not be saved never starts.
    this.waiting.push({ ...queued, saved });
    this.pump();
    return saved;
  }

  /**
   * A cancelled request leaves the queue at once (its record returned, ended), or stops after its
   * prefill without handing off; null when it is not here (decode sees the marker instead).
   */
  async cancel(id: string): Promise<RequestRecord | null> {
    const index = this.waiting.findIndex((q) => q.job.requestId === id);
    if (index !== -1) {
      const [queued] = this.waiting.splice(index, 1);
      await queued!.tracker.finish('cancelled');
      return queued!.tracker.record;
    }
    if (this.running.has(id)) this.cancelled.add(id);
    return null;
  }

  /**
   * Takes back a request whose client was told it failed to start (its first save failed): out of the queue, or
   * stopped after its prefill try, with no record write or event either way.
   */
  withdraw(id: string): void {
    const index = this.waiting.findIndex((q) => q.job.requestId === id);
    if (index !== -1) this.waiting.splice(index, 1);
    else if (this.running.has(id)) this.withdrawn.add(id);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.inFlight.settle();
  }

  /** Drops everything without ending it, as a killed process would (fault-injection tests). */
  crash(): void {
    this.stopped = true;
    this.crashed = true;
    this.waiting.length = 0;
    this.colocatedBatcher?.abandonAll();
  }

  private prefillDeps(): PrefillDeps {
    const a = this.adapters;
    return {
      clock: a.clock,
      backend: a.backend,
      kv: a.kv,
      queue: a.queue,
      randomKey: a.randomKey,
      ...(a.crc32c ? { crc32c: a.crc32c } : {}),
    };
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.prefillConcurrency && this.waiting.length > 0) {
      const next = this.waiting.shift()!;
      this.running.add(next.job.requestId);
      this.inFlight.track(
        this.runPrefill(next).finally(() => {
          this.running.delete(next.job.requestId);
          this.cancelled.delete(next.job.requestId);
          this.withdrawn.delete(next.job.requestId);
          this.pump();
        }),
      );
    }
  }

  private async runPrefill({ job: queuedJob, tracker, saved }: QueuedPrefill): Promise<void> {
    const a = this.adapters;
    try {
      await saved;
    } catch {
      // Its client was told the request failed (the submission rethrew this): nothing of it runs.
      return;
    }
    const span = (a.tracing ?? TRACING_OFF).start('disagg.prefill', queuedJob.traceparent, {
      'disagg.request_id': queuedJob.requestId,
      'disagg.mode': queuedJob.mode,
      'disagg.prompt_tokens': queuedJob.promptIds.length,
    });
    // The descriptor carries this span's traceparent, so the decode stage's span joins this trace.
    const job: PrefillJob = span.traceparent ? { ...queuedJob, traceparent: span.traceparent } : queuedJob;
    try {
      await this.prefillTraced(job, tracker, span);
    } finally {
      endStageSpan(span, tracker);
    }
  }

  private async prefillTraced(job: PrefillJob, tracker: RequestTracker, span: StageSpan): Promise<void> {
    const a = this.adapters;
    const gone = (): boolean => this.crashed || this.withdrawn.has(job.requestId);
    const failed = (error: { code: string; message: string }): Promise<void> =>
      gone()
        ? Promise.resolve()
        : tracker
            .finish('failed', error)
            .catch((saveErr: unknown) => a.onError?.(saveErr, `saving the failure of ${job.requestId}`));
    // No store read here: a cancel through this process takes the request out of the queue itself.
    if (a.wallClockMs() > job.deadlineMs) {
      return failed({
        code: 'timeout',
        message: `request ${job.requestId} passed its deadline while queued for prefill`,
      });
    }
    let output;
    try {
      // Retried with backoff, then a terminal error; a cancelled or late request is not retried.
      output = await prefillWithRetries(
        tracker,
        job,
        this.config,
        this.prefillDeps(),
        async () =>
          !this.cancelled.has(job.requestId) &&
          !gone() &&
          (await a.cancellations.get(job.requestId)) === null &&
          a.wallClockMs() < job.deadlineMs,
        (err) => a.onError?.(err, `prefill try for ${job.requestId}`),
      );
    } catch (err) {
      a.onError?.(err, `prefill of ${job.requestId}`);
      const message = err instanceof PrefillError ? err.describe() : `prefill failed: ${(err as Error).message}`;
      return failed({ code: 'prefill_failed', message });
    }
    if (gone()) return;
    if (this.cancelled.has(job.requestId)) {
      return tracker
        .finish('cancelled')
        .catch((saveErr: unknown) => a.onError?.(saveErr, `saving the end of ${job.requestId}`));
    }
    span.setAttributes({ 'disagg.emulated_prefill_ms': tracker.record.emulated.prefillMs });
    if (job.mode === 'colocated' && this.colocatedBatcher) {
      const decodeSpan = (a.tracing ?? TRACING_OFF).start('disagg.decode', span.traceparent, {
        'disagg.request_id': job.requestId,
        'disagg.mode': job.mode,
      });
      const running = this.colocatedBatcher.join(colocatedDecodeJob(tracker, job, output, a.backend));
      this.inFlight.track(running.finally(() => endStageSpan(decodeSpan, tracker)));
      return;
    }
    try {
      this.onHandedOff(job.requestId, true);
      await handOff(tracker, job, output, this.config, this.prefillDeps());
    } catch (err) {
      this.onHandedOff(job.requestId, false);
      a.onError?.(err, `handing off ${job.requestId}`);
      // The store's own error text stays in the operator's log; the client reads which step failed, and how often.
      const message =
        err instanceof HandoffError ? err.message : `the KV handoff of request ${job.requestId} to decode failed`;
      return failed({ code: 'handoff_failed', message });
    }
  }
}

/** This worker's decode claims: the shared store when given, else one in this process. */
function localClaims(adapters: RuntimeAdapters): NonNullable<DecodeDeps['claims']> {
  return {
    store: adapters.claims ?? new MemoryClaimStore(),
    workerId: randomUUID(),
    leaseMs: adapters.claimLeaseMs ?? 10_000,
  };
}

function decodeDeps(adapters: RuntimeAdapters, claims: NonNullable<DecodeDeps['claims']>): DecodeDeps {
  return {
    clock: adapters.clock,
    backend: adapters.backend,
    kv: adapters.kv,
    cancellations: adapters.cancellations,
    wallClockMs: adapters.wallClockMs,
    claims,
    ...(adapters.onError ? { onError: adapters.onError } : {}),
    ...(adapters.crc32c ? { crc32c: adapters.crc32c } : {}),
  };
}

/** The decode stage's loop: receives descriptors while the batch has room, takes each in, runs it to its end. */
export class DecodeWorker {
  private readonly batcher: DecodeBatcher;
  private readonly deps: DecodeDeps;
  private readonly inFlight: InFlight;
  private receiving = 0;
  private stopped = false;
  private crashed = false;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly config: EngineConfig,
    private readonly adapters: RuntimeAdapters,
    /** Told when a descriptor for the request was received (it no longer waits in the queue). */
    private readonly onReceived: (requestId: string) => void = () => undefined,
  ) {
    this.inFlight = new InFlight(adapters.onError);
    this.deps = decodeDeps(adapters, localClaims(adapters));
    this.batcher = new DecodeBatcher(config.decodePool, config, this.deps);
  }

  /** Jobs held back for room or KV memory, and the running batch. */
  occupancy(): { decodeWaiting: number; decodeBatch: number } {
    return { decodeWaiting: this.batcher.waiting, decodeBatch: this.batcher.size };
  }

  start(): void {
    if (this.loop) return;
    this.stopped = false;
    this.loop = this.run();
  }

  /** Stops receiving and waits for the running requests to reach a terminal state. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.loop = null;
    await this.inFlight.settle();
  }

  /** Stops dead: no more steps, no acks, no record writes, claims left to lapse (fault-injection tests). */
  crash(): void {
    this.crashed = true;
    this.stopped = true;
    this.batcher.abandonAll();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await this.batcher.waitForRoom();
      // The batcher's room (size limit, none while a job waits for KV memory) less descriptors in intake.
      const room = this.batcher.room() - this.receiving;
      if (room <= 0) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      let messages: QueueMessage[];
      try {
        messages = await this.adapters.queue.receive(Math.min(room, 10), 250);
      } catch (err) {
        if (this.stopped) break;
        this.adapters.onError?.(err, 'receiving from the handoff queue');
        await new Promise((resolve) => setTimeout(resolve, 250));
        continue;
      }
      for (const message of messages) {
        this.receiving += 1;
        this.inFlight.track(this.handle(message));
      }
    }
  }

  private async handle(message: QueueMessage): Promise<void> {
    const a = this.adapters;
    let joined = false;
    const joinedBatch = (): void => {
      if (!joined) this.receiving -= 1;
      joined = true;
    };
    try {
      let descriptor;
      try {
        descriptor = parseDescriptor(message.body);
      } catch (err) {
        if (!(err instanceof DescriptorError)) throw err;
        // A poison message: give it back so its receive count grows until it is dead-lettered.
        a.onError?.(err, 'decoding a handoff descriptor');
        await a.queue.release(message.receipt);
        return;
      }
      this.onReceived(descriptor.requestId);
      const record = await recordForDescriptor(descriptor, a.results, this.config);
      const tracker = new RequestTracker(record, trackerDeps(a), this.config.resultTtlMs);
      const span = (a.tracing ?? TRACING_OFF).start('disagg.decode', descriptor.traceparent, {
        'disagg.request_id': descriptor.requestId,
        'disagg.mode': descriptor.mode,
        'disagg.kv': descriptor.kv.kind,
        'disagg.kv_bytes': descriptor.kv.kind === 'none' ? 0 : descriptor.kv.bytes,
        'messaging.message.delivery_count': message.receiveCount,
      });
      try {
        const intake = await intakeHandoff(descriptor, tracker, this.config, this.deps);
        if (intake.kind === 'busy') {
          // Another worker holds it; if that worker dies, this message comes back after its lease.
          span.addEvent('held by another decode worker');
          await a.queue.release(message.receipt, intake.retryAfterMs);
          return;
        }
        if (intake.kind === 'decode') {
          const running = this.batcher.join(intake.job);
          joinedBatch();
          await running;
        }
      } finally {
        endStageSpan(span, tracker);
      }
      if (this.crashed) return;
      await a.queue.ack(message.receipt);
    } catch (err) {
      if (this.crashed) return;
      a.onError?.(err, 'decoding a request');
      await a.queue.release(message.receipt, 1000).catch(() => undefined);
    } finally {
      joinedBatch();
    }
  }
}

/** Ends a stage's span with what the request's record says of it (its state, its error code). */
function endStageSpan(span: StageSpan, tracker: RequestTracker): void {
  const r = tracker.record;
  span.setAttributes({ 'disagg.state': r.state, 'disagg.attempt': r.attempt });
  if (r.state === 'failed') span.fail(r.error?.code ?? 'failed');
  span.end();
}
