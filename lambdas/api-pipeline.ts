/**
 * The API function's side of the pipeline, as the embedded runtime does it in one process, behind the HTTP
 * application's pipeline port: create and admit the request record, start prefill with an asynchronous invoke,
 * watch the record in the result store while the other functions work on it, and mark requests cancelled.
 */
import { serverError } from '../lib/core/api/errors';
import type { CompletionPipeline, RequestProgress, Submission } from '../lib/core/api/pipeline-port';
import { admit } from '../lib/core/engine/admission';
import { isTerminal, type RequestRecord } from '../lib/core/engine/record';
import { markQueued, receiveRequest, type SubmitRequest, type SubmitResult } from '../lib/core/engine/submission';
import { addRejectionMetric, describeError } from './observability';
import { trackerDeps, type Wiring } from './wiring';

export type { SubmitRequest, SubmitResult };

/** Thrown when the prefill function could not be started; the record has already ended failed. */
export class PrefillInvokeError extends Error {
  override readonly name = 'PrefillInvokeError';
}

/** The pipeline port over the result store: progress is read back every poll interval. */
export function lambdaPipeline(w: Wiring): CompletionPipeline {
  return {
    async submit(request, watch): Promise<Submission> {
      let submitted: SubmitResult;
      try {
        submitted = await submit(w, request);
      } catch (err) {
        if (err instanceof PrefillInvokeError) throw serverError(err.message, 'prefill_invoke_failed');
        throw err;
      }
      if (!submitted.accepted) return submitted;
      return {
        accepted: true,
        record: submitted.record,
        progress: new PolledProgress(w, request.id, watch.deadlineMs),
      };
    },
    get: (id) => w.results.get(id),
    cancel: (id) => cancel(w, id),
    health: () => Promise.resolve({}),
  };
}

/**
 * Routes and admits a request, saves its record and invokes the prefill function. Admission reads the
 * handoff queue's approximate depth as the decode queue; Lambda's own invoke queue is not observable,
 * so the prefill queue counts as empty.
 */
export async function submit(w: Wiring, req: SubmitRequest): Promise<SubmitResult> {
  const { config } = w;
  const { tracker, job, emulatedPrefillMs } = receiveRequest(req, config, trackerDeps(w), w.wallClockMs());
  const record = tracker.record;
  const occupancy = { prefillQueue: 0, decodeQueue: await w.queue.depth() };
  const decision = admit(occupancy, config.admission, emulatedPrefillMs * config.timeScale);
  if (!decision.admitted) {
    // Never stored: the client got no id to read it by, and overload must not multiply table writes (the metric counts it).
    tracker.reject({ code: 'overloaded', message: decision.reason });
    w.logger.warn('request rejected', { requestId: req.id, decodeQueue: occupancy.decodeQueue });
    addRejectionMetric(w.metrics);
    return { accepted: false, record, decision };
  }
  markQueued(tracker, occupancy.prefillQueue + 1);
  await tracker.save();
  try {
    await w.invokePrefill(job);
  } catch (err) {
    w.logger.error('could not invoke the prefill function', { requestId: req.id, error: describeError(err) });
    await tracker.finish('failed', {
      code: 'prefill_invoke_failed',
      message: `the prefill stage could not be started: ${describeError(err).message}`,
    });
    throw new PrefillInvokeError(`request ${req.id}: the prefill stage could not be started`);
  }
  w.logger.info('request admitted', {
    requestId: req.id,
    mode: job.mode,
    promptTokens: req.promptIds.length,
    maxTokens: req.sampling.maxTokens,
    decodeQueue: occupancy.decodeQueue,
  });
  return { accepted: true, record };
}

/** A request's progress from the result store: pieces are saved every few tokens and at the end. */
class PolledProgress implements RequestProgress {
  private last: RequestRecord | null = null;
  private sent = 0;
  private closed = false;

  constructor(
    private readonly w: Wiring,
    private readonly id: string,
    private readonly deadlineMs: number,
  ) {}

  async *pieces(): AsyncGenerator<string> {
    for (;;) {
      const record = await this.read();
      while (record !== null && this.sent < record.pieces.length) yield record.pieces[this.sent++]!;
      if (this.closed || record === null || isTerminal(record.state) || !(await this.pause())) return;
    }
  }

  async outcome(): Promise<RequestRecord> {
    if (this.last === null || !isTerminal(this.last.state)) {
      for (;;) {
        const record = await this.read();
        if (this.closed || record === null || isTerminal(record.state) || !(await this.pause())) break;
      }
    }
    if (this.last === null) throw new Error(`record of request ${this.id} vanished from the result store`);
    return this.last;
  }

  close(): void {
    this.closed = true;
  }

  private async read(): Promise<RequestRecord | null> {
    const record = await this.w.results.get(this.id);
    if (record !== null) this.last = record;
    return record;
  }

  /** Waits one poll interval; false when that would pass the deadline. */
  private async pause(): Promise<boolean> {
    if (this.w.wallClockMs() + this.w.pollIntervalMs > this.deadlineMs) return false;
    await new Promise((resolve) => setTimeout(resolve, this.w.pollIntervalMs));
    return true;
  }
}

/**
 * DELETE /v1/requests/{id}: leaves a cancellation marker that the prefill and decode functions read
 * (before prefill, at decode intake, and every few decode steps). Null when there is no such request.
 */
export async function cancel(w: Wiring, id: string): Promise<RequestRecord | null> {
  const record = await w.results.get(id);
  if (!record) return null;
  await w.cancellations.put(id, { cancelledAtMs: w.wallClockMs() }, w.config.resultTtlMs);
  w.logger.info('request cancelled', { requestId: id, state: record.state });
  return record;
}
