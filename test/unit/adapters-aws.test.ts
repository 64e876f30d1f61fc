import {
  AccessDeniedException,
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  ThrottlingException,
  ValidationException,
} from '@aws-sdk/client-bedrock-runtime';
import type { ConverseStreamOutput } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  AccessDenied,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { GetObjectCommandOutput } from '@aws-sdk/client-s3';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { awsClientConfig, s3ClientConfig } from '../../lib/adapters/aws-clients';
import { BedrockBackend } from '../../lib/adapters/backend-bedrock';
import type { BedrockDecodeSession } from '../../lib/adapters/backend-bedrock';
import { S3KvStore } from '../../lib/adapters/kv-s3';
import { SqsQueue, sqsRecordToMessage } from '../../lib/adapters/queue-sqs';
import { DynamoDbResultStore } from '../../lib/adapters/result-dynamodb';
import type { DecodeInput, GeneratedToken } from '../../lib/core/ports';

const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/disagg-handoff';
const DLQ_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/disagg-handoff-dlq';
const META = { httpStatusCode: 200, requestId: 'req-1', attempts: 1, totalRetryDelay: 0 };

describe('aws client config', () => {
  it('defaults to us-east-1 with no endpoint override', () => {
    expect(awsClientConfig({})).toEqual({ region: 'us-east-1' });
    expect(s3ClientConfig({})).toEqual({ region: 'us-east-1' });
  });

  it('takes the region and the AWS_ENDPOINT_URL override from the environment', () => {
    const env = { AWS_REGION: 'eu-west-1', AWS_ENDPOINT_URL: 'http://localhost.localstack.cloud:4566' };
    expect(awsClientConfig(env)).toEqual({ region: 'eu-west-1', endpoint: 'http://localhost.localstack.cloud:4566' });
  });

  it('uses path-style S3 addressing only when an endpoint is overridden', () => {
    expect(s3ClientConfig({ AWS_ENDPOINT_URL: 'http://localhost:4566' })).toEqual({
      region: 'us-east-1',
      endpoint: 'http://localhost:4566',
      forcePathStyle: true,
    });
    expect(s3ClientConfig({ AWS_REGION: 'us-west-2', AWS_ENDPOINT_URL: '' })).toEqual({ region: 'us-west-2' });
  });

  it('prefers the per-service endpoint (AWS_ENDPOINT_URL_<SERVICE>) over the global one, so services can sit on different ports', () => {
    const env = {
      AWS_ENDPOINT_URL: 'http://127.0.0.1:4566',
      AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9324',
      AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:8000',
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: 'http://127.0.0.1:9000',
    };
    expect(awsClientConfig(env, 'sqs').endpoint).toBe('http://127.0.0.1:9324');
    expect(awsClientConfig(env, 'dynamodb').endpoint).toBe('http://127.0.0.1:8000');
    expect(awsClientConfig(env, 'bedrockRuntime').endpoint).toBe('http://127.0.0.1:9000');
    expect(awsClientConfig(env, 'lambda').endpoint).toBe('http://127.0.0.1:4566');
  });

  it('forces path-style S3 when only the S3 endpoint is overridden', () => {
    expect(s3ClientConfig({ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:4567' })).toEqual({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:4567',
      forcePathStyle: true,
    });
  });

  it('ignores every override with AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true', () => {
    const env = {
      AWS_ENDPOINT_URL: 'http://a',
      AWS_ENDPOINT_URL_SQS: 'http://b',
      AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true',
    };
    expect(awsClientConfig(env, 'sqs')).toEqual({ region: 'us-east-1' });
    expect(s3ClientConfig(env)).toEqual({ region: 'us-east-1' });
  });
});

describe('SqsQueue', () => {
  function setup(deadLetterQueueUrl?: string) {
    const client = new SQSClient({ region: 'us-east-1' });
    const mock = mockClient(client);
    const queue = new SqsQueue({ client, queueUrl: QUEUE_URL, deadLetterQueueUrl });
    return { mock, queue };
  }

  it('sends the body to the queue URL', async () => {
    const { mock, queue } = setup();
    mock.on(SendMessageCommand).resolves({ MessageId: 'm-1', $metadata: META });
    await queue.send('{"v":1}');
    expect(mock.commandCalls(SendMessageCommand).map((c) => c.args[0].input)).toEqual([
      { QueueUrl: QUEUE_URL, MessageBody: '{"v":1}' },
    ]);
  });

  it('clamps MaxNumberOfMessages to 1..10 and WaitTimeSeconds to ceil(waitMs / 1000) capped at 20', async () => {
    const { mock, queue } = setup();
    mock.on(ReceiveMessageCommand).resolves({ $metadata: META });
    await queue.receive(25, 1500);
    await queue.receive(0, 60_000);
    await queue.receive(4, 0);
    const inputs = mock.commandCalls(ReceiveMessageCommand).map((c) => c.args[0].input);
    expect(inputs[0]).toEqual({
      QueueUrl: QUEUE_URL,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 2,
      MessageSystemAttributeNames: ['ApproximateReceiveCount'],
    });
    expect(inputs.slice(1).map((i) => [i.MaxNumberOfMessages, i.WaitTimeSeconds])).toEqual([
      [1, 20],
      [4, 0],
    ]);
  });

  it('maps received messages to body, receipt handle and parsed ApproximateReceiveCount', async () => {
    const { mock, queue } = setup();
    mock.on(ReceiveMessageCommand).resolves({
      Messages: [
        {
          MessageId: 'm-1',
          ReceiptHandle: 'AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...',
          MD5OfBody: 'fafb00f5732ab283681e124bf8747ed1',
          Body: 'first',
          Attributes: { ApproximateReceiveCount: '1' },
        },
        { MessageId: 'm-2', ReceiptHandle: 'AQEBzbVv...', Body: 'retry', Attributes: { ApproximateReceiveCount: '3' } },
      ],
      $metadata: META,
    });
    expect(await queue.receive(10, 0)).toEqual([
      { body: 'first', receipt: 'AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...', receiveCount: 1 },
      { body: 'retry', receipt: 'AQEBzbVv...', receiveCount: 3 },
    ]);
  });

  it('returns no messages when a long poll comes back empty', async () => {
    const { mock, queue } = setup();
    mock.on(ReceiveMessageCommand).resolves({ $metadata: META });
    expect(await queue.receive(10, 20_000)).toEqual([]);
  });

  it('acks by deleting the message with its receipt handle', async () => {
    const { mock, queue } = setup();
    mock.on(DeleteMessageCommand).resolves({ $metadata: META });
    await queue.ack('AQEB-receipt');
    expect(mock.commandCalls(DeleteMessageCommand)[0]?.args[0].input).toEqual({
      QueueUrl: QUEUE_URL,
      ReceiptHandle: 'AQEB-receipt',
    });
  });

  it('releases by setting the visibility timeout to the delay in whole seconds, 0 by default', async () => {
    const { mock, queue } = setup();
    mock.on(ChangeMessageVisibilityCommand).resolves({ $metadata: META });
    await queue.release('AQEB-a');
    await queue.release('AQEB-b', 2500);
    expect(mock.commandCalls(ChangeMessageVisibilityCommand).map((c) => c.args[0].input)).toEqual([
      { QueueUrl: QUEUE_URL, ReceiptHandle: 'AQEB-a', VisibilityTimeout: 0 },
      { QueueUrl: QUEUE_URL, ReceiptHandle: 'AQEB-b', VisibilityTimeout: 3 },
    ]);
  });

  it('reports depth as visible plus in-flight messages', async () => {
    const { mock, queue } = setup();
    mock.on(GetQueueAttributesCommand).resolves({
      Attributes: { ApproximateNumberOfMessages: '7', ApproximateNumberOfMessagesNotVisible: '2' },
      $metadata: META,
    });
    expect(await queue.depth()).toBe(9);
    expect(mock.commandCalls(GetQueueAttributesCommand)[0]?.args[0].input).toEqual({
      QueueUrl: QUEUE_URL,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    });
  });

  it('peeks the dead-letter queue with visibility timeout 0', async () => {
    const { mock, queue } = setup(DLQ_URL);
    mock.on(ReceiveMessageCommand, { QueueUrl: DLQ_URL }).resolves({
      Messages: [{ MessageId: 'd-1', ReceiptHandle: 'AQEB-d', Body: 'poison' }],
      $metadata: META,
    });
    expect(await queue.deadLetters()).toEqual(['poison']);
    expect(mock.commandCalls(ReceiveMessageCommand)[0]?.args[0].input).toEqual({
      QueueUrl: DLQ_URL,
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 0,
      WaitTimeSeconds: 0,
    });
  });

  it('has no dead letters and makes no call when no DLQ is configured', async () => {
    const { mock, queue } = setup();
    expect(await queue.deadLetters()).toEqual([]);
    expect(mock.calls()).toHaveLength(0);
  });
});

describe('sqsRecordToMessage', () => {
  it('converts a Lambda SQS event record, parsing ApproximateReceiveCount', () => {
    const record = {
      messageId: '059f36b4-87a3-44ab-83d2-661975830a7d',
      receiptHandle: 'AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...',
      body: '{"v":1,"requestId":"r-1"}',
      attributes: {
        ApproximateReceiveCount: '2',
        SentTimestamp: '1545082649183',
        SenderId: 'AIDAIENQZJOLO23YVJ4VO',
        ApproximateFirstReceiveTimestamp: '1545082649185',
      },
      messageAttributes: {},
      md5OfBody: 'e4e68fb7bd0e697a0ae8f1bb342846b3',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:disagg-handoff',
      awsRegion: 'us-east-1',
    };
    expect(sqsRecordToMessage(record)).toEqual({
      body: '{"v":1,"requestId":"r-1"}',
      receipt: 'AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...',
      receiveCount: 2,
    });
  });
});

/** A GetObject body as the SDK hands it over: a stream with the SDK's transform helpers mixed in. */
function objectBody(bytes: Uint8Array): GetObjectCommandOutput['Body'] {
  return {
    transformToByteArray: async () => bytes,
    transformToString: async () => new TextDecoder().decode(bytes),
    transformToWebStream: () => new Blob([bytes]).stream(),
  } as unknown as GetObjectCommandOutput['Body'];
}

describe('S3KvStore', () => {
  const T0 = Date.parse('2026-01-01T00:00:00Z');

  function setup(options: { prefix?: string; now?: number } = {}) {
    const client = new S3Client({ region: 'us-east-1' });
    const mock = mockClient(client);
    let now = options.now ?? T0;
    const store = new S3KvStore({ client, bucket: 'disagg-kv', prefix: options.prefix, now: () => now });
    return { mock, store, advance: (ms: number) => (now += ms) };
  }

  it('puts the blob under the prefix as octet-stream with its lease end in metadata', async () => {
    const { mock, store } = setup();
    mock.on(PutObjectCommand).resolves({ ETag: '"abc"', $metadata: META });
    const bytes = new Uint8Array([1, 2, 3]);
    await store.put('req-1/attempt-1', bytes, 60_000);
    expect(mock.commandCalls(PutObjectCommand)[0]?.args[0].input).toEqual({
      Bucket: 'disagg-kv',
      Key: 'kv/req-1/attempt-1',
      Body: bytes,
      ContentType: 'application/octet-stream',
      Metadata: { 'expires-at': String(T0 + 60_000) },
      Expires: new Date(T0 + 60_000),
    });
  });

  it('honours a custom prefix', async () => {
    const { mock, store } = setup({ prefix: 'blobs/' });
    mock.on(DeleteObjectCommand).resolves({ $metadata: { ...META, httpStatusCode: 204 } });
    await store.delete('k');
    expect(mock.commandCalls(DeleteObjectCommand)[0]?.args[0].input).toEqual({ Bucket: 'disagg-kv', Key: 'blobs/k' });
  });

  it('gets the bytes of a live blob', async () => {
    const { mock, store, advance } = setup();
    mock.on(GetObjectCommand, { Bucket: 'disagg-kv', Key: 'kv/k' }).resolves({
      Body: objectBody(new Uint8Array([9, 8, 7])),
      ContentType: 'application/octet-stream',
      ContentLength: 3,
      Metadata: { 'expires-at': String(T0 + 60_000) },
      $metadata: META,
    });
    advance(59_000);
    expect(await store.get('k')).toEqual(new Uint8Array([9, 8, 7]));
  });

  it('returns null for a missing key (NoSuchKey)', async () => {
    const { mock, store } = setup();
    mock
      .on(GetObjectCommand)
      .rejects(
        new NoSuchKey({ message: 'The specified key does not exist.', $metadata: { ...META, httpStatusCode: 404 } }),
      );
    expect(await store.get('gone')).toBeNull();
  });

  it('rethrows errors other than a missing key', async () => {
    const { mock, store } = setup();
    mock
      .on(GetObjectCommand)
      .rejects(new AccessDenied({ message: 'Access Denied', $metadata: { ...META, httpStatusCode: 403 } }));
    await expect(store.get('k')).rejects.toThrow('Access Denied');
  });

  it('treats a blob whose lease has passed as missing, before the lifecycle rule removes it', async () => {
    const { mock, store, advance } = setup();
    mock.on(GetObjectCommand).resolves({
      Body: objectBody(new Uint8Array([1])),
      Metadata: { 'expires-at': String(T0 + 60_000) },
      $metadata: META,
    });
    advance(60_000);
    expect(await store.get('k')).toBeNull();
  });

  it('deletes the object', async () => {
    const { mock, store } = setup();
    mock.on(DeleteObjectCommand).resolves({ $metadata: { ...META, httpStatusCode: 204 } });
    await store.delete('req-1');
    expect(mock.commandCalls(DeleteObjectCommand)[0]?.args[0].input).toEqual({ Bucket: 'disagg-kv', Key: 'kv/req-1' });
  });

  it('counts objects across ListObjectsV2 pages using the continuation token', async () => {
    const { mock, store } = setup();
    const obj = (Key: string) => ({ Key, Size: 1024, LastModified: new Date(T0), ETag: '"e"' });
    mock
      .on(ListObjectsV2Command)
      .resolvesOnce({
        Contents: [obj('kv/a'), obj('kv/b')],
        KeyCount: 2,
        IsTruncated: true,
        NextContinuationToken: '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=',
        $metadata: META,
      })
      .resolvesOnce({ Contents: [obj('kv/c')], KeyCount: 1, IsTruncated: false, $metadata: META });
    expect(await store.count()).toBe(3);
    expect(mock.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input)).toEqual([
      { Bucket: 'disagg-kv', Prefix: 'kv/', ContinuationToken: undefined },
      { Bucket: 'disagg-kv', Prefix: 'kv/', ContinuationToken: '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=' },
    ]);
  });

  it('counts zero for an empty prefix (S3 omits Contents)', async () => {
    const { mock, store } = setup();
    mock.on(ListObjectsV2Command).resolves({ KeyCount: 0, IsTruncated: false, $metadata: META });
    expect(await store.count()).toBe(0);
  });
});

