/**
 * The embedded runtime: the pipeline's stages as worker loops in one process, wired to adapters.
 * Prefill workers take admitted requests in order; the decode worker pulls descriptors from the
 * handoff queue whenever the running batch has room (continuous batching).
 */
import { markQueued, receiveRequest, type SubmitRequest, type SubmitResult } from '../core/engine/submission';
import { admit } from '../core/engine/admission';
import type { EngineConfig } from '../core/engine/config';
import {
  DecodeBatcher,
  intakeHandoff,
  parseDescriptor,
  recordForDescriptor,
  type CancellationMarker,
  type DecodeDeps,
} from '../core/engine/decode-stage';
import { DescriptorError } from '../core/handoff/descriptor';
import { PREFILL_RETRY } from '../core/engine/retry';
import {
  colocatedDecodeJob,
  handOff,
  prefillWithRetries,
  type PrefillDeps,
  type PrefillJob,
} from '../core/engine/prefill-stage';
import type { RequestEvent, RequestRecord } from '../core/engine/record';
import { RequestTracker, type TrackerDeps } from '../core/engine/tracker';
import { randomUUID } from 'node:crypto';
import { MemoryClaimStore } from '../adapters/claims-memory';
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
}

export type { SubmitRequest, SubmitResult };

interface QueuedPrefill {
  readonly job: PrefillJob;
  readonly tracker: RequestTracker;
  readonly emulatedMs: number;
}

export class EmbeddedRuntime {
  private readonly prefillWaiting: QueuedPrefill[] = [];
  private prefillRunning = 0;
  private readonly handedOff = new Set<string>();
  private receiving = 0;
  private stopped = false;
  private decodeLoop: Promise<void> | null = null;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly disaggBatcher: DecodeBatcher;
  private readonly colocatedBatcher: DecodeBatcher | null;
  private readonly claims: { store: ClaimStore; workerId: string; leaseMs: number };
  private crashed = false;

  constructor(
    readonly config: EngineConfig,
    private readonly adapters: RuntimeAdapters,
    /** Prefill replicas working at once (each one prompt at a time). */
    private readonly prefillConcurrency = 1,
  ) {
    this.claims = {
      store: adapters.claims ?? new MemoryClaimStore(),
      workerId: randomUUID(),
      leaseMs: adapters.claimLeaseMs ?? 10_000,
    };
    this.disaggBatcher = new DecodeBatcher(config.decodePool, config, this.decodeDeps());
    this.colocatedBatcher = config.colocatedPool
      ? new DecodeBatcher(config.colocatedPool, config, this.decodeDeps())
      : null;
  }

  start(): void {
    if (this.decodeLoop) return;
    this.stopped = false;
    this.decodeLoop = this.runDecodeWorker();
  }

  /** Stops taking work and waits for what is running to reach a terminal state. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.decodeLoop;
    this.decodeLoop = null;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * Stops dead, as a killed process would: no more steps, no acks, no record writes, claims left to
   * lapse. Another runtime sharing the queue and stores takes the requests over (fault-injection tests).
   */
  crash(): void {
    this.crashed = true;
    this.stopped = true;
    this.prefillWaiting.length = 0;
    this.disaggBatcher.abandonAll();
    this.colocatedBatcher?.abandonAll();
  }

  /** Requests waiting for or in prefill, and handed off but not yet decoding. */
  occupancy(): { prefillQueue: number; decodeQueue: number; decodeBatch: number } {
    return {
      prefillQueue: this.prefillWaiting.length + this.prefillRunning,
      // Jobs the decode batchers hold back for room or KV memory still wait for decode.
      decodeQueue: this.handedOff.size + this.disaggBatcher.waiting + (this.colocatedBatcher?.waiting ?? 0),
      decodeBatch: this.disaggBatcher.size + (this.colocatedBatcher?.size ?? 0),
    };
  }

  async submit(req: SubmitRequest): Promise<SubmitResult> {
    const {
      tracker,
      job,
      emulatedPrefillMs: emulatedMs,
    } = receiveRequest(req, this.config, this.trackerDeps(), this.adapters.wallClockMs());
    const record = tracker.record;
    const queuedEmulatedMs = this.prefillWaiting.reduce((sum, q) => sum + q.emulatedMs, 0) + emulatedMs;
    const occupancy = this.occupancy();
    const decision = admit(occupancy, this.config.admission, queuedEmulatedMs * this.config.timeScale);
    if (!decision.admitted) {
      await tracker.finish('rejected', { code: 'overloaded', message: decision.reason });
      return { accepted: false, record, decision };
    }
    markQueued(tracker, occupancy.prefillQueue + 1);
    // Enqueue before the first await: admission check and reservation must be one step,
    // or concurrent submissions would all see the same free queue.
    this.prefillWaiting.push({ job, tracker, emulatedMs });
    const saved = tracker.save();
    this.pumpPrefill();
    await saved;
    return { accepted: true, record };
  }

  get(id: string): Promise<RequestRecord | null> {
    return this.adapters.results.get(id);
  }

