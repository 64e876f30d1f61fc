import { randomBytes, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../lib/adapters/backend-reference';
import { RealClock } from '../../lib/adapters/clock-real';
import { MemoryEventBus } from '../../lib/adapters/events-memory';
import { MemoryKvStore } from '../../lib/adapters/kv-memory';
import { RedisKvStore } from '../../lib/adapters/kv-redis';
import { MemoryQueue } from '../../lib/adapters/queue-memory';
import { createRedis } from '../../lib/adapters/redis-connection';
import { MemoryResultStore } from '../../lib/adapters/result-memory';
import { RedisResultStore } from '../../lib/adapters/result-redis';
import { chatPromptIds, llama3Tokenizer } from '../../lib/adapters/tokenizer-llama3';
import { engineConfig } from '../../lib/core/engine/config';
import type { CancellationMarker } from '../../lib/core/engine/decode-stage';
import type { RequestEvent, RequestRecord } from '../../lib/core/engine/record';
import type { RoutingMode } from '../../lib/core/engine/routing';
import type { ChatMessage, GenerationBackend } from '../../lib/core/ports';
import { EmbeddedRuntime } from '../../lib/local/runtime';
import { LATENCY_METRIC, METRIC } from '../../lambdas/metric-names';
import { expectNoLeaksThenClean, testRedisPrefix } from '../redis-test-keys';
import { apiEvent, createStack, sqsEvent, sseEvents, type StackStores } from './lambda-fixtures';
import { PREFILL_RETRY } from '../../lib/core/engine/retry';

const words = 'prefill decode wafer trainium cache token handoff latency bandwidth memory'.split(' ');
/** Long enough that its KV blob goes through the KV store by reference, not inline in the descriptor. */
const LONG_PROMPT = Array.from({ length: 320 }, (_, k) => words[(k * 7) % words.length]).join(' ');
const SHORT_PROMPT = 'Say something about wafer-scale decode.';
const messagesFor = (prompt: string): ChatMessage[] => [
  { role: 'system', content: 'You are a terse assistant.' },
  { role: 'user', content: prompt },
];
const SAMPLING = { temperature: 0.8, top_p: 0.95, seed: 7, max_tokens: 24 };

const chatBody = (prompt: string, extra: Record<string, unknown> = {}) => ({
  model: 'llama-3.3-70b',
  messages: messagesFor(prompt),
  ...SAMPLING,
  ...extra,
});

/** The embedded runtime's output for the same prompt, sampling and mode: the reference the Lambda path must equal. */
async function embeddedOutput(prompt: string, mode: RoutingMode): Promise<RequestRecord> {
  const config = engineConfig({ timeScale: 0 });
  const tokenizer = llama3Tokenizer();
  const events = new MemoryEventBus<RequestEvent>();
  const queue = new MemoryQueue({ visibilityTimeoutMs: 60_000, maxReceives: 3 });
  const runtime = new EmbeddedRuntime(config, {
    clock: new RealClock({ timeScale: 0 }),
    queue,
    kv: new MemoryKvStore(),
    results: new MemoryResultStore<RequestRecord>(),
    cancellations: new MemoryResultStore<CancellationMarker>(),
    backend: new ReferenceBackend({ tokenizer }),
    events,
    randomKey: () => randomBytes(18).toString('base64url'),
    wallClockMs: () => performance.timeOrigin + performance.now(),
  });
  runtime.start();
  const id = `embedded-${randomUUID()}`;
  const done = new Promise<RequestRecord>((resolve) =>
    events.subscribe(id, (e) => {
      if (e.type === 'done') resolve(e.record);
    }),
  );
  const messages = messagesFor(prompt);
  await runtime.submit({
    id,
    model: config.model.id,
    promptIds: chatPromptIds(tokenizer, messages),
    messages,
    sampling: {
      temperature: SAMPLING.temperature,
      topP: SAMPLING.top_p,
      seed: SAMPLING.seed,
      maxTokens: SAMPLING.max_tokens,
    },
    mode,
  });
  const record = await done;
  await runtime.stop();
  await queue.close();
  return record;
}

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Every Redis key this run writes starts with this, so parallel runs never collide and cleanup is exact. */
const run = testRedisPrefix('lambda');
let redis: Redis;
let reference: { long: RequestRecord; short: RequestRecord; colocated: RequestRecord };

beforeAll(async () => {
  redis = createRedis({ url: redisUrl });
  reference = {
    long: await embeddedOutput(LONG_PROMPT, 'disaggregated'),
    short: await embeddedOutput(SHORT_PROMPT, 'disaggregated'),
    colocated: await embeddedOutput(LONG_PROMPT, 'colocated'),
  };
});

afterAll(async () => {
  // Checked, not deleted blindly: a leaked blob or unfinished record fails here and stays for the global teardown.
  await expectNoLeaksThenClean(redis, run);
  await redis.quit();
});

const storeKinds: { name: string; stores: () => StackStores }[] = [
  { name: 'memory adapters', stores: () => ({}) },
  {
    name: 'Redis (KV, results and cancellations)',
    stores: () => {
      const prefix = `${run}${randomUUID()}:`;
      return {
        kv: new RedisKvStore({ redis, prefix: `${prefix}kv:` }),
        results: new RedisResultStore<RequestRecord>({ redis, prefix: `${prefix}result:` }),
        cancellations: new RedisResultStore<CancellationMarker>({ redis, prefix: `${prefix}cancel:` }),
      };
    },
  },
];

describe.each(storeKinds)('Lambda handlers over $name', ({ stores }) => {
  it('chain API → prefill → SQS → decode → GET, and the result equals the embedded runtime token for token', async () => {
    const stack = await createStack({ stores: stores(), responseBudgetMs: 0 });

    const accepted = await stack.api(apiEvent('POST', '/v1/chat/completions', { body: chatBody(LONG_PROMPT) }));
    expect(accepted.statusCode).toBe(202);
    const ticket = JSON.parse(accepted.body) as { id: string; status: string; poll: string };
    expect(ticket.id).toMatch(/^chatcmpl-/);
    expect(ticket.status).toBe('queued');
    expect(ticket.poll).toBe(`/v1/requests/${ticket.id}`);

    expect(stack.invoked).toHaveLength(1);
    const job = stack.invoked[0]!;
    expect(job.requestId).toBe(ticket.id);
    expect(job.mode).toBe('disaggregated');
    await stack.prefill(job);

    const afterPrefill = await stack.results.get(ticket.id);
    expect(afterPrefill?.state).toBe('handoff');
    const kvPut = afterPrefill?.timeline.find((t) => t.event === 'kv_put');
    expect(kvPut?.detail?.inline).toBe(false);
    expect(await stack.kv.count()).toBe(1);

    const { messages, failures } = await stack.deliverHandoffs();
    expect(messages).toHaveLength(1);
    expect(failures).toEqual([]);

    const got = await stack.api(apiEvent('GET', ticket.poll));
    expect(got.statusCode).toBe(200);
    const view = JSON.parse(got.body) as {
      state: string;
      done: boolean;
      usage: { completion_tokens: number };
      disagg: { mode: string; emulated: { ttftMs: number } };
    };
    expect(view.state).toBe('completed');
    expect(view.done).toBe(true);
    expect(view.disagg.mode).toBe('disaggregated');
    expect(view.disagg.emulated.ttftMs).toBeGreaterThan(0);
    const record = (await stack.results.get(ticket.id))!;
    expect(record.pieces).toEqual(reference.long.pieces);
    expect(view.usage.completion_tokens).toBe(reference.long.completionTokens);
    expect(await stack.kv.count()).toBe(0);
    expect(await stack.queue.depth()).toBe(0);
  });

  it('a non-stream completion answers 200 in the OpenAI shape when the pipeline finishes within the budget', async () => {
    const stack = await createStack({ stores: stores(), chain: true });
    const res = await stack.api(apiEvent('POST', '/v1/chat/completions', { body: chatBody(LONG_PROMPT) }));
    await stack.settled();
    expect(res.statusCode).toBe(200);
    expect(res.headers?.['content-type']).toBe('application/json');
    const body = JSON.parse(res.body) as {
      object: string;
      choices: { message: { role: string; content: string }; finish_reason: string }[];
      usage: { prompt_tokens: number; completion_tokens: number };
      disagg: { state: string; devices: Record<string, string> };
    };
    expect(body.object).toBe('chat.completion');
    expect(body.choices[0]!.message.content).toBe(reference.long.pieces.join(''));
    expect(body.choices[0]!.finish_reason).toBe(reference.long.finishReason);
    expect(body.usage.prompt_tokens).toBe(reference.long.promptTokens);
    expect(body.disagg.state).toBe('completed');
    expect(Object.keys(body.disagg.devices)).toEqual(['prefill', 'decode']);
    expect(await stack.kv.count()).toBe(0);
  });

  it('a buffered stream returns the whole SSE body, deltas equal to the embedded output, ending with data: [DONE]', async () => {
    const stack = await createStack({ stores: stores(), chain: true });
    const res = await stack.api(
      apiEvent('POST', '/v1/chat/completions', {
        body: chatBody(SHORT_PROMPT, { stream: true, stream_options: { include_usage: true } }),
      }),
    );
    await stack.settled();
    expect(res.statusCode).toBe(200);
    expect(res.headers?.['content-type']).toMatch(/^text\/event-stream/);
    expect(res.body.endsWith('data: [DONE]\n\n')).toBe(true);
    const events = sseEvents(res.body);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as Record<string, unknown>);
    const deltas = chunks.flatMap((c) =>
      ((c.choices as { delta: { content?: string } }[] | undefined) ?? []).map((ch) => ch.delta.content ?? ''),
    );
    expect(deltas.join('')).toBe(reference.short.pieces.join(''));
    const final = chunks.find((c) => c.disagg !== undefined) as { disagg: { state: string } } | undefined;
    expect(final?.disagg.state).toBe('completed');
    const usage = chunks.at(-1) as { usage: { completion_tokens: number }; choices: unknown[] };
    expect(usage.choices).toEqual([]);
    expect(usage.usage.completion_tokens).toBe(reference.short.completionTokens);
  });

  it('a colocated request runs prefill and decode in the prefill function: no handoff, same tokens as embedded', async () => {
    const stack = await createStack({ stores: stores(), responseBudgetMs: 0 });
    const res = await stack.api(
      apiEvent('POST', '/v1/chat/completions', { body: chatBody(LONG_PROMPT, { disagg: { mode: 'colocated' } }) }),
    );
    expect(res.statusCode).toBe(202);
    const job = stack.invoked[0]!;
    expect(job.mode).toBe('colocated');
    await stack.prefill(job);
    expect(await stack.queue.depth()).toBe(0);
    const record = (await stack.results.get(job.requestId))!;
    expect(record.state).toBe('completed');
    expect(record.devices).toEqual({ colocated: 'h100x8' });
    expect(record.pieces).toEqual(reference.colocated.pieces);
    // Disaggregation changes where the work runs, never what it produces.
    expect(record.pieces).toEqual(reference.long.pieces);
    expect(await stack.kv.count()).toBe(0);
  });

  it('DELETE marks a request cancelled: prefill then ends it without running it', async () => {
    const stack = await createStack({ stores: stores(), responseBudgetMs: 0 });
    const res = await stack.api(apiEvent('POST', '/v1/chat/completions', { body: chatBody(LONG_PROMPT) }));
    const { id } = JSON.parse(res.body) as { id: string };
    const deleted = await stack.api(apiEvent('DELETE', `/v1/requests/${id}`));
    expect(deleted.statusCode).toBe(200);
    await stack.prefill(stack.invoked[0]!);
    const got = JSON.parse((await stack.api(apiEvent('GET', `/v1/requests/${id}`))).body) as { state: string };
    expect(got.state).toBe('cancelled');
    expect(await stack.queue.depth()).toBe(0);
    expect(await stack.kv.count()).toBe(0);
  });
});