describe('DynamoDbResultStore', () => {
  const T0 = Date.parse('2026-01-01T00:00:00Z');

  function setup() {
    const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
    const mock = mockClient(client);
    let now = T0;
    const store = new DynamoDbResultStore<{ state: string; tokens: string[] }>({
      client,
      tableName: 'disagg-results',
      now: () => now,
    });
    return { mock, store, advance: (ms: number) => (now += ms) };
  }

  it('puts pk, the record and expiresAt as epoch seconds (the table TTL attribute), rounded up', async () => {
    const { mock, store } = setup();
    mock.on(PutCommand).resolves({ $metadata: META });
    await store.put('req-1', { state: 'done', tokens: ['a'] }, 90_500);
    expect(mock.commandCalls(PutCommand)[0]?.args[0].input).toEqual({
      TableName: 'disagg-results',
      Item: { pk: 'req-1', record: '{"state":"done","tokens":["a"]}', expiresAt: T0 / 1000 + 91 },
    });
  });

  it('gets the record back with a consistent read on pk', async () => {
    const { mock, store } = setup();
    mock.on(GetCommand).resolves({
      Item: { pk: 'req-1', record: '{"state":"done","tokens":["a","b"]}', expiresAt: T0 / 1000 + 60 },
      $metadata: META,
    });
    expect(await store.get('req-1')).toEqual({ state: 'done', tokens: ['a', 'b'] });
    expect(mock.commandCalls(GetCommand)[0]?.args[0].input).toEqual({
      TableName: 'disagg-results',
      Key: { pk: 'req-1' },
      ConsistentRead: true,
    });
  });

  it('returns null for a missing item', async () => {
    const { mock, store } = setup();
    mock.on(GetCommand).resolves({ $metadata: META });
    expect(await store.get('nope')).toBeNull();
  });

  it('ignores an item past expiresAt that TTL has not deleted yet', async () => {
    const { mock, store, advance } = setup();
    mock.on(GetCommand).resolves({
      Item: { pk: 'req-1', record: '{"state":"done","tokens":[]}', expiresAt: T0 / 1000 + 60 },
      $metadata: META,
    });
    advance(60_000);
    expect(await store.get('req-1')).toBeNull();
  });

  it('deletes by pk', async () => {
    const { mock, store } = setup();
    mock.on(DeleteCommand).resolves({ $metadata: META });
    await store.delete('req-1');
    expect(mock.commandCalls(DeleteCommand)[0]?.args[0].input).toEqual({
      TableName: 'disagg-results',
      Key: { pk: 'req-1' },
    });
  });
});

