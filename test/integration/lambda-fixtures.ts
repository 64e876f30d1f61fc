/**
 * Lambda events as API Gateway (REST, proxy integration) and the SQS event source deliver them, and
 * a stack of the three functions wired through `createWiring` over chosen stores, chained the way
 * AWS chains them: API → async invoke → prefill → SQS → decode.
 */
import { MemoryClaimStore } from '../../lib/adapters/claims-memory';
import { createHash, randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, SQSEvent, SQSRecord } from 'aws-lambda';
import { apiEvent } from '../api-gateway-event';
import { MemoryKvStore } from '../../lib/adapters/kv-memory';
import { MemoryQueue } from '../../lib/adapters/queue-memory';
import { MemoryResultStore } from '../../lib/adapters/result-memory';
import type { CancellationMarker } from '../../lib/core/engine/decode-stage';
import type { PrefillJob } from '../../lib/core/engine/prefill-stage';
import type { RequestRecord } from '../../lib/core/engine/record';
import type { GenerationBackend, KvStore, QueueMessage, ResultStore } from '../../lib/core/ports';
import { createApiHandler, streamApiEvent, type ResponseSink } from '../../lambdas/api';
import { createDecodeHandler } from '../../lambdas/decode';
import type { LogSink, MetricsSink } from '../../lambdas/observability';
import { createPrefillHandler } from '../../lambdas/prefill';
import { createWiring, type PrefillInvocation, type Wiring } from '../../lambdas/wiring';

export { apiEvent };

export const REGION = 'us-east-1';
export const QUEUE_ARN = `arn:aws:sqs:${REGION}:123456789012:disagg-handoff`;

/** The deployment environment the CDK stack sets, at timeScale 0. */
export const DEPLOYMENT_ENV_FOR_TESTS: Record<string, string> = {
  DISAGG_TIME_SCALE: '0',
  DISAGG_KV_STORE: 's3',
  DISAGG_KV_BUCKET: 'disagg-kv-123456789012',
  DISAGG_RESULTS_TABLE: 'disagg-results',
  DISAGG_HANDOFF_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/disagg-handoff',
  DISAGG_PREFILL_FUNCTION: 'disagg-prefill',
  DISAGG_DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/disagg-handoff-dlq',
  DISAGG_MAX_RECEIVE_COUNT: '3',
};