describe('decode function', () => {
  it('reports a poison descriptor in batchItemFailures and still decodes the good message of the same batch', async () => {
    const stack = await createStack({ responseBudgetMs: 0 });
    await stack.api(apiEvent('POST', '/v1/chat/completions', { body: chatBody(SHORT_PROMPT) }));
    await stack.prefill(stack.invoked[0]!);
    const [good] = await stack.queue.receive(1, 0);
    const event = sqsEvent([
      { body: '{"v":1,"requestId":', messageId: 'poison-1', receiveCount: 2 },
      { body: good!.body, messageId: 'good-1' },
    ]);
    const response = await stack.decode(event);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'poison-1' }]);
    expect((await stack.results.get(stack.invoked[0]!.requestId))?.state).toBe('completed');
    expect(stack.logs.lines.some((l) => l.includes('poison handoff descriptor') && l.includes('poison-1'))).toBe(true);
  });

  it('runs all records of one SQS event as one decode batch', async () => {
    const stack = await createStack({ responseBudgetMs: 0 });
    for (const prompt of [SHORT_PROMPT, LONG_PROMPT]) {
      await stack.api(apiEvent('POST', '/v1/chat/completions', { body: chatBody(prompt) }));
    }
    for (const job of stack.invoked) await stack.prefill(job);
    const { messages, failures } = await stack.deliverHandoffs();
    expect(messages).toHaveLength(2);
    expect(failures).toEqual([]);
    const records = await Promise.all(stack.invoked.map((j) => stack.results.get(j.requestId)));
    const batchSizes = records.map((r) => r?.timeline.find((t) => t.event === 'decode_start')?.detail?.batch);
    expect(batchSizes).toEqual([1, 2]);
    expect(records.map((r) => r?.pieces)).toEqual([reference.short.pieces, reference.long.pieces]);
  });

  it('drops a redelivered descriptor of a finished request instead of decoding it twice', async () => {
    const stack = await createStack({ responseBudgetMs: 0 });
    await stack.api(apiEvent('POST', '/v1/chat/completions', { body: chatBody(SHORT_PROMPT) }));
    await stack.prefill(stack.invoked[0]!);
    const [message] = await stack.queue.receive(1, 0);
    await stack.decode(sqsEvent([{ body: message!.body }]));
    const first = await stack.results.get(stack.invoked[0]!.requestId);
    const again = await stack.decode(sqsEvent([{ body: message!.body, receiveCount: 2 }]));
    expect(again.batchItemFailures).toEqual([]);
    expect(await stack.results.get(stack.invoked[0]!.requestId)).toEqual(first);
  });

  it('decodes a descriptor delivered twice at once (one event, or two concurrent invocations) exactly once', async () => {
    const stack = await createStack({ responseBudgetMs: 0 });
    await stack.api(apiEvent('POST', '/v1/chat/completions', { body: chatBody(SHORT_PROMPT) }));
    await stack.prefill(stack.invoked[0]!);
    const [message] = await stack.queue.receive(1, 0);
    const body = message!.body;
    const [together, concurrentA, concurrentB] = await Promise.all([
      stack.decode(sqsEvent([{ body }, { body }])),
      stack.decode(sqsEvent([{ body }])),
      stack.decode(sqsEvent([{ body }])),
    ]);
    const record = await stack.results.get(stack.invoked[0]!.requestId);
    expect(record?.state).toBe('completed');
    // Exactly one delivery ran; the copies were refused (to be redelivered) while it did.
    const refused =
      together.batchItemFailures.length + concurrentA.batchItemFailures.length + concurrentB.batchItemFailures.length;
    expect(refused).toBe(3);
    expect(record?.timeline.filter((t) => t.event === 'decode_start')).toHaveLength(1);
    // Redelivered after it finished, every copy is dropped.
    const later = await stack.decode(
      sqsEvent([
        { body, receiveCount: 2 },
        { body, receiveCount: 2 },
      ]),
    );
    expect(later.batchItemFailures).toEqual([]);
    expect(await stack.kv.count()).toBe(0);
  });

  it('emits emulated and measured latency metrics for completed requests', async () => {
    const stack = await createStack({ chain: true });
    await stack.api(apiEvent('POST', '/v1/chat/completions', { body: chatBody(SHORT_PROMPT) }));
    await stack.settled();
    // The embedded server's Prometheus names, latencies in seconds with a clock dimension.
    for (const clock of ['emulated', 'measured']) {
      for (const key of ['ttft', 'tpot', 'e2e', 'prefill', 'transfer', 'decode'] as const) {
        expect(stack.metrics.values.get(`${LATENCY_METRIC[key]}|clock=${clock}`)?.length, `${key} ${clock}`).toBe(1);
      }
    }
    expect(stack.metrics.values.get(`${LATENCY_METRIC.ttft}|clock=emulated`)![0]).toBeGreaterThan(0);
    expect(stack.metrics.values.get(`${METRIC.requests}|outcome=completed`)).toEqual([1]);
    expect(stack.metrics.values.get(METRIC.kvHandoffBytes)![0]).toBeGreaterThan(0);
    expect(stack.metrics.published).toBeGreaterThanOrEqual(2);
  });
});

