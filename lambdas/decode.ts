/**
 * The decode function, fed by the handoff queue's SQS event source: the records of one event are one
 * decode batch. Each descriptor's KV is loaded, verified and freed (under the KV failure policy), then
 * every request runs in one continuously batched decoder on the emulated decode pool.
 */
import './bundle-require';
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { sqsRecordToMessage } from '../lib/adapters/queue-sqs';
import {
  DecodeBatcher,
  intakeHandoff,
  parseDescriptor,
  recordForDescriptor,
  type DecodeJob,
} from '../lib/core/engine/decode-stage';
import type { HandoffDescriptor } from '../lib/core/handoff/descriptor';
import { isTerminal, type RequestRecord } from '../lib/core/engine/record';
import { RequestTracker } from '../lib/core/engine/tracker';
import type { QueueMessage } from '../lib/core/ports';
import type { StageSpan } from '../lib/adapters/telemetry';
import { addRequestMetrics, describeError, requestLogFields } from './observability';
import { decodeDeps, defaultWiring, trackerDeps, type Wiring } from './wiring';

/**
 * Reports as batch item failures only the messages that could not be processed (a poison descriptor, a store
 * that failed), after setting their visibility to a short backoff so SQS delivers them again in seconds, not
 * after the queue's visibility timeout. On a message's last receive (DISAGG_MAX_RECEIVE_COUNT) the function
 * dead-letters it itself, as ids and sizes (the descriptor carries the prompt), ends its request failed, and
 * lets the event source delete it; the queue's own redrive, one receive later, only catches a crash on that
 * receive. A request that ended failed or cancelled by policy is done, and its message is deleted.
 */
export function createDecodeHandler(
  wiring: () => Promise<Wiring>,
): (event: SQSEvent, context?: Context) => Promise<SQSBatchResponse> {
  return async (event) => {
    const w = await wiring();
    try {
      return await decodeBatch(w, event.Records);
    } finally {
      w.metrics.publishStoredMetrics();
      await w.tracing.flush().catch(() => undefined);
    }
  };
}

/** The process's wiring, built on first use; exported so a cold start can be measured without an invocation. */
export const initWiring = defaultWiring('disagg-decode');

export const handler = createDecodeHandler(initWiring);

async function decodeBatch(w: Wiring, records: readonly SQSRecord[]): Promise<SQSBatchResponse> {
  const failures: SQSBatchItemFailure[] = [];
  const pending: Promise<void>[] = [];
  const fail = (sqsRecord: SQSRecord, what: string, err: unknown, descriptor?: HandoffDescriptor): void => {
    const { receiveCount } = queueMessage(sqsRecord);
    w.logger.error(what, { messageId: sqsRecord.messageId, receiveCount, error: describeError(err) });
    if (receiveCount >= w.settings.maxReceiveCount) {
      pending.push(
        deadLetter(w, sqsRecord, what, err, descriptor).catch((deadLetterErr: unknown) => {
          // Not recorded: leave it to the queue's redrive, one receive later.
          w.logger.error('could not dead-letter a descriptor', {
            messageId: sqsRecord.messageId,
            error: describeError(deadLetterErr),
          });
          failures.push({ itemIdentifier: sqsRecord.messageId });
        }),
      );
      return;
    }
    failures.push({ itemIdentifier: sqsRecord.messageId });
    pending.push(backOff(w, sqsRecord, redeliveryBackoffMs(receiveCount)));
  };

  const spans = new Map<string, StageSpan>();
  const endSpan = (sqsRecord: SQSRecord, record?: RequestRecord): void => {
    const span = spans.get(sqsRecord.messageId);
    if (!span) return;
    if (record) {
      span.setAttributes({ 'disagg.state': record.state });
      if (record.state === 'failed') span.fail(record.error?.code ?? 'failed');
    }
    span.end();
    spans.delete(sqsRecord.messageId);
  };
  // Intake for all records at once, so KV loads overlap; then they join the batch together.
  const intakes = await Promise.all(
    records.map(async (sqsRecord): Promise<{ sqsRecord: SQSRecord; job: DecodeJob } | null> => {
      let descriptor: HandoffDescriptor;
      try {
        descriptor = parseDescriptor(queueMessage(sqsRecord).body);
      } catch (err) {
        fail(sqsRecord, 'poison handoff descriptor', err);
        return null;
      }
      const span = w.tracing.start('disagg.decode', descriptor.traceparent, {
        'disagg.request_id': descriptor.requestId,
        'disagg.kv': descriptor.kv.kind,
        'messaging.message.delivery_count': queueMessage(sqsRecord).receiveCount,
      });
      spans.set(sqsRecord.messageId, span);
      try {
        const job = await intake(w, descriptor);
        if (job === 'busy') {
          // Another delivery holds this request, and its message comes back if its worker dies: this copy is
          // delivered again once that claim could have lapsed, and deleted on its last receive.
          if (queueMessage(sqsRecord).receiveCount < w.settings.maxReceiveCount) {
            failures.push({ itemIdentifier: sqsRecord.messageId });
            pending.push(backOff(w, sqsRecord, BUSY_BACKOFF_MS));
          }
          return null;
        }
        return job ? { sqsRecord, job } : null;
      } catch (err) {
        fail(sqsRecord, 'decode intake failed', err, descriptor);
        return null;
      }
    }),
  );

  const batcher = new DecodeBatcher(w.config.decodePool, w.config, decodeDeps(w));
  const running: Promise<void>[] = [];
  for (const entry of intakes) {
    if (entry === null) continue;
    // An event larger than the batch (by count or KV memory) waits for room, as the embedded decode worker does.
    await batcher.waitForRoom();
    running.push(
      batcher.join(entry.job).then(
        () => {
          const record = entry.job.tracker.record;
          addRequestMetrics(w.metrics, record);
          w.logger.info('request ended', requestLogFields(record));
          endSpan(entry.sqsRecord, record);
        },
        (err: unknown) => {
          endSpan(entry.sqsRecord);
          fail(entry.sqsRecord, 'decode failed', err);
        },
      ),
    );
  }
  await Promise.all(running);
  // Spans of deliveries that never joined the batch (ended at intake, busy, failed).
  for (const sqsRecord of records) endSpan(sqsRecord);
  await Promise.all(pending);
  return { batchItemFailures: failures };
}

