/**
 * The Lambda functions when things go wrong: what an asynchronous prefill invocation carries (and so what a
 * failed one leaves in the dead-letter queue), duplicate invocations, the on-failure destination, descriptors
 * that keep failing, KV too large for the store, and where a client told 202 finds its text.
 */
import { describe, expect, it, vi } from 'vitest';
import type { GenerationBackend } from '../../lib/core/ports';
import { createPrefillFailureHandler, type PrefillDeadLetter } from '../../lambdas/prefill';
import type { HandoffDeadLetter } from '../../lambdas/decode';
import { redeliveryBackoffMs } from '../../lambdas/decode';
import { apiEvent, createStack, sqsEvent } from './lambda-fixtures';

const SECRET = 'zebra quartz marmalade';
const words = 'prefill decode wafer trainium cache token handoff latency bandwidth memory'.split(' ');
/** Its KV blob goes through the KV store by reference (over the 192 KiB inline limit). */
const LONG_PROMPT = `${Array.from({ length: 320 }, (_, k) => words[(k * 7) % words.length]).join(' ')} ${SECRET}`;
const chat = (prompt: string, extra: Record<string, unknown> = {}) =>
  apiEvent('POST', '/v1/chat/completions', {
    body: { model: 'llama-3.3-70b', messages: [{ role: 'user', content: prompt }], max_tokens: 8, seed: 7, ...extra },
  });

describe('the asynchronous prefill invocation', () => {
  it('carries ids and sizes only; the prompt waits in the results table and is gone once prefill has run', async () => {
    const stack = await createStack({ responseBudgetMs: 0 });
    await stack.api(chat(LONG_PROMPT));
    const [invocation] = stack.invoked;
    expect(Object.keys(invocation!).sort()).toEqual(['deadlineMs', 'mode', 'promptTokens', 'requestId', 'v']);
    expect(JSON.stringify(invocation)).not.toContain(SECRET);
    const stored = await stack.prefillJobs.get(invocation!.requestId);
    expect(stored?.promptIds).toHaveLength(invocation!.promptTokens);
    expect(JSON.stringify(stored?.messages)).toContain(SECRET);

    await stack.prefill(invocation!);
    expect((await stack.results.get(invocation!.requestId))?.state).toBe('handoff');
    expect(await stack.prefillJobs.get(invocation!.requestId)).toBeNull();
  });

  it('runs prefill once when the same invocation arrives twice at the same time (both pass the state check)', async () => {
    const stack0 = await createStack();
    let prefills = 0;
    const counting: GenerationBackend = {
      name: 'counting',
      prefill: async (ids, sampling) => {
        prefills += 1;
        // Slow enough that the second invocation reads the record while the first is still prefilling.
        await new Promise((resolve) => setTimeout(resolve, 50));
        return stack0.apiWiring.backend.prefill(ids, sampling);
      },
      startDecode: (input) => stack0.apiWiring.backend.startDecode(input),
    };
    const stack = await createStack({ responseBudgetMs: 0, prefillBackend: counting });
    await stack.api(chat(LONG_PROMPT));
    const [invocation] = stack.invoked;
    await Promise.all([stack.prefill(invocation!), stack.prefill(invocation!)]);
    expect(prefills).toBe(1);
    expect(await stack.queue.depth()).toBe(1);
    expect(await stack.kv.count()).toBe(1);
    expect(stack.logs.lines.some((l) => l.includes('running in another invocation'))).toBe(true);
  });

  it('ends the request failed with kv_too_large, naming the sizes, when its KV exceeds what the KV store takes', async () => {
    const stack = await createStack({ responseBudgetMs: 0, env: { DISAGG_KV_MAX_BLOB_BYTES: '200000' } });
    await stack.api(chat(LONG_PROMPT));
    await stack.prefill(stack.invoked[0]!);
    const record = await stack.results.get(stack.invoked[0]!.requestId);
    expect(record?.state).toBe('failed');
    expect(record?.error?.code).toBe('kv_too_large');
    expect(record?.error?.message).toMatch(/KV cache of its \d+-token prompt is \d+ bytes, over the 200000 bytes/);
    expect(await stack.kv.count()).toBe(0);
    expect(await stack.queue.depth()).toBe(0);
  });
});

