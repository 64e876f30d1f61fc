/**
 * The prefill function, invoked asynchronously by the API with a PrefillJob: runs the prompt on the
 * emulated prefill pool and hands the KV over (KV store + descriptor on the handoff queue). A
 * colocated request runs prefill and decode here on the colocated pool; its KV never leaves.
 */
import './bundle-require';
import type { Context } from 'aws-lambda';
import { DecodeBatcher } from '../lib/core/engine/decode-stage';
import { colocatedDecodeJob, handOff, prefillWithRetries, type PrefillJob } from '../lib/core/engine/prefill-stage';
import { isTerminal } from '../lib/core/engine/record';
import { RequestTracker } from '../lib/core/engine/tracker';
import { addRequestMetrics, describeError, requestLogFields } from './observability';
import { decodeDeps, defaultWiring, prefillDeps, trackerDeps, type Wiring } from './wiring';
import { PREFILL_RETRY } from '../lib/core/engine/retry';

/**
 * A failure ends the request failed and returns normally: an asynchronous invoke that throws is
 * retried by Lambda, and a retry must not run a request that already has its answer. Only a failure
 * to record that outcome is thrown, so the retry can try again.
 */
export function createPrefillHandler(
  wiring: () => Promise<Wiring>,
): (job: PrefillJob, context?: Context) => Promise<void> {
  return async (job) => {
    const w = await wiring();
    try {
      await runPrefill(w, job);
    } finally {
      w.metrics.publishStoredMetrics();
    }
  };
}

/** The process's wiring, built on first use; exported so a cold start can be measured without an invocation. */
export const initWiring = defaultWiring('disagg-prefill');

export const handler = createPrefillHandler(initWiring);

async function runPrefill(w: Wiring, job: PrefillJob): Promise<void> {
  const { config } = w;
  const record = await w.results.get(job.requestId);
  if (record === null) {
    // The API saves the record before invoking; none means it expired or the event is not ours.
    w.logger.warn('no record for prefill job; dropped', { requestId: job.requestId });
    return;
  }
  // A retried or duplicated invoke finds the request past prefill already: it must not run twice.
  if (isTerminal(record.state) || (record.state !== 'queued' && record.state !== 'prefilling')) {
    w.logger.warn('prefill job for a request past prefill; dropped', { requestId: job.requestId, state: record.state });
    return;
  }
  const tracker = new RequestTracker(record, trackerDeps(w), config.resultTtlMs);
  try {
    if ((await w.cancellations.get(job.requestId)) !== null) return await tracker.finish('cancelled');
    if (w.wallClockMs() > job.deadlineMs) {
      return await tracker.finish('failed', {
        code: 'timeout',
        message: `request ${job.requestId} passed its deadline while queued for prefill`,
      });
    }
    // Retried with backoff, then a terminal error; a cancelled or late request is not retried.
    const output = await prefillWithRetries(
      tracker,
      job,
      config,
      prefillDeps(w),
      async () => (await w.cancellations.get(job.requestId)) === null && w.wallClockMs() < job.deadlineMs,
      (err, attempt) =>
        w.logger.warn('prefill try failed', { requestId: job.requestId, attempt, error: describeError(err) }),
    );
    if (job.mode === 'colocated' && config.colocatedPool) {
      const batcher = new DecodeBatcher(config.colocatedPool, config, decodeDeps(w));
      await batcher.join(colocatedDecodeJob(tracker, job, output, w.backend));
      addRequestMetrics(w.metrics, tracker.record);
      w.logger.info('colocated request ended', requestLogFields(tracker.record));
      return;
    }
    const descriptor = await handOff(tracker, job, output, config, prefillDeps(w));
    w.logger.info('handed off', {
      requestId: job.requestId,
      promptTokens: job.promptIds.length,
      kv: descriptor.kv.kind,
      kvBytes: descriptor.kv.kind === 'none' ? 0 : descriptor.kv.bytes,
      emulatedPrefillMs: tracker.record.emulated.prefillMs,
      measuredPrefillMs: tracker.record.measured.prefillMs,
    });
  } catch (err) {
    // handOff has already freed a stored blob whose descriptor did not reach the queue.
    w.logger.error('prefill failed', { requestId: job.requestId, error: describeError(err) });
    await tracker.finish('failed', {
      code: 'prefill_failed',
      message: `prefill failed after ${PREFILL_RETRY.attempts} tries: ${describeError(err).message}`,
    });
  }
}