/** Seconds-scale backoff for a failed delivery: 2 s, 4 s, 8 s ... up to 30 s, well inside the request deadline. */
export function redeliveryBackoffMs(receiveCount: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(1, receiveCount));
}

/** How long a copy of a request another delivery holds waits: about one decode claim lease. */
const BUSY_BACKOFF_MS = 30_000;

/** Delivers the message again after `delayMs` instead of the queue's visibility timeout (best effort). */
async function backOff(w: Wiring, sqsRecord: SQSRecord, delayMs: number): Promise<void> {
  try {
    await w.queue.release(sqsRecord.receiptHandle, delayMs);
  } catch (err) {
    // The queue's visibility timeout still brings it back.
    w.logger.warn('could not shorten the redelivery of a descriptor', {
      messageId: sqsRecord.messageId,
      error: describeError(err),
    });
  }
}

/** What the dead-letter queue holds for a descriptor: ids and sizes, never the prompt or the KV. */
export interface HandoffDeadLetter {
  readonly v: 1;
  readonly kind: 'handoff_descriptor_failed';
  readonly messageId: string;
  readonly receiveCount: number;
  readonly bodyBytes: number;
  readonly requestId: string | null;
  readonly attempt: number | null;
  readonly promptTokens: number | null;
  readonly kvBytes: number | null;
  readonly reason: string;
  readonly error: { readonly name: string; readonly message: string };
  readonly at: string;
}

/**
 * The last receive of a descriptor that keeps failing: its request ends failed (a client stops waiting), a
 * stored KV blob is freed, and the dead-letter queue gets its ids and sizes for the alarm and for inspection.
 */
async function deadLetter(
  w: Wiring,
  sqsRecord: SQSRecord,
  reason: string,
  err: unknown,
  descriptor: HandoffDescriptor | undefined,
): Promise<void> {
  const { receiveCount } = queueMessage(sqsRecord);
  const letter: HandoffDeadLetter = {
    v: 1,
    kind: 'handoff_descriptor_failed',
    messageId: sqsRecord.messageId,
    receiveCount,
    bodyBytes: Buffer.byteLength(sqsRecord.body, 'utf8'),
    requestId: descriptor?.requestId ?? null,
    attempt: descriptor?.attempt ?? null,
    promptTokens: descriptor?.promptTokens ?? null,
    kvBytes: descriptor && descriptor.kv.kind !== 'none' ? descriptor.kv.bytes : null,
    reason,
    error: describeError(err),
    at: new Date(w.wallClockMs()).toISOString(),
  };
  if (descriptor) {
    const record = await w.results.get(descriptor.requestId);
    if (record !== null && !isTerminal(record.state)) {
      const tracker = new RequestTracker(record, trackerDeps(w), w.config.resultTtlMs);
      await tracker.finish('failed', {
        code: 'decode_failed',
        message: `request ${descriptor.requestId} could not be decoded after ${receiveCount} deliveries`,
      });
    }
    if (descriptor.kv.kind === 'ref') await w.kv.delete(descriptor.kv.key);
  }
  await w.deadLetterQueue.send(JSON.stringify(letter));
  w.logger.error('descriptor dead-lettered', { ...letter });
}

/**
 * The job to decode; null when there is nothing to do (ended at intake, or a finished request
 * delivered again); 'busy' when another worker holds the request.
 */
async function intake(w: Wiring, descriptor: HandoffDescriptor): Promise<DecodeJob | null | 'busy'> {
  const record = await recordForDescriptor(descriptor, w.results, w.config);
  const tracker = new RequestTracker(record, trackerDeps(w), w.config.resultTtlMs);
  const result = await intakeHandoff(descriptor, tracker, w.config, decodeDeps(w));
  switch (result.kind) {
    case 'decode':
      return result.job;
    case 'busy':
      w.logger.info('request is held by another decode worker; retrying later', { requestId: record.id });
      return 'busy';
    case 'duplicate':
      w.logger.warn('descriptor for a finished request; dropped', { requestId: record.id, state: record.state });
      return null;
    case 'ended':
      w.logger.info('request ended at decode intake', requestLogFields(record));
      return null;
  }
}

function queueMessage(r: SQSRecord): QueueMessage {
  return sqsRecordToMessage({
    messageId: r.messageId,
    receiptHandle: r.receiptHandle,
    body: r.body,
    attributes: { ApproximateReceiveCount: r.attributes.ApproximateReceiveCount },
  });
}
