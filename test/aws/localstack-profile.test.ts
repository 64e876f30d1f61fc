/**
 * The localstack profile (KV through S3, buffered SSE), its TypeScript handlers run in Lambda execution
 * environments against AWS-protocol servers, and the prefill stage's failure paths as the template configures
 * them: a function error or a timeout retried by Lambda (MaximumRetryAttempts), and the on-failure destination
 * that ends the request when every try failed. The failure paths run on a second synth with timeScale=0 and an
 * 8 s prefill timeout, so a timed-out invocation costs seconds; Lambda's waits between retries (about 1 and 2
 * minutes) are 1 and 2 s here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthWithoutBundles } from './deployment';
import { DYNAMODB_SDK_ATTEMPTS } from './lambda-service';
import {
  chatRequest,
  completeRequest,
  expectStoredKvOf,
  pollUntilDone,
  promptOfTokens,
  streamedText,
} from './requests';
import { startAwsServers, type AwsServers } from './servers';
import { EmulatedStack } from './stack';

const PREFILL_TIMEOUT_SECONDS = 8;
let servers: AwsServers;
/** The localstack profile as a user deploys it: `-c profile=localstack`, nothing else. */
let stack: EmulatedStack;
/** The same profile with timeScale=0 and an 8 s prefill timeout, for the failure paths. */
let faulty: EmulatedStack;

beforeAll(async () => {
  servers = await startAwsServers();
  stack = await EmulatedStack.start(synthWithoutBundles({ profile: 'localstack' }), servers, 'source');
  faulty = await EmulatedStack.start(
    synthWithoutBundles({
      profile: 'localstack',
      timeScale: '0',
      prefillTimeoutSeconds: String(PREFILL_TIMEOUT_SECONDS),
    }),
    servers,
    'source',
  );
});

afterAll(async () => {
  await stack?.stop();
  await faulty?.stop();
  await servers?.stop();
});

describe('localstack profile, TypeScript handlers, KV through S3', () => {
  for (const megabytes of [0.5, 2, 8]) {
    it(`hands off a ${megabytes} MB KV blob through the S3 bucket (path-style) and deletes it`, async () => {
      const { view } = await completeRequest(stack, '/v1/completions', {
        model: 'llama-3.3-70b',
        prompt: promptOfTokens((megabytes * 1e6) / 1024),
        max_tokens: 16,
      });
      expect(view.state).toBe('completed');
      expectStoredKvOf(view, megabytes);
      expect((await stack.leftovers()).kvObjects).toBe(0);
    });
  }

  it('answers stream: true with the whole SSE body at the end (no response streaming on this profile)', async () => {
    const res = await stack.api.request('POST', '/v1/chat/completions', chatRequest('Say hello.', { stream: true }));
    expect(res.status).toBe(200);
    expect(res.functionId).not.toMatch(/Stream/);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(res.body.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(streamedText(res.body).length).toBeGreaterThan(0);
  });
});

describe('prefill failures, as Lambda retries them and hands them to the on-failure destination', () => {
  it('retries a prefill invocation that threw, and the request completes', async () => {
    const prefill = faulty.lambda.fn('Disagg prefill stage');
    const before = prefill.invocations;
    // Its first read of the record fails on every SDK attempt: the invocation throws.
    prefill.faults.push({ operation: 'GetItem', times: DYNAMODB_SDK_ATTEMPTS, kind: 'error' });
    const { view } = await completeRequest(faulty, '/v1/chat/completions', chatRequest(promptOfTokens(300)));
    expect(view.state).toBe('completed');
    expect(view.output_text.length).toBeGreaterThan(0);
    expect(prefill.invocations - before).toBe(2);
  });

  it('retries a prefill invocation that timed out (its environment ended), and the request completes', async () => {
    const prefill = faulty.lambda.fn('Disagg prefill stage');
    const before = { invocations: prefill.invocations, coldStarts: prefill.coldStarts };
    prefill.faults.push({
      operation: 'GetItem',
      times: 1,
      kind: 'delay',
      delayMs: (PREFILL_TIMEOUT_SECONDS + 1) * 1000,
    });
    const { view } = await completeRequest(faulty, '/v1/chat/completions', chatRequest(promptOfTokens(300)));
    expect(view.state).toBe('completed');
    expect(prefill.invocations - before.invocations).toBe(2);
    // The timed-out environment was ended; the retry ran in a new one.
    expect(prefill.coldStarts - before.coldStarts).toBe(1);
  });

  it('ends the request failed when every try fails: the failure handler records why and dead-letters ids only', async () => {
    const prefill = faulty.lambda.fn('Disagg prefill stage');
    const before = prefill.invocations;
    prefill.faults.push({ operation: 'GetItem', times: 3 * DYNAMODB_SDK_ATTEMPTS, kind: 'error' });
    const prompt = `${promptOfTokens(200)} unmistakable-prompt-marker`;
    const res = await faulty.api.request('POST', '/v1/chat/completions', chatRequest(prompt));
    // The API answers in the error format once the record ends (past its 25 s on a loaded machine, the poll URL
    // says why): never 202 and an hour of still_running.
    expect([500, 202]).toContain(res.status);
    const error =
      res.status === 500
        ? (JSON.parse(res.body) as { error: { code: string; message: string } }).error
        : ((await pollUntilDone(faulty, (JSON.parse(res.body) as { id: string }).id)).disagg.error as {
            code: string;
            message: string;
          });
    expect(error.code).toBe('prefill_failed');
    expect(error.message).toMatch(/did not finish after 3 invocations/);
    expect(prefill.invocations - before).toBe(3);
    expect(faulty.lambda.destinations.at(-1)).toMatchObject({
      condition: 'RetriesExhausted',
      target: expect.stringMatching(/PrefillFailures/),
    });
    await faulty.lambda.settled();
    const letters = await faulty.drainDeadLetters();
    expect(letters.join('\n')).not.toContain('unmistakable-prompt-marker');
    expect(letters.map((l) => JSON.parse(l) as unknown)).toEqual([
      expect.objectContaining({ kind: 'prefill_invocation_failed', condition: 'RetriesExhausted', invocations: 3 }),
    ]);
  });

  it('leaves no KV object, no queue message, no non-terminal record and no stored prompt or claim behind', async () => {
    for (const each of [stack, faulty]) {
      await each.lambda.settled();
      expect(await each.drainDeadLetters()).toEqual([]);
      expect(await each.leftovers()).toEqual({
        kvObjects: 0,
        kvKeys: 0,
        handoffMessages: 0,
        nonTerminalRecords: [],
        otherItems: [],
      });
    }
    expect(faulty.logs()).not.toContain('unmistakable-prompt-marker');
  });
});