describe('prefill function', () => {
  it('ends the request failed, frees nothing it did not store, and returns without throwing when the backend fails', async () => {
    let tries = 0;
    const broken: GenerationBackend = {
      name: 'broken',
      prefill: () => (tries++, Promise.reject(new Error('device fault'))),
      startDecode: () => {
        throw new Error('unreachable');
      },
    };
    const stack = await createStack({ responseBudgetMs: 0, prefillBackend: broken });
    await stack.api(apiEvent('POST', '/v1/chat/completions', { body: chatBody(LONG_PROMPT) }));
    await expect(stack.prefill(stack.invoked[0]!)).resolves.toBeUndefined();
    const record = await stack.results.get(stack.invoked[0]!.requestId);
    expect(record?.state).toBe('failed');
    expect(record?.error?.code).toBe('prefill_failed');
    // The tries really made, never the policy's count.
    expect(tries).toBeGreaterThan(0);
    expect(record?.error?.message).toBe(`prefill failed after ${tries} ${tries === 1 ? 'try' : 'tries'}: device fault`);
    expect(await stack.kv.count()).toBe(0);
    expect(await stack.queue.depth()).toBe(0);
  });

  it('retries a failing prefill with backoff and completes when a later try succeeds', async () => {
    const stack0 = await createStack({ responseBudgetMs: 0 });
    let calls = 0;
    const flaky: GenerationBackend = {
      name: 'flaky',
      prefill: (ids, sampling) =>
        ++calls <= 2 ? Promise.reject(new Error(`blip ${calls}`)) : stack0.apiWiring.backend.prefill(ids, sampling),
      startDecode: (input) => stack0.apiWiring.backend.startDecode(input),
    };
    const stack = await createStack({ responseBudgetMs: 0, prefillBackend: flaky });
    await stack.api(apiEvent('POST', '/v1/chat/completions', { body: chatBody(SHORT_PROMPT) }));
    await stack.prefill(stack.invoked[0]!);
    const record = await stack.results.get(stack.invoked[0]!.requestId);
    expect(calls).toBe(3);
    expect(record?.state).not.toBe('failed');
    expect(record?.timeline.filter((t) => t.event === 'prefill_start')).toHaveLength(3);
  });

  it('gives up after the stated number of tries, naming it', async () => {
    const broken: GenerationBackend = {
      name: 'broken',
      prefill: () => Promise.reject(new Error('device fault')),
      startDecode: () => {
        throw new Error('unreachable');
      },
    };
    const stack = await createStack({ responseBudgetMs: 0, prefillBackend: broken });
    await stack.api(apiEvent('POST', '/v1/chat/completions', { body: chatBody(SHORT_PROMPT) }));
    await stack.prefill(stack.invoked[0]!);
    const record = await stack.results.get(stack.invoked[0]!.requestId);
    expect(record?.error?.message).toContain(`after ${PREFILL_RETRY.attempts} tries`);
    expect(record?.timeline.filter((t) => t.event === 'prefill_start')).toHaveLength(PREFILL_RETRY.attempts);
  });

  it('ignores a repeated invoke for a request already past prefill', async () => {
    const stack = await createStack({ responseBudgetMs: 0 });
    await stack.api(apiEvent('POST', '/v1/chat/completions', { body: chatBody(SHORT_PROMPT) }));
    await stack.prefill(stack.invoked[0]!);
    await stack.prefill(stack.invoked[0]!);
    expect(await stack.queue.depth()).toBe(1);
  });
});