  /** Marks a request cancelled: it leaves the prefill queue at once, or decode at its next check. */
  async cancel(id: string): Promise<RequestRecord | null> {
    const record = await this.adapters.results.get(id);
    if (!record) return null;
    await this.adapters.cancellations.put(id, { cancelledAtMs: this.adapters.wallClockMs() }, this.config.resultTtlMs);
    const waiting = this.prefillWaiting.findIndex((q) => q.job.requestId === id);
    if (waiting !== -1) {
      const [queued] = this.prefillWaiting.splice(waiting, 1);
      await queued!.tracker.finish('cancelled');
      return queued!.tracker.record;
    }
    return record;
  }

  private trackerDeps(): TrackerDeps {
    return { results: this.adapters.results, events: this.adapters.events, wallClockMs: this.adapters.wallClockMs };
  }

  private decodeDeps(): DecodeDeps {
    const a = this.adapters;
    return {
      clock: a.clock,
      backend: a.backend,
      kv: a.kv,
      cancellations: a.cancellations,
      wallClockMs: a.wallClockMs,
      claims: this.claims,
      ...(a.onError ? { onError: a.onError } : {}),
    };
  }

  private prefillDeps(): PrefillDeps {
    const a = this.adapters;
    return { clock: a.clock, backend: a.backend, kv: a.kv, queue: a.queue, randomKey: a.randomKey };
  }

  /** Keeps background work visible to stop() and makes sure its failure is reported, never unhandled. */
  private track<T>(work: Promise<T>): void {
    const tracked = work
      .catch((err: unknown) => this.adapters.onError?.(err, 'background work'))
      .finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private pumpPrefill(): void {
    while (this.prefillRunning < this.prefillConcurrency && this.prefillWaiting.length > 0) {
      const next = this.prefillWaiting.shift()!;
      this.prefillRunning += 1;
      this.track(
        this.runPrefill(next).finally(() => {
          this.prefillRunning -= 1;
          this.pumpPrefill();
        }),
      );
    }
  }

  private async runPrefill({ job, tracker }: QueuedPrefill): Promise<void> {
    try {
      if ((await this.adapters.cancellations.get(job.requestId)) !== null) return await tracker.finish('cancelled');
      if (this.adapters.wallClockMs() > job.deadlineMs) {
        return await tracker.finish('failed', {
          code: 'timeout',
          message: `request ${job.requestId} passed its deadline while queued for prefill`,
        });
      }
      // Retried with backoff, then a terminal error; a cancelled or late request is not retried.
      const output = await prefillWithRetries(
        tracker,
        job,
        this.config,
        this.prefillDeps(),
        async () =>
          (await this.adapters.cancellations.get(job.requestId)) === null &&
          this.adapters.wallClockMs() < job.deadlineMs,
        (err) => this.adapters.onError?.(err, `prefill try for ${job.requestId}`),
      );
      if (job.mode === 'colocated' && this.colocatedBatcher) {
        this.track(this.colocatedBatcher.join(colocatedDecodeJob(tracker, job, output, this.adapters.backend)));
        return;
      }
      this.handedOff.add(job.requestId);
      await handOff(tracker, job, output, this.config, this.prefillDeps());
    } catch (err) {
      this.handedOff.delete(job.requestId);
      this.adapters.onError?.(err, `prefill of ${job.requestId}`);
      await tracker
        .finish('failed', {
          code: 'prefill_failed',
          message: `prefill failed after ${PREFILL_RETRY.attempts} tries: ${(err as Error).message}`,
        })
        .catch((saveErr: unknown) => this.adapters.onError?.(saveErr, `saving the failure of ${job.requestId}`));
    }
  }

  private async runDecodeWorker(): Promise<void> {
    while (!this.stopped) {
      await this.disaggBatcher.waitForRoom();
      // The batcher's room (size limit, none while a job waits for KV memory) less descriptors in intake.
      const room = this.disaggBatcher.room() - this.receiving;
      if (room <= 0) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      let messages: QueueMessage[];
      try {
        messages = await this.adapters.queue.receive(Math.min(room, 10), 250);
      } catch (err) {
        this.adapters.onError?.(err, 'receiving from the handoff queue');
        await new Promise((resolve) => setTimeout(resolve, 250));
        continue;
      }
      for (const message of messages) {
        this.receiving += 1;
        this.track(this.handleDescriptor(message));
      }
    }
  }

  private async handleDescriptor(message: QueueMessage): Promise<void> {
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
        this.adapters.onError?.(err, 'decoding a handoff descriptor');
        await this.adapters.queue.release(message.receipt);
        return;
      }
      this.handedOff.delete(descriptor.requestId);
      const record = await recordForDescriptor(descriptor, this.adapters.results, this.config);
      const tracker = new RequestTracker(record, this.trackerDeps(), this.config.resultTtlMs);
      const intake = await intakeHandoff(descriptor, tracker, this.config, this.decodeDeps());
      if (intake.kind === 'busy') {
        // Another worker holds it; if that worker dies, this message comes back after its lease.
        await this.adapters.queue.release(message.receipt, intake.retryAfterMs);
        return;
      }
      if (intake.kind === 'decode') {
        const running = this.disaggBatcher.join(intake.job);
        joinedBatch();
        await running;
      }
      if (this.crashed) return;
      await this.adapters.queue.ack(message.receipt);
    } catch (err) {
      this.adapters.onError?.(err, 'decoding a request');
      await this.adapters.queue.release(message.receipt, 1000).catch(() => undefined);
    } finally {
      joinedBatch();
    }
  }
}
