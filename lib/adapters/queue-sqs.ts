import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import type { Queue, QueueMessage } from '../core/ports';

export interface SqsQueueOptions {
  readonly client: SQSClient;
  readonly queueUrl: string;
  /** Where SQS redrive moves poison messages; only read by `deadLetters()`. */
  readonly deadLetterQueueUrl?: string;
}

/** SQS service limits. */
const MAX_BATCH = 10;
const MAX_WAIT_SECONDS = 20;
const MAX_VISIBILITY_SECONDS = 12 * 60 * 60;

/**
 * The KV handoff queue on SQS. The move to the dead-letter queue after `maxReceives` is SQS redrive,
 * configured on the queue by CDK, so this adapter never counts receives itself.
 */
export class SqsQueue implements Queue {
  private readonly client: SQSClient;
  private readonly queueUrl: string;
  private readonly deadLetterQueueUrl: string | undefined;

  constructor(options: SqsQueueOptions) {
    this.client = options.client;
    this.queueUrl = options.queueUrl;
    this.deadLetterQueueUrl = options.deadLetterQueueUrl;
  }

  async send(body: string): Promise<void> {
    await this.client.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: body }));
  }

  async receive(maxMessages: number, waitMs: number): Promise<QueueMessage[]> {
    const out = await this.client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: clamp(Math.floor(maxMessages), 1, MAX_BATCH),
        WaitTimeSeconds: clamp(Math.ceil(waitMs / 1000), 0, MAX_WAIT_SECONDS),
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
    );
    return (out.Messages ?? []).flatMap((m) => {
      const message = fromSdkMessage(m);
      return message ? [message] : [];
    });
  }

  async ack(receipt: string): Promise<void> {
    await this.client.send(new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: receipt }));
  }

  async release(receipt: string, delayMs = 0): Promise<void> {
    // The next receive bumps ApproximateReceiveCount, which is what makes this count as a failed attempt.
    await this.client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.queueUrl,
        ReceiptHandle: receipt,
        VisibilityTimeout: clamp(Math.ceil(delayMs / 1000), 0, MAX_VISIBILITY_SECONDS),
      }),
    );
  }

  async depth(): Promise<number> {
    const out = await this.client.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    const attributes = out.Attributes ?? {};
    return toCount(attributes.ApproximateNumberOfMessages) + toCount(attributes.ApproximateNumberOfMessagesNotVisible);
  }

  async deadLetters(): Promise<string[]> {
    if (this.deadLetterQueueUrl === undefined) return [];
    // Visibility 0 peeks without hiding the messages from whoever inspects or redrives the DLQ next.
    const out = await this.client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.deadLetterQueueUrl,
        MaxNumberOfMessages: MAX_BATCH,
        VisibilityTimeout: 0,
        WaitTimeSeconds: 0,
      }),
    );
    return (out.Messages ?? []).map((m) => m.Body ?? '');
  }
}

/** The fields of a Lambda SQS event record this adapter reads (structural, so no @types/aws-lambda needed). */
export interface SqsEventRecord {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly attributes: { readonly ApproximateReceiveCount?: string; readonly [name: string]: string | undefined };
}

/** A Lambda SQS event record as a QueueMessage, for the decode function's event-source batch. */
export function sqsRecordToMessage(record: SqsEventRecord): QueueMessage {
  return {
    body: record.body,
    receipt: record.receiptHandle,
    receiveCount: toReceiveCount(record.attributes.ApproximateReceiveCount),
  };
}

function fromSdkMessage(m: Message): QueueMessage | null {
  // Without a receipt handle the message can be neither acked nor released; SQS always sends one.
  if (m.ReceiptHandle === undefined) return null;
  return {
    body: m.Body ?? '',
    receipt: m.ReceiptHandle,
    receiveCount: toReceiveCount(m.Attributes?.ApproximateReceiveCount),
  };
}

/** SQS sends counts as decimal strings; a missing or malformed one is treated as a first delivery. */
function toReceiveCount(raw: string | undefined): number {
  const n = Number.parseInt(raw ?? '', 10);
  return Number.isFinite(n) && n >= 1 ? n : 1;
}

function toCount(raw: string | undefined): number {
  const n = Number.parseInt(raw ?? '', 10);
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

function clamp(value: number, min: number, max: number): number {
  if (Number.isNaN(value)) return min;
  return Math.min(max, Math.max(min, value));
}
