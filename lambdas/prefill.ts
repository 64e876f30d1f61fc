/**
 * The prefill function, invoked asynchronously by the API with a PrefillInvocation (ids and sizes): reads the
 * request's prompt from where the API stored it, runs it on the emulated prefill pool and hands the KV over (KV
 * store + descriptor on the handoff queue). A colocated request runs prefill and decode here on the colocated
 * pool; its KV never leaves. `failureHandler` is the on-failure destination of those invocations.
 */
import './bundle-require';
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { DecodeBatcher } from '../lib/core/engine/decode-stage';
import {
  colocatedDecodeJob,
  handOff,
  PrefillError,
  prefillWithRetries,
  type PrefillJob,
} from '../lib/core/engine/prefill-stage';
import { isTerminal, type RequestRecord } from '../lib/core/engine/record';
import { RequestTracker } from '../lib/core/engine/tracker';
import { addHandoffMetric, addRequestMetrics, describeError, requestLogFields } from './observability';
import {
  decodeDeps,
  defaultWiring,
  KvTooLargeError,
  prefillDeps,
  trackerDeps,
  type PrefillInvocation,
  type Wiring,
} from './wiring';

/**
 * Which invocation runs a request's prefill: Lambda may deliver an asynchronous event twice, and the API's SDK
 * may retry an invoke whose answer it lost. The lease lapses 30 s after the last renewal (every 10 s while the
 * prefill runs), so an invocation that crashed or timed out leaves the request to Lambda's retry, which comes
 * a minute or more later.
 */
export const PREFILL_CLAIM_LEASE_MS = 30_000;
const PREFILL_CLAIM_PREFIX = 'prefill:';

/**
 * A failure ends the request failed and returns normally: a request with its answer must not run again. What
 * is thrown is a failure to read or record the request (a store outage): Lambda retries the invocation, and
 * after the last retry the failure handler ends the request.
 */
export function createPrefillHandler(
  wiring: () => Promise<Wiring>,
): (invocation: PrefillInvocation, context?: Context) => Promise<void> {
  return async (invocation) => {
    const w = await wiring();
    try {
      await runPrefill(w, invocation);
    } finally {
      w.metrics.publishStoredMetrics();
      // A frozen execution environment sends nothing: spans leave before the invocation returns.
      await w.tracing.flush().catch(() => undefined);
    }
  };
}

/** The process's wiring, built on first use; exported so a cold start can be measured without an invocation. */
export const initWiring = defaultWiring('disagg-prefill');

export const handler = createPrefillHandler(initWiring);

async function runPrefill(w: Wiring, payload: unknown): Promise<void> {
  const invocation = parseInvocation(payload);
  if (invocation === null) {
    w.logger.warn('not a prefill invocation; dropped', { payloadKeys: Object.keys(Object(payload)).slice(0, 8) });
    return;
  }
  const { requestId } = invocation;
  const record = await w.results.get(requestId);
  if (record === null) {
    // The API saves the record before invoking; none means it expired or the event is not ours.
    w.logger.warn('no record for prefill invocation; dropped', { requestId });
    await w.prefillJobs.delete(requestId);
    return;
  }
  // A retried or duplicated invocation finds the request past prefill already: it must not run twice.
  if (isTerminal(record.state) || (record.state !== 'queued' && record.state !== 'prefilling')) {
    w.logger.warn('prefill invocation for a request past prefill; dropped', { requestId, state: record.state });
    return;
  }
  const owner = randomUUID();
  const claimKey = PREFILL_CLAIM_PREFIX + requestId;
  if (!(await w.claims.claim(claimKey, owner, PREFILL_CLAIM_LEASE_MS))) {
    w.logger.warn('prefill of this request is running in another invocation; dropped', { requestId });
    return;
  }
  const renewal = setInterval(() => {
    w.claims
      .claim(claimKey, owner, PREFILL_CLAIM_LEASE_MS)
      .catch((err: unknown) => w.logger.warn('prefill claim renewal failed', { requestId, error: describeError(err) }));
  }, PREFILL_CLAIM_LEASE_MS / 3);
  try {
    const tracker = new RequestTracker(record, trackerDeps(w), w.config.resultTtlMs);
    const job = await w.prefillJobs.get(requestId);
    if (job === null) {
      await tracker.finish('failed', {
        code: 'prefill_job_missing',
        message: `the prompt of request ${requestId} is no longer stored (it expired before prefill ran); send the request again`,
      });
    } else {
      await runJob(w, tracker, job);
    }
    // The request ended or was handed off: its prompt now lives on the queue or nowhere.
    await w.prefillJobs.delete(requestId);
  } finally {
    clearInterval(renewal);
    await w.claims
      .release(claimKey, owner)
      .catch((err: unknown) => w.logger.warn('prefill claim release failed', { requestId, error: describeError(err) }));
  }
}

