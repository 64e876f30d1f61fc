/**
 * The embedded runtime: the pipeline's stages (lib/local/stages.ts) as worker loops in one thread,
 * wired to adapters. Prefill workers take admitted requests in order; the decode worker pulls
 * descriptors from the handoff queue whenever the running batch has room (continuous batching).
 * `serve --workers` runs the same stages in threads of their own (lib/local/stage-threads.ts).
 */
import { admit } from '../core/engine/admission';
import type { EngineConfig } from '../core/engine/config';
import { markQueued, receiveRequest, type SubmitRequest, type SubmitResult } from '../core/engine/submission';
import type { RequestRecord } from '../core/engine/record';
import type { ResultStore } from '../core/ports';
import { withRetries } from '../core/engine/retry';
import { TERMINAL_SAVE_RETRY } from '../core/engine/tracker';
import { DecodeWorker, PrefillWorker, trackerDeps, type RuntimeAdapters } from './stages';

export type { RuntimeAdapters } from './stages';
export type { SubmitRequest, SubmitResult };

/** Requests waiting for prefill, waiting for decode, and in a decode batch (GET /healthz, admission). */
export type Occupancy = {
  readonly prefillQueue: number;
  readonly decodeQueue: number;
  readonly decodeBatch: number;
};

/** What the HTTP API needs of the pipeline, whether its stages run in this thread or in worker threads. */
export interface PipelineRuntime {
  readonly config: EngineConfig;
  submit(req: SubmitRequest): Promise<SubmitResult>;
  get(id: string): Promise<RequestRecord | null>;
  /** Marks a request cancelled: it leaves the prefill queue at once, or decode at its next check. */
  cancel(id: string): Promise<RequestRecord | null>;
  occupancy(): Occupancy;
  /**
   * Stops the stages dead (no more steps or record writes), for a shutdown whose drain deadline passed: the
   * server then ends what was left itself, telling each client why.
   */
  halt?(): Promise<void> | void;
}

export class EmbeddedRuntime implements PipelineRuntime {
  private readonly prefill: PrefillWorker;
  private readonly decode: DecodeWorker;
  /** Handed off by prefill, not yet received by decode. */
  private readonly handedOff = new Set<string>();

  constructor(
    readonly config: EngineConfig,
    private readonly adapters: RuntimeAdapters,
    /** Prefill replicas working at once (each one prompt at a time). */
    prefillConcurrency = 1,
  ) {
    this.prefill = new PrefillWorker(config, adapters, prefillConcurrency, (id, handedOff) =>
      handedOff ? this.handedOff.add(id) : this.handedOff.delete(id),
    );
    this.decode = new DecodeWorker(config, adapters, (id) => this.handedOff.delete(id));
  }

  start(): void {
    this.decode.start();
  }

  /** Stops taking work and waits for what is running to reach a terminal state. */
  async stop(): Promise<void> {
    await this.decode.stop();
    await this.prefill.stop();
  }

  /**
   * Stops dead, as a killed process would: no more steps, no acks, no record writes, claims left to
   * lapse. Another runtime sharing the queue and stores takes the requests over (fault-injection tests).
   */
  crash(): void {
    this.prefill.crash();
    this.decode.crash();
  }

  halt(): void {
    this.crash();
  }

  /** Requests waiting for or in prefill, and handed off but not yet decoding. */
  occupancy(): Occupancy {
    const prefill = this.prefill.occupancy();
    const decode = this.decode.occupancy();
    return {
      prefillQueue: prefill.prefillQueue,
      // Jobs the decode batchers hold back for room or KV memory still wait for decode.
      decodeQueue: this.handedOff.size + decode.decodeWaiting + prefill.colocatedWaiting,
      decodeBatch: decode.decodeBatch + prefill.colocatedBatch,
    };
  }

  async submit(req: SubmitRequest): Promise<SubmitResult> {
    const { tracker, job, emulatedPrefillMs } = receiveRequest(
      req,
      this.config,
      trackerDeps(this.adapters),
      this.adapters.wallClockMs(),
      this.adapters.ownerId,
    );
    const record = tracker.record;
    const occupancy = this.occupancy();
    const queuedEmulatedMs = this.prefill.queuedEmulatedMs() + emulatedPrefillMs;
    const decision = admit(occupancy, this.config.admission, queuedEmulatedMs * this.config.timeScale);
    if (!decision.admitted) {
      tracker.reject({ code: 'overloaded', message: decision.reason });
      return { accepted: false, record, decision };
    }
    markQueued(tracker, occupancy.prefillQueue + 1);
    // Enqueued before the first await: admission check and reservation must be one step,
    // or concurrent submissions would all see the same free queue.
    try {
      await this.prefill.enqueue({ job, tracker, emulatedMs: emulatedPrefillMs });
    } catch (err) {
      // Its record could not be saved (a store outage): the client is told it failed, so it must not run. A save
      // that timed out may still land once the store answers again: delete it then, so no record says "queued".
      this.prefill.withdraw(req.id);
      deleteWhenBack(this.adapters.results, req.id, this.adapters.onError);
      throw err;
    }
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
    return (await this.prefill.cancel(id)) ?? record;
  }
}

/**
 * Deletes the record of a request refused for a store outage, trying again in the background until the store is
 * back (TERMINAL_SAVE_RETRY): a save that timed out may still land, and no record may say "queued" for nothing.
 */
export function deleteWhenBack(
  results: ResultStore<RequestRecord>,
  id: string,
  onError?: (err: unknown, context: string) => void,
): void {
  void withRetries(
    () => results.delete(id),
    TERMINAL_SAVE_RETRY,
    (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()),
  ).catch((err: unknown) => onError?.(err, `deleting the record of ${id}`));
}