export function sqsEvent(
  messages: readonly { body: string; receiveCount?: number; messageId?: string; receipt?: string }[],
): SQSEvent {
  return {
    Records: messages.map((m): SQSRecord => ({
      messageId: m.messageId ?? randomUUID(),
      receiptHandle: m.receipt ?? `AQEB${randomUUID().replace(/-/g, '')}`,
      body: m.body,
      attributes: {
        ApproximateReceiveCount: String(m.receiveCount ?? 1),
        SentTimestamp: String(Date.now()),
        SenderId: 'AROAEXAMPLE:disagg-prefill',
        ApproximateFirstReceiveTimestamp: String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: createHash('md5').update(m.body).digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: QUEUE_ARN,
      awsRegion: REGION,
    })),
  };
}

/** Log lines as they were logged, to check what reaches the logs. */
export class LogRecorder implements LogSink {
  readonly lines: string[] = [];
  info(message: string, attributes?: Record<string, unknown>): void {
    this.lines.push(JSON.stringify({ level: 'info', message, ...attributes }));
  }
  warn(message: string, attributes?: Record<string, unknown>): void {
    this.lines.push(JSON.stringify({ level: 'warn', message, ...attributes }));
  }
  error(message: string, attributes?: Record<string, unknown>): void {
    this.lines.push(JSON.stringify({ level: 'error', message, ...attributes }));
  }
}

/** Records metrics by name, and by name plus dimensions (`name|clock=emulated`) for dimensioned ones. */
export class MetricsRecorder implements MetricsSink {
  readonly values = new Map<string, number[]>();
  published = 0;
  addMetric(name: string, _unit: string, value: number): void {
    this.values.set(name, [...(this.values.get(name) ?? []), value]);
  }
  singleMetric(): ReturnType<MetricsSink['singleMetric']> {
    let suffix = '';
    return {
      addDimensions: (dimensions) => {
        suffix = Object.entries(dimensions)
          .map(([k, v]) => `|${k}=${v}`)
          .join('');
      },
      addMetric: (name, unit, value) => this.addMetric(`${name}${suffix}`, unit, value),
    };
  }
  publishStoredMetrics(): void {
    this.published += 1;
  }
}

export interface StackStores {
  readonly kv?: KvStore;
  readonly results?: ResultStore<RequestRecord>;
  readonly cancellations?: ResultStore<CancellationMarker>;
}

export interface StackOptions {
  readonly env?: Record<string, string>;
  readonly stores?: StackStores;
  /** Run prefill and decode in the background when the API invokes prefill (so the API sees a result). */
  readonly chain?: boolean;
  readonly responseBudgetMs?: number;
  readonly maxBodyBytes?: number;
  readonly prefillBackend?: GenerationBackend;
  /** The generation backend of every function (a prefill backend of its own wins there). */
  readonly backend?: GenerationBackend;
}

/** The three functions over shared stores, each with its own wiring, as three Lambda functions have. */
export interface Stack {
  readonly api: ReturnType<typeof createApiHandler>;
  readonly prefill: ReturnType<typeof createPrefillHandler>;
  readonly decode: ReturnType<typeof createDecodeHandler>;
  readonly apiWiring: Wiring;
  readonly queue: MemoryQueue;
  /** The dead-letter queue the decode function and the failure handler write to. */
  readonly deadLetters: MemoryQueue;
  readonly kv: KvStore;
  readonly results: ResultStore<RequestRecord>;
  /** The prompts the API stored for prefill (the results table's `job#` items in AWS). */
  readonly prefillJobs: ResultStore<PrefillJob>;
  /** Payloads of the asynchronous prefill invokes, in order (ids and sizes). */
  readonly invoked: PrefillInvocation[];
  readonly logs: LogRecorder;
  readonly metrics: MetricsRecorder;
  /** Streams one API event into a recorder. */
  stream(event: APIGatewayProxyEvent): Promise<RecordedStream>;
  /** Delivers what the handoff queue holds to the decode function as one SQS event, as the event source does. */
  deliverHandoffs(): Promise<{ messages: QueueMessage[]; failures: string[] }>;
  /** Resolves when the background chain started by `chain: true` has finished. */
  settled(): Promise<void>;
}

export interface RecordedStream {
  status: number | null;
  headers: Record<string, string>;
  chunks: string[];
  ended: boolean;
}

export async function createStack(options: StackOptions = {}): Promise<Stack> {
  const env = { ...DEPLOYMENT_ENV_FOR_TESTS, ...options.env };
  const queue = new MemoryQueue({ visibilityTimeoutMs: 60_000, maxReceives: 3 });
  const kv = options.stores?.kv ?? new MemoryKvStore();
  const results = options.stores?.results ?? new MemoryResultStore<RequestRecord>();
  const cancellations = options.stores?.cancellations ?? new MemoryResultStore<CancellationMarker>();
  const logs = new LogRecorder();
  const metrics = new MetricsRecorder();
  const invoked: PrefillInvocation[] = [];
  const background: Promise<unknown>[] = [];
  // Claims, stored prompts and dead letters in memory: the functions share them here as they share the
  // DynamoDB table and the dead-letter queue in AWS.
  const claims = new MemoryClaimStore();
  const prefillJobs = new MemoryResultStore<PrefillJob>();
  const deadLetters = new MemoryQueue({ visibilityTimeoutMs: 60_000, maxReceives: 1_000 });
  const shared = {
    env,
    kv,
    results,
    cancellations,
    claims,
    queue,
    prefillJobs,
    deadLetterQueue: deadLetters,
    logger: logs,
    metrics,
  };

  const backend = options.prefillBackend ?? options.backend;
  const prefillWiring = await createWiring({ ...shared, ...(backend ? { backend } : {}) });
  const decodeWiring = await createWiring({ ...shared, ...(options.backend ? { backend: options.backend } : {}) });
  const prefill = createPrefillHandler(() => Promise.resolve(prefillWiring));
  const decode = createDecodeHandler(() => Promise.resolve(decodeWiring));

  const deliverHandoffs: Stack['deliverHandoffs'] = async () => {
    const messages = await queue.receive(10, 0);
    if (messages.length === 0) return { messages, failures: [] };
    const event = sqsEvent(messages.map((m) => ({ body: m.body, receiveCount: m.receiveCount, receipt: m.receipt })));
    const response = await decode(event);
    const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    // The event source deletes what succeeded; failures become visible again (here: at once).
    await Promise.all(
      event.Records.map((r, i) =>
        failed.has(r.messageId) ? queue.release(messages[i]!.receipt) : queue.ack(messages[i]!.receipt),
      ),
    );
    return { messages, failures: [...failed] };
  };

  const apiWiring = await createWiring({
    ...shared,
    sendPrefillInvocation: async (invocation) => {
      // Lambda serializes the payload: the prefill function gets JSON, not the API's objects.
      const payload = JSON.parse(JSON.stringify(invocation)) as PrefillInvocation;
      invoked.push(payload);
      if (options.chain) background.push(prefill(payload).then(() => deliverHandoffs()));
    },
    pollIntervalMs: 5,
    ...(options.responseBudgetMs !== undefined ? { responseBudgetMs: options.responseBudgetMs } : {}),
    ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}),
  });
  const api = createApiHandler(() => Promise.resolve(apiWiring));

  return {
    api,
    prefill,
    decode,
    apiWiring,
    queue,
    deadLetters,
    kv,
    results,
    prefillJobs,
    invoked,
    logs,
    metrics,
    async stream(event) {
      const recorded: RecordedStream = { status: null, headers: {}, chunks: [], ended: false };
      const sink: ResponseSink = {
        start(status, headers) {
          recorded.status = status;
          recorded.headers = headers;
        },
        write(chunk) {
          if (recorded.status === null) throw new Error('wrote before the status and headers');
          recorded.chunks.push(chunk);
        },
        end() {
          recorded.ended = true;
        },
      };
      await streamApiEvent(event, sink, apiWiring);
      return recorded;
    },
    deliverHandoffs,
    async settled() {
      await Promise.all(background);
    },
  };
}

/** The `data:` payloads of an SSE body, in order. */
export function sseEvents(body: string): string[] {
  return body
    .split('\n\n')
    .filter((block) => block.startsWith('data: '))
    .map((block) => block.slice('data: '.length));
}