async function runJob(w: Wiring, tracker: RequestTracker, queuedJob: PrefillJob): Promise<void> {
  const span = w.tracing.start('disagg.prefill', queuedJob.traceparent, {
    'disagg.request_id': queuedJob.requestId,
    'disagg.mode': queuedJob.mode,
    'disagg.prompt_tokens': queuedJob.promptIds.length,
  });
  // The descriptor carries this span's traceparent, so the decode function's span joins this trace.
  const job: PrefillJob = span.traceparent ? { ...queuedJob, traceparent: span.traceparent } : queuedJob;
  try {
    await runTracedJob(w, tracker, job);
  } finally {
    span.setAttributes({ 'disagg.state': tracker.record.state });
    if (tracker.record.state === 'failed') span.fail(tracker.record.error?.code ?? 'failed');
    span.end();
  }
}

async function runTracedJob(w: Wiring, tracker: RequestTracker, job: PrefillJob): Promise<void> {
  const { config } = w;
  if ((await w.cancellations.get(job.requestId)) !== null) return tracker.finish('cancelled');
  if (w.wallClockMs() > job.deadlineMs) {
    return tracker.finish('failed', {
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
      config,
      prefillDeps(w),
      async () => (await w.cancellations.get(job.requestId)) === null && w.wallClockMs() < job.deadlineMs,
      (err, attempt) =>
        w.logger.warn('prefill try failed', { requestId: job.requestId, attempt, error: describeError(err) }),
    );
  } catch (err) {
    w.logger.error('prefill failed', { requestId: job.requestId, error: describeError(err) });
    return tracker.finish('failed', {
      code: 'prefill_failed',
      message: err instanceof PrefillError ? err.describe() : `prefill failed: ${describeError(err).message}`,
    });
  }
  try {
    if (job.mode === 'colocated' && config.colocatedPool) {
      const batcher = new DecodeBatcher(config.colocatedPool, config, decodeDeps(w));
      await batcher.join(colocatedDecodeJob(tracker, job, output, w.backend));
      addRequestMetrics(w.metrics, tracker.record);
      w.logger.info('colocated request ended', requestLogFields(tracker.record));
      return;
    }
    const descriptor = await handOff(tracker, job, output, config, prefillDeps(w));
    if (descriptor.kv.kind !== 'none') addHandoffMetric(w.metrics, descriptor.kv.bytes);
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
    w.logger.error('handoff failed', { requestId: job.requestId, error: describeError(err) });
    await tracker.finish('failed', handoffError(job, err));
  }
}

/** What the client reads when the handoff failed: a KV blob too large for the store, or the store unreachable. */
function handoffError(job: PrefillJob, err: unknown): { code: string; message: string } {
  if (err instanceof KvTooLargeError) {
    return {
      code: 'kv_too_large',
      message: `request ${job.requestId}: the KV cache of its ${job.promptIds.length}-token prompt is ${err.bytes} bytes, over the ${err.limitBytes} bytes the KV store accepts; send a shorter prompt`,
    };
  }
  // The store's own error text stays in the logs.
  return { code: 'handoff_failed', message: `request ${job.requestId}: the KV handoff to decode failed` };
}

/** The invocation's fields, checked; null for anything else (an event that is not ours). */
function parseInvocation(payload: unknown): PrefillInvocation | null {
  if (typeof payload !== 'object' || payload === null) return null;
  const p = payload as Record<string, unknown>;
  const valid =
    p.v === 1 &&
    typeof p.requestId === 'string' &&
    p.requestId.length > 0 &&
    p.requestId.length <= 256 &&
    typeof p.promptTokens === 'number' &&
    (p.mode === 'disaggregated' || p.mode === 'colocated') &&
    typeof p.deadlineMs === 'number';
  return valid ? (p as unknown as PrefillInvocation) : null;
}

/**
 * What Lambda sends an on-failure destination: the failed invocation's payload and why it failed
 * (Lambda developer guide, "Capturing records of asynchronous invocations").
 */
export interface PrefillFailureRecord {
  readonly requestContext?: {
    readonly requestId?: string;
    readonly condition?: string;
    readonly approximateInvokeCount?: number;
  };
  readonly requestPayload?: unknown;
  readonly responsePayload?: { readonly errorType?: string; readonly errorMessage?: string } | null;
}

/** What the dead-letter queue holds for a prefill that never finished: ids and sizes, never the prompt. */
export interface PrefillDeadLetter {
  readonly v: 1;
  readonly kind: 'prefill_invocation_failed';
  readonly requestId: string | null;
  readonly promptTokens: number | null;
  readonly mode: string | null;
  readonly condition: string;
  readonly invocations: number | null;
  readonly errorType: string | null;
  readonly state: string | null;
  readonly at: string;
}

/**
 * The on-failure destination of the prefill invocations: Lambda calls it once an invocation's retries are
 * spent (RetriesExhausted: prefill crashed, threw or timed out every time) or its event waited past the maximum
 * age (EventAgeExceeded: no prefill slot in time). It ends the request's record failed with a reason the client
 * reads from its poll URL or stream, drops the stored prompt, and dead-letters the ids. A failure to record it
 * is thrown, so Lambda retries this handler and, past that, copies the record to the dead-letter queue.
 */
export function createPrefillFailureHandler(
  wiring: () => Promise<Wiring>,
): (record: PrefillFailureRecord, context?: Context) => Promise<void> {
  return async (failure) => {
    const w = await wiring();
    const invocation = parseInvocation(failure.requestPayload);
    const condition = failure.requestContext?.condition ?? 'unknown';
    const invocations = failure.requestContext?.approximateInvokeCount ?? null;
    let record: RequestRecord | null = null;
    if (invocation) {
      record = await w.results.get(invocation.requestId);
      if (record !== null && !isTerminal(record.state)) {
        const tracker = new RequestTracker(record, trackerDeps(w), w.config.resultTtlMs);
        await tracker.finish('failed', prefillNeverFinished(invocation, condition, invocations, failure));
      }
      await w.prefillJobs.delete(invocation.requestId);
    }
    const letter: PrefillDeadLetter = {
      v: 1,
      kind: 'prefill_invocation_failed',
      requestId: invocation?.requestId ?? null,
      promptTokens: invocation?.promptTokens ?? null,
      mode: invocation?.mode ?? null,
      condition,
      invocations,
      errorType: failure.responsePayload?.errorType ?? null,
      state: record?.state ?? null,
      at: new Date(w.wallClockMs()).toISOString(),
    };
    await w.deadLetterQueue.send(JSON.stringify(letter));
    w.logger.error('prefill invocation failed for good', { ...letter });
  };
}

export const failureHandler = createPrefillFailureHandler(initWiring);

function prefillNeverFinished(
  invocation: PrefillInvocation,
  condition: string,
  invocations: number | null,
  failure: PrefillFailureRecord,
): { code: string; message: string } {
  if (condition === 'EventAgeExceeded') {
    return {
      code: 'timeout',
      message: `request ${invocation.requestId} waited too long for a prefill slot (the invocation expired); send it again later`,
    };
  }
  const tries = invocations === null ? '' : ` after ${invocations} invocations`;
  const cause = failure.responsePayload?.errorType ? ` (${failure.responsePayload.errorType})` : '';
  return {
    code: 'prefill_failed',
    message: `the prefill of request ${invocation.requestId} did not finish${tries}${cause}`,
  };
}