describe('the prefill failure handler (on-failure destination)', () => {
  const destinationRecord = (payload: unknown, condition: string) => ({
    version: '1.0',
    timestamp: new Date().toISOString(),
    requestContext: {
      requestId: 'e4b46cbf-b738-4d5b-8880-a18cdf61200e',
      functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:disagg-prefill:$LATEST',
      condition,
      approximateInvokeCount: 3,
    },
    requestPayload: payload,
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    responsePayload: { errorType: 'Sandbox.Timedout', errorMessage: 'Task timed out after 90.00 seconds' },
  });

  for (const [condition, code] of [
    ['RetriesExhausted', 'prefill_failed'],
    ['EventAgeExceeded', 'timeout'],
  ] as const) {
    it(`ends a request whose prefill never finished (${condition}) with ${code}, drops its prompt and dead-letters its ids`, async () => {
      const stack = await createStack({ responseBudgetMs: 0 });
      await stack.api(chat(LONG_PROMPT));
      const [invocation] = stack.invoked;
      const failures = createPrefillFailureHandler(() => Promise.resolve(stack.apiWiring));
      await failures(destinationRecord(invocation, condition));

      const record = await stack.results.get(invocation!.requestId);
      expect(record?.state).toBe('failed');
      expect(record?.error?.code).toBe(code);
      expect(await stack.prefillJobs.get(invocation!.requestId)).toBeNull();
      const letters = await stack.deadLetters.receive(10, 0);
      expect(letters).toHaveLength(1);
      expect(letters[0]!.body).not.toContain(SECRET);
      expect(JSON.parse(letters[0]!.body) as PrefillDeadLetter).toMatchObject({
        kind: 'prefill_invocation_failed',
        requestId: invocation!.requestId,
        promptTokens: invocation!.promptTokens,
        condition,
        invocations: 3,
      });
      // The poll URL now says why instead of "still running".
      const polled = await stack.api(apiEvent('GET', `/v1/requests/${invocation!.requestId}`));
      expect(JSON.parse(polled.body)).toMatchObject({ state: 'failed', done: true });
    });
  }

  it('leaves a request that finished after all untouched', async () => {
    const stack = await createStack({ chain: true });
    await stack.api(chat('Say something.'));
    await stack.settled();
    const [invocation] = stack.invoked;
    const before = await stack.results.get(invocation!.requestId);
    expect(before?.state).toBe('completed');
    await createPrefillFailureHandler(() => Promise.resolve(stack.apiWiring))(
      destinationRecord(invocation, 'RetriesExhausted'),
    );
    expect(await stack.results.get(invocation!.requestId)).toEqual(before);
  });
});

describe('a descriptor that keeps failing', () => {
  it('comes back after a short backoff, not the queue visibility timeout', async () => {
    const stack = await createStack();
    await stack.queue.send('{"v":1,"requestId":');
    const [message] = await stack.queue.receive(1, 0);
    const release = vi.spyOn(stack.queue, 'release');
    const response = await stack.decode(
      sqsEvent([{ body: message!.body, messageId: 'poison-1', receipt: message!.receipt, receiveCount: 1 }]),
    );
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'poison-1' }]);
    expect(release).toHaveBeenCalledWith(message!.receipt, redeliveryBackoffMs(1));
    expect(redeliveryBackoffMs(1)).toBe(2000);
    expect(redeliveryBackoffMs(2)).toBe(4000);
    expect(redeliveryBackoffMs(20)).toBe(30_000);
  });

  it('is dead-lettered on its last receive as ids and sizes, its request ended failed and its KV freed', async () => {
    const stack = await createStack({ responseBudgetMs: 0 });
    await stack.api(chat(LONG_PROMPT));
    await stack.prefill(stack.invoked[0]!);
    const [message] = await stack.queue.receive(1, 0);
    expect(message!.body).toContain(SECRET);
    // Decode's reads of the KV store fail on this delivery: the descriptor cannot be processed.
    vi.spyOn(stack.kv, 'get').mockRejectedValue(new Error('store unreachable'));
    const response = await stack.decode(
      sqsEvent([{ body: message!.body, messageId: 'last-1', receipt: message!.receipt, receiveCount: 3 }]),
    );
    // Not reported: the event source deletes it, so SQS never copies the prompt-carrying body to the DLQ.
    expect(response.batchItemFailures).toEqual([]);
    const letters = await stack.deadLetters.receive(10, 0);
    expect(letters).toHaveLength(1);
    expect(letters[0]!.body).not.toContain(SECRET);
    const letter = JSON.parse(letters[0]!.body) as HandoffDeadLetter;
    expect(letter).toMatchObject({
      kind: 'handoff_descriptor_failed',
      messageId: 'last-1',
      receiveCount: 3,
      requestId: stack.invoked[0]!.requestId,
      promptTokens: stack.invoked[0]!.promptTokens,
      bodyBytes: Buffer.byteLength(message!.body),
    });
    expect(letter.kvBytes).toBeGreaterThan(192 * 1024);
    const record = await stack.results.get(stack.invoked[0]!.requestId);
    expect(record?.state).toBe('failed');
    expect(record?.error?.code).toBe('decode_failed');
    vi.restoreAllMocks();
    expect(await stack.kv.count()).toBe(0);
  });

  it('is dead-lettered with its size alone when it is not a descriptor at all', async () => {
    const stack = await createStack();
    const response = await stack.decode(
      sqsEvent([{ body: `{"v":1,"p":"${SECRET}"`, messageId: 'junk', receiveCount: 3 }]),
    );
    expect(response.batchItemFailures).toEqual([]);
    const [letter] = await stack.deadLetters.receive(1, 0);
    expect(letter!.body).not.toContain(SECRET);
    expect(JSON.parse(letter!.body)).toMatchObject({
      messageId: 'junk',
      requestId: null,
      reason: 'poison handoff descriptor',
    });
  });
});

describe('a request that outlives the buffered response', () => {
  it('answers 202 with a poll URL that returns the completion text once it is done', async () => {
    const stack = await createStack({ responseBudgetMs: 0 });
    const accepted = await stack.api(chat(LONG_PROMPT));
    expect(accepted.statusCode).toBe(202);
    const { poll } = JSON.parse(accepted.body) as { poll: string };
    await stack.prefill(stack.invoked[0]!);
    await stack.deliverHandoffs();
    const view = JSON.parse((await stack.api(apiEvent('GET', poll))).body) as { state: string; output_text: string };
    const record = await stack.results.get(stack.invoked[0]!.requestId);
    expect(view.state).toBe('completed');
    expect(view.output_text.length).toBeGreaterThan(0);
    expect(view.output_text).toBe(record!.pieces.join(''));
  });
});
