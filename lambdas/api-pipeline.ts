/**
 * The API function's side of the pipeline, as the embedded runtime does it in one process: create
 * and admit the request record, start prefill with an asynchronous invoke, read the record back
 * while the other functions work on it, and mark requests cancelled.
 */
import { markQueued, receiveRequest, type SubmitRequest, type SubmitResult } from '../lib/core/engine/submission';
import { admit } from '../lib/core/engine/admission';
import { isTerminal, type RequestRecord } from '../lib/core/engine/record';
import { describeError } from './observability';
import { trackerDeps, type Wiring } from './wiring';

export type { SubmitRequest, SubmitResult };

/** Thrown when the prefill function could not be started; the record has already ended failed. */
export class PrefillInvokeError extends Error {
  override readonly name = 'PrefillInvokeError';
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
    await tracker.finish('rejected', { code: 'overloaded', message: decision.reason });
    w.logger.warn('request rejected', { requestId: req.id, decodeQueue: occupancy.decodeQueue });
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

/**
 * Reads the record every poll interval until it is terminal or `deadlineMs` (epoch ms) comes;
 * `onRecord` sees every read. Resolves with the last record read (null if there is none).
 */
export async function pollRecord(
  w: Wiring,
  id: string,
  deadlineMs: number,
  onRecord?: (record: RequestRecord) => void,
): Promise<RequestRecord | null> {
  for (;;) {
    const record = await w.results.get(id);
    if (record) onRecord?.(record);
    if (record === null || isTerminal(record.state) || w.wallClockMs() + w.pollIntervalMs > deadlineMs) return record;
    await new Promise((resolve) => setTimeout(resolve, w.pollIntervalMs));
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
