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
import { RequestTracker } from '../lib/core/engine/tracker';
import type { QueueMessage } from '../lib/core/ports';
import { addRequestMetrics, describeError, requestLogFields } from './observability';
import { decodeDeps, defaultWiring, trackerDeps, type Wiring } from './wiring';

/**
 * Reports as batch item failures only the messages that could not be processed (a poison descriptor,
 * a store that failed): SQS delivers those again and redrives them to the DLQ after maxReceiveCount.
 * A request that ended failed or cancelled by policy is done, and its message is deleted.
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
    }
  };
}

/** The process's wiring, built on first use; exported so a cold start can be measured without an invocation. */
export const initWiring = defaultWiring('disagg-decode');

export const handler = createDecodeHandler(initWiring);

async function decodeBatch(w: Wiring, records: readonly SQSRecord[]): Promise<SQSBatchResponse> {
  const failures: SQSBatchItemFailure[] = [];
  const fail = (sqsRecord: SQSRecord, what: string, err: unknown): void => {
    w.logger.error(what, {
      messageId: sqsRecord.messageId,
      receiveCount: queueMessage(sqsRecord).receiveCount,
      error: describeError(err),
    });
    failures.push({ itemIdentifier: sqsRecord.messageId });
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
      try {
        const job = await intake(w, descriptor);
        if (job === 'busy') {
          // Another worker holds this request: let SQS deliver it again after the visibility timeout.
          failures.push({ itemIdentifier: sqsRecord.messageId });
          return null;
        }
        return job ? { sqsRecord, job } : null;
      } catch (err) {
        fail(sqsRecord, 'decode intake failed', err);
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
        },
        (err: unknown) => fail(entry.sqsRecord, 'decode failed', err),
      ),
    );
  }
  await Promise.all(running);
  return { batchItemFailures: failures };
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
