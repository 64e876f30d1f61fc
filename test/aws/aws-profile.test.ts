/**
 * The aws profile as `cdk synth` writes it (defaults, no -c), its cdk.out bundles run in Lambda execution
 * environments against AWS-protocol servers: KV through TLS Redis (the ElastiCache Serverless path), response
 * streaming through the stream handler, the decode event source with its batch size, window, partial batch
 * failures and redrive, and the functions' timeouts, all as the template sets them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cdkSynth } from './deployment';
import {
  chatRequest,
  completeRequest,
  expectStoredKvOf,
  completionOf,
  kvPut,
  CHAT_TEMPLATE_TOKENS,
  promptOfTokens,
  requestView,
  streamedText,
} from './requests';
import { startAwsServers, type AwsServers } from './servers';
import { DYNAMODB_SDK_ATTEMPTS } from './lambda-service';
import { EmulatedStack } from './stack';

let servers: AwsServers;
let stack: EmulatedStack;

beforeAll(async () => {
  servers = await startAwsServers();
  stack = await EmulatedStack.start(cdkSynth({ profile: 'aws' }), servers, 'bundle');
});

afterAll(async () => {
  await stack?.stop();
  await servers?.stop();
});

describe('aws profile, cdk.out bundles, KV through TLS Redis', () => {
  it('serves a short request with its KV inline in the descriptor, through the buffered handler path', async () => {
    const res = await stack.api.request('POST', '/v1/chat/completions', chatRequest('Why split prefill from decode?'));
    expect(res.status).toBe(200);
    const { text, id } = completionOf(res.body);
    expect(text.length).toBeGreaterThan(0);
    const view = await requestView(stack, id);
    expect(view.state).toBe('completed');
    expect(view.output_text).toBe(text);
    expect(kvPut(view)?.inline).toBe(true);
  });

  for (const megabytes of [0.5, 2, 8]) {
    it(`hands off a ${megabytes} MB KV blob through the TLS Redis and frees it`, async () => {
      const { view } = await completeRequest(
        stack,
        '/v1/chat/completions',
        // Llama 3.1/3.3's chat template adds about 35 tokens (its system block) around the prompt.
        chatRequest(promptOfTokens((megabytes * 1e6) / 1024 - CHAT_TEMPLATE_TOKENS)),
      );
      expect(view.state).toBe('completed');
      expectStoredKvOf(view, megabytes);
      expect((await stack.leftovers()).kvKeys).toBe(0);
    });
  }

  it('runs a colocated request inside the prefill function, with no handoff', async () => {
    const { view } = await completeRequest(
      stack,
      '/v1/chat/completions',
      chatRequest(promptOfTokens(600), { disagg: { mode: 'colocated' } }),
    );
    expect(view).toMatchObject({ state: 'completed', disagg: { mode: 'colocated', devices: { colocated: 'h100x8' } } });
  });

  it('streams SSE through the streaming handler as tokens are produced, ending with [DONE]', async () => {
    const res = await stack.api.request(
      'POST',
      '/v1/chat/completions',
      chatRequest(promptOfTokens(300), { stream: true, max_tokens: 48 }),
    );
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(res.functionId).toMatch(/ApiStreamHandler/);
    expect(res.body.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(streamedText(res.body).length).toBeGreaterThan(0);
    // Written as the record grew, not in one piece at the end.
    expect(res.chunks.length).toBeGreaterThan(3);
    expect(res.chunks.at(-1)!.at - res.chunks[0]!.at).toBeGreaterThan(50);
  });

  it('gives a poison descriptor back after short backoffs and dead-letters it on its last receive as ids and sizes', async () => {
    const started = Date.now();
    const { SendMessageCommand, SQSClient } = await import('@aws-sdk/client-sqs');
    const sqs = new SQSClient({
      region: 'us-east-1',
      endpoint: servers.sqsS3Endpoint,
      credentials: { accessKeyId: 'e', secretAccessKey: 'e' },
    });
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.queueUrl('HandoffQueue'),
        MessageBody: '{"v":1,"requestId":"secret-prompt-text',
      }),
    );
    sqs.destroy();
    await stack.lambda.settled();
    const letters = await stack.drainDeadLetters();
    expect(letters).toHaveLength(1);
    expect(letters[0]).not.toContain('secret-prompt-text');
    expect(JSON.parse(letters[0]!)).toMatchObject({
      kind: 'handoff_descriptor_failed',
      receiveCount: 3,
      requestId: null,
    });
    // Three receives, 2 s and 4 s apart: seconds, not three 150 s visibility timeouts.
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it("delivers a descriptor again after a short backoff when decode's first try fails, and completes it", async () => {
    const decode = stack.lambda.fn('Disagg decode');
    const before = decode.invocations;
    // All four attempts (the DynamoDB client's default maxAttempts) of decode's first read of the record fail.
    decode.faults.push({ operation: 'GetItem', times: DYNAMODB_SDK_ATTEMPTS, kind: 'error' });
    const { view } = await completeRequest(stack, '/v1/chat/completions', chatRequest(promptOfTokens(400)));
    expect(view.state).toBe('completed');
    expect(decode.invocations - before, decode.logs.slice(-20).join('\n')).toBeGreaterThanOrEqual(2);
    expect(decode.faults[0]!.times).toBe(0);
  });

  it('leaves no KV key, no queue message, no non-terminal record and no stored prompt or claim behind', async () => {
    await stack.lambda.settled();
    expect(await stack.drainDeadLetters()).toEqual([]);
    expect(await stack.leftovers()).toEqual({
      kvObjects: 0,
      kvKeys: 0,
      handoffMessages: 0,
      nonTerminalRecords: [],
      otherItems: [],
    });
    expect(stack.logs()).not.toContain('secret-prompt-text');
  });
});