describe('BedrockBackend', () => {
  const MODEL = 'us.anthropic.claude-haiku-4-5-20251001-v1:0';

  function setup() {
    const client = new BedrockRuntimeClient({ region: 'us-east-1' });
    const mock = mockClient(client);
    let now = 1000;
    const backend = new BedrockBackend({ client, modelId: MODEL, now: () => (now += 10) });
    return { mock, backend };
  }

  const input: DecodeInput = {
    promptIds: [1, 2, 3],
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Say hello' },
      { role: 'tool', content: 'tool output' },
    ],
    kv: null,
    firstToken: null,
    sampling: { temperature: 0.7, topP: 0.9, seed: 42, maxTokens: 64, stop: ['\n\n'] },
  };

  async function* events(list: ConverseStreamOutput[], onRelease?: () => void): AsyncGenerator<ConverseStreamOutput> {
    try {
      for (const e of list) yield e;
    } finally {
      onRelease?.();
    }
  }

  const helloStream = (): ConverseStreamOutput[] => [
    { messageStart: { role: 'assistant' } },
    { contentBlockDelta: { delta: { text: 'Hel' }, contentBlockIndex: 0 } },
    { contentBlockDelta: { delta: { text: 'lo' }, contentBlockIndex: 0 } },
    { contentBlockStop: { contentBlockIndex: 0 } },
    { messageStop: { stopReason: 'end_turn' } },
    {
      metadata: {
        usage: { inputTokens: 12, outputTokens: 2, totalTokens: 14 },
        metrics: { latencyMs: 231 },
      },
    },
  ];

  async function drain(session: { next(): Promise<GeneratedToken | null> }): Promise<GeneratedToken[]> {
    const out: GeneratedToken[] = [];
    for (let t = await session.next(); t !== null; t = await session.next()) out.push(t);
    return out;
  }

  it('prefills without KV or a first token and without calling Bedrock', async () => {
    const { mock, backend } = setup();
    expect(backend.name).toBe('bedrock');
    expect(await backend.prefill([1, 2], input.sampling)).toEqual({ kv: null, firstToken: null });
    expect(mock.calls()).toHaveLength(0);
  });

  it('calls ConverseStream with system text, alternating user/assistant turns and the inference config', async () => {
    const { mock, backend } = setup();
    mock.on(ConverseStreamCommand).resolves({ stream: events(helloStream()), $metadata: META });
    await drain(backend.startDecode(input));
    expect(mock.commandCalls(ConverseStreamCommand)[0]?.args[0].input).toEqual({
      modelId: MODEL,
      system: [{ text: 'Be brief.' }],
      messages: [
        { role: 'user', content: [{ text: 'Hi' }] },
        { role: 'assistant', content: [{ text: 'Hello!' }] },
        { role: 'user', content: [{ text: 'Say hello' }, { text: 'tool output' }] },
      ],
      inferenceConfig: { maxTokens: 64, temperature: 0.7, topP: 0.9, stopSequences: ['\n\n'] },
    });
  });

  it('omits topP when it is 1 and stopSequences when there are none', async () => {
    const { mock, backend } = setup();
    mock.on(ConverseStreamCommand).resolves({ stream: events(helloStream()), $metadata: META });
    await drain(backend.startDecode({ ...input, sampling: { temperature: 0, topP: 1, seed: 1, maxTokens: 8 } }));
    expect(mock.commandCalls(ConverseStreamCommand)[0]?.args[0].input.inferenceConfig).toEqual({
      maxTokens: 8,
      temperature: 0,
    });
  });

  it('yields each text delta as a token, then null at messageStop, recording usage and latency', async () => {
    const { mock, backend } = setup();
    mock.on(ConverseStreamCommand).resolves({ stream: events(helloStream()), $metadata: META });
    const session = backend.startDecode(input);
    expect(await session.next()).toEqual({ id: null, text: 'Hel' });
    expect(await session.next()).toEqual({ id: null, text: 'lo' });
    expect(await session.next()).toBeNull();
    expect(await session.next()).toBeNull();
    expect(session.mode).toBe('stream');
    expect(session.stopReason).toBe('end_turn');
    expect(session.usage).toEqual({ inputTokens: 12, outputTokens: 2 });
    expect(session.serviceLatencyMs).toBe(231);
    // The fake clock ticks 10 ms per reading: start, first token, end.
    expect(session.measuredFirstTokenMs).toBe(10);
    expect(session.measuredMs).toBe(20);
  });

  it('throws an error event reported inside the stream', async () => {
    const { mock, backend } = setup();
    mock.on(ConverseStreamCommand).resolves({
      stream: events([
        { contentBlockDelta: { delta: { text: 'Hel' }, contentBlockIndex: 0 } },
        {
          modelStreamErrorException: { message: 'Model stream error', originalStatusCode: 500 },
        } as ConverseStreamOutput,
      ]),
      $metadata: META,
    });
    const session = backend.startDecode(input);
    expect(await session.next()).toEqual({ id: null, text: 'Hel' });
    await expect(session.next()).rejects.toMatchObject({ name: 'ModelStreamErrorException' });
  });

  it('falls back to Converse when the model is unsupported for streaming, yielding the whole text once', async () => {
    const { mock, backend } = setup();
    mock
      .on(ConverseStreamCommand)
      .rejects(new ValidationException({ message: 'The model is unsupported for streaming.', $metadata: META }));
    mock.on(ConverseCommand).resolves({
      output: { message: { role: 'assistant', content: [{ text: 'Hello there.' }] } },
      stopReason: 'end_turn',
      usage: { inputTokens: 12, outputTokens: 3, totalTokens: 15 },
      metrics: { latencyMs: 410 },
      $metadata: META,
    });
    const session = backend.startDecode(input);
    expect(await drain(session)).toEqual([{ id: null, text: 'Hello there.' }]);
    expect(session.mode).toBe('converse');
    expect(session.usage).toEqual({ inputTokens: 12, outputTokens: 3 });
    expect(session.serviceLatencyMs).toBe(410);
    expect(session.measuredMs).toBe(10);
    const streamInput = mock.commandCalls(ConverseStreamCommand)[0]?.args[0].input;
    expect(mock.commandCalls(ConverseCommand)[0]?.args[0].input).toEqual(streamInput);
  });

  it('remembers that streaming is unsupported and goes straight to Converse for later sessions', async () => {
    const { mock, backend } = setup();
    mock
      .on(ConverseStreamCommand)
      .rejects(new ValidationException({ message: 'The model is unsupported for streaming.', $metadata: META }));
    mock.on(ConverseCommand).resolves({
      output: { message: { role: 'assistant', content: [{ text: 'ok' }] } },
      stopReason: 'end_turn',
      $metadata: META,
    });
    await drain(backend.startDecode(input));
    await drain(backend.startDecode(input));
    expect(mock.commandCalls(ConverseStreamCommand)).toHaveLength(1);
    expect(mock.commandCalls(ConverseCommand)).toHaveLength(2);
  });

  it('falls back to Converse when the role may not invoke with a response stream', async () => {
    const { mock, backend } = setup();
    mock.on(ConverseStreamCommand).rejects(
      new AccessDeniedException({
        message:
          'User: arn:aws:sts::123456789012:assumed-role/decode/fn is not authorized to perform: bedrock:InvokeModelWithResponseStream on resource: arn:aws:bedrock:us-east-1::foundation-model/x',
        $metadata: { ...META, httpStatusCode: 403 },
      }),
    );
    mock.on(ConverseCommand).resolves({
      output: { message: { role: 'assistant', content: [{ text: 'Hi' }] } },
      stopReason: 'end_turn',
      $metadata: META,
    });
    expect(await drain(backend.startDecode(input))).toEqual([{ id: null, text: 'Hi' }]);
  });

  it('rethrows other ConverseStream failures without trying Converse', async () => {
    const { mock, backend } = setup();
    mock.on(ConverseStreamCommand).rejects(
      new ValidationException({
        message: 'The provided model identifier is invalid.',
        $metadata: { ...META, httpStatusCode: 400 },
      }),
    );
    await expect(backend.startDecode(input).next()).rejects.toThrow('model identifier is invalid');
    mock
      .on(ConverseStreamCommand)
      .rejects(new ThrottlingException({ message: 'Too many requests, please wait.', $metadata: META }));
    await expect(backend.startDecode(input).next()).rejects.toThrow('Too many requests');
    expect(mock.commandCalls(ConverseCommand)).toHaveLength(0);
  });

  it('close() aborts the request, releases the stream and ends the session', async () => {
    const { mock, backend } = setup();
    let released = false;
    mock.on(ConverseStreamCommand).resolves({
      stream: events(helloStream(), () => (released = true)),
      $metadata: META,
    });
    const session: BedrockDecodeSession = backend.startDecode(input);
    expect(await session.next()).toEqual({ id: null, text: 'Hel' });
    session.close();
    expect(await session.next()).toBeNull();
    // sinon records every argument, though the stub's type only declares the command.
    const args = (mock.commandCalls(ConverseStreamCommand)[0]?.args ?? []) as unknown[];
    const options = args[1] as { abortSignal?: AbortSignal } | undefined;
    expect(options?.abortSignal?.aborted).toBe(true);
    await Promise.resolve();
    expect(released).toBe(true);
  });

  it('close() while the request is in flight ends the session and releases the stream that arrives', async () => {
    const { mock, backend } = setup();
    let released = false;
    let respond: (value: { stream: AsyncIterable<ConverseStreamOutput> }) => void = () => undefined;
    mock.on(ConverseStreamCommand).callsFake(() => new Promise((resolve) => (respond = resolve)));
    const session = backend.startDecode(input);
    const first = session.next();
    await Promise.resolve();
    session.close();
    // Not a generator: return() on a generator that never started skips its finally block.
    const stream: AsyncIterable<ConverseStreamOutput> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => ({ done: false, value: helloStream()[1]! }),
        return: async () => {
          released = true;
          return { done: true, value: undefined };
        },
      }),
    };
    respond({ stream });
    expect(await first).toBeNull();
    await Promise.resolve();
    expect(released).toBe(true);
  });
});