describe('API function', () => {
  const post = (body: unknown, headers?: Record<string, string>) =>
    apiEvent('POST', '/v1/chat/completions', { body, ...(headers ? { headers } : {}) });
  const errorOf = (res: { body: string }) =>
    (JSON.parse(res.body) as { error: { message: string; type: string; param: string | null; code: string | null } })
      .error;

  it('answers bad inputs with 4xx in the OpenAI error format and invokes nothing', async () => {
    const stack = await createStack({ maxBodyBytes: 4096 });
    const cases: { event: ReturnType<typeof apiEvent>; status: number; code: string | null; param?: string }[] = [
      {
        event: post(chatBody(SHORT_PROMPT), { 'Content-Type': 'text/plain' }),
        status: 415,
        code: 'unsupported_content_type',
      },
      {
        event: apiEvent('POST', '/v1/chat/completions', {
          rawBody: '{"model":',
          headers: { 'Content-Type': 'application/json' },
        }),
        status: 400,
        code: 'invalid_json',
      },
      { event: post({ model: 'llama-3.3-70b' }), status: 400, code: null, param: 'messages' },
      { event: post({ ...chatBody(SHORT_PROMPT), temperature: 5 }), status: 400, code: null, param: 'temperature' },
      {
        event: post({ ...chatBody(SHORT_PROMPT), model: 'gpt-4o' }),
        status: 404,
        code: 'model_not_found',
        param: 'model',
      },
      { event: post(chatBody('x'.repeat(5000))), status: 413, code: 'body_too_large' },
      { event: apiEvent('GET', '/v1/chat/completions'), status: 405, code: 'method_not_allowed' },
      { event: apiEvent('GET', '/v1/nothing-here'), status: 404, code: 'route_not_found' },
      { event: apiEvent('GET', '/v1/requests/chatcmpl-unknown'), status: 404, code: 'request_not_found', param: 'id' },
    ];
    for (const { event, status, code, param } of cases) {
      const res = await stack.api(event);
      expect({ path: event.path, status: res.statusCode }).toEqual({ path: event.path, status });
      const error = errorOf(res);
      expect(error.code).toBe(code);
      if (param) expect(error.param).toBe(param);
      expect(error.message.length).toBeGreaterThan(10);
    }
    expect(stack.invoked).toEqual([]);
  });

  it('adds the CORS allow headers for an allowed origin only, with DISAGG_CORS_ORIGINS, buffered and streamed', async () => {
    const stack = await createStack({ env: { DISAGG_CORS_ORIGINS: 'https://dash.example.com' } });
    const from = (origin: string) => apiEvent('GET', '/v1/models', { headers: { Origin: origin } });
    const allowed = await stack.api(from('https://dash.example.com'));
    expect(allowed.statusCode).toBe(200);
    expect(allowed.headers?.['access-control-allow-origin']).toBe('https://dash.example.com');
    expect(String(allowed.headers?.['access-control-expose-headers'])).toContain('x-request-id');
    const other = await stack.api(from('https://elsewhere.example'));
    expect(other.headers?.['access-control-allow-origin']).toBeUndefined();
    const streamed = await stack.stream(from('https://dash.example.com'));
    expect(streamed.headers['access-control-allow-origin']).toBe('https://dash.example.com');
    // Without the variable, no CORS headers at all.
    const plain = await (await createStack()).api(from('https://dash.example.com'));
    expect(plain.headers?.['access-control-allow-origin']).toBeUndefined();
  });

  it('refuses a DISAGG_CORS_ORIGINS entry that is not an origin, naming the variable', async () => {
    const stack = await createStack({ env: { DISAGG_CORS_ORIGINS: 'dash.example.com' } });
    // As any bad deployment variable: the function fails to start, saying which and why (the stack checks it first).
    await expect(stack.api(apiEvent('GET', '/v1/models'))).rejects.toThrow(
      /DISAGG_CORS_ORIGINS takes \* or origins like http:\/\/localhost:3000.*got "dash.example.com"/,
    );
  });

  it('sends Allow with a 405', async () => {
    const stack = await createStack();
    const res = await stack.api(apiEvent('PUT', '/v1/requests/chatcmpl-1'));
    expect(res.statusCode).toBe(405);
    expect(res.headers?.allow).toBe('GET, DELETE');
  });

  it('refuses a prompt longer than the server limit before creating a request', async () => {
    const stack = await createStack({ env: { DISAGG_MAX_PROMPT_TOKENS: '64' } });
    const res = await stack.api(post(chatBody(LONG_PROMPT)));
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('context_length_exceeded');
    expect(stack.invoked).toEqual([]);
  });

  it('rejects with 429 and Retry-After when the handoff queue is at the decode queue limit, writing no record for it', async () => {
    const results = new MemoryResultStore<RequestRecord>();
    const written: string[] = [];
    const put = results.put.bind(results);
    results.put = (id, record, ttlMs) => (written.push(id), put(id, record, ttlMs));
    const stack = await createStack({ env: { DISAGG_MAX_DECODE_QUEUE: '2' }, stores: { results } });
    await stack.queue.send('waiting-1');
    await stack.queue.send('waiting-2');
    const res = await stack.api(post(chatBody(SHORT_PROMPT)));
    expect(res.statusCode).toBe(429);
    expect(Number(res.headers?.['retry-after'])).toBeGreaterThanOrEqual(1);
    const error = errorOf(res);
    expect(error.type).toBe('rate_limit_error');
    expect(error.message).toMatch(/decode queue is full \(2 of 2 requests\)/);
    expect(stack.invoked).toEqual([]);
    // No record written for it: a rejection is a metric, not a table item.
    expect(written).toEqual([]);
  });

  it('serves GET /v1/models and GET /healthz', async () => {
    const stack = await createStack();
    const models = await stack.api(apiEvent('GET', '/v1/models'));
    expect(JSON.parse(models.body)).toMatchObject({ object: 'list', data: [{ id: 'llama-3.3-70b', object: 'model' }] });
    const health = await stack.api(apiEvent('GET', '/healthz/'));
    expect(health.statusCode).toBe(200);
    expect(JSON.parse(health.body)).toEqual({ status: 'ok' });
  });

  it('answers 500 in the error format, with the request ended failed, when prefill cannot be invoked', async () => {
    const stack = await createStack();
    const wiring = { ...stack.apiWiring, invokePrefill: () => Promise.reject(new Error('TooManyRequestsException')) };
    const { createApiHandler } = await import('../../lambdas/api');
    const api = createApiHandler(() => Promise.resolve(wiring));
    const res = await api(post(chatBody(SHORT_PROMPT)));
    expect(res.statusCode).toBe(500);
    expect(errorOf(res).type).toBe('server_error');
    expect(stack.logs.lines.some((l) => l.includes('could not invoke the prefill function'))).toBe(true);
  });

  it('streams SSE chunks into the response sink as the record grows, ending with data: [DONE]', async () => {
    const stack = await createStack({ chain: true });
    const recorded = await stack.stream(post(chatBody(LONG_PROMPT, { stream: true })));
    await stack.settled();
    expect(recorded.status).toBe(200);
    expect(recorded.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(recorded.ended).toBe(true);
    const body = recorded.chunks.join('');
    expect(body.endsWith('data: [DONE]\n\n')).toBe(true);
    const chunks = sseEvents(body)
      .slice(0, -1)
      .map((e) => JSON.parse(e) as { choices: { delta: { role?: string; content?: string } }[]; disagg?: unknown });
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(reference.long.pieces.join(''));
    expect(chunks.at(-1)!.disagg).toBeDefined();
  });

  it('writes a non-stream response whole through the stream handler path', async () => {
    const stack = await createStack();
    const recorded = await stack.stream(apiEvent('GET', '/v1/models'));
    expect(recorded.status).toBe(200);
    expect(recorded.headers['content-type']).toBe('application/json');
    expect(JSON.parse(recorded.chunks.join(''))).toMatchObject({ object: 'list' });
    expect(recorded.ended).toBe(true);
  });

  it('logs ids, sizes and timings but never the prompt or the completion', async () => {
    const secret = 'zebra quartz marmalade';
    const stack = await createStack({ chain: true });
    const res = await stack.api(post(chatBody(`${LONG_PROMPT} ${secret}`)));
    await stack.settled();
    const completion = (JSON.parse(res.body) as { choices: { message: { content: string } }[] }).choices[0]!.message
      .content;
    const logs = stack.logs.lines.join('\n');
    expect(logs).toContain('request admitted');
    expect(logs).toContain('handed off');
    expect(logs).not.toContain(secret);
    expect(logs).not.toContain(completion.trim());
  });
});
