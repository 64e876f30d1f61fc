/**
 * The embedded OpenAI-compatible API over loopback: the official `openai` client unchanged, the
 * `disagg` extension, request inspection and cancellation, input validation, admission, disconnects.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatPromptIds, completionPromptIds, llama3Tokenizer } from '../../lib/adapters/tokenizer-llama3';
import type { ChatMessage } from '../../lib/core/ports';
import { startServer, type RunningServer } from '../../lib/local/server';

const API_KEY = 'test-key';
const MODEL = 'llama-3.3-70b';
const LIMITS = { maxPromptTokens: 64, maxOutputTokens: 256, defaultMaxTokens: 16 };
const MAX_BODY_BYTES = 10 * 1024;
const TIMELINE_EVENTS = [
  'received',
  'admitted',
  'prefill_queued',
  'prefill_start',
  'prefill_end',
  // The first token leaves with the prefill; the KV transfer (kv_get) delays the second.
  'first_token',
  'kv_get',
  'completed',
];

const servers: RunningServer[] = [];
/** timeScale 0: emulated device time is not slept, so requests finish in milliseconds. */
let fast: RunningServer;
let client: OpenAI;

beforeAll(async () => {
  fast = await startServer({
    port: 0,
    engine: { timeScale: 0 },
    apiKey: API_KEY,
    limits: LIMITS,
    maxBodyBytes: MAX_BODY_BYTES,
  });
  servers.push(fast);
  // No retries: a retried 429 or 5xx would hide exactly what these tests look for.
  client = new OpenAI({ baseURL: `${fast.url}/v1`, apiKey: API_KEY, maxRetries: 0, timeout: 20_000 });
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(options: Parameters<typeof startServer>[0]): Promise<RunningServer> {
  const server = await startServer({ port: 0, apiKey: API_KEY, ...options });
  servers.push(server);
  return server;
}

const auth = { authorization: `Bearer ${API_KEY}` };
const json = { 'content-type': 'application/json', ...auth };

function post(server: RunningServer, path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: json,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: signal ?? AbortSignal.timeout(20_000),
  });
}

/** A chat message whose Llama 3 token count is well past the inline-KV size, so its KV goes through the KV store. */
function longMessage(words: number): ChatMessage {
  return { role: 'user', content: Array.from({ length: words }, (_, i) => `word${i % 50}`).join(' ') };
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Asserts the status and the OpenAI error format (exactly message, type, param, code); returns the error. */
async function expectApiError(res: Response, status: number): Promise<ErrorBody['error']> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = JSON.parse(text) as ErrorBody;
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(typeof body.error.type).toBe('string');
  return body.error;
}

async function expectHealthy(server: RunningServer): Promise<void> {
  const res = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(5000) });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { status: string }).status).toBe('ok');
}

/** Server-sent events of a response body, as parsed JSON payloads, with '[DONE]' as the string. */
async function* sseEvents(res: Response): AsyncGenerator<Record<string, unknown> | '[DONE]'> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(bytes, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => line.slice(6))
        .join('\n');
      yield data === '[DONE]' ? '[DONE]' : (JSON.parse(data) as Record<string, unknown>);
    }
  }
}

async function getRequest(server: RunningServer, id: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.url}/v1/requests/${id}`, { headers: auth, signal: AbortSignal.timeout(5000) });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

/** Polls GET /v1/requests/{id} until its state is terminal; fails after `timeoutMs`. */
async function waitForTerminal(
  server: RunningServer,
  id: string,
  timeoutMs = 10_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await getRequest(server, id);
    if (view.done === true) return view;
    if (Date.now() > deadline) throw new Error(`request ${id} still ${String(view.state)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The `disagg` object every response carries: mode, devices, emulated and measured times, timeline. */
function expectDisagg(disagg: unknown, mode: 'disaggregated' | 'colocated'): void {
  const d = disagg as {
    mode: string;
    state: string;
    devices: Record<string, string>;
    emulated: { prefillMs: number; transferMs: number; ttftMs: number; tpotMs: number; e2eMs: number };
    measured: { queueMs: number; prefillMs: number; handoffMs: number; decodeMs: number; totalMs: number };
    timeline: { event: string; measuredMs: number; emulatedMs: number }[];
  };
  expect(d).toBeTypeOf('object');
  expect(d.mode).toBe(mode);
  expect(d.state).toBe('completed');
  if (mode === 'disaggregated') expect(d.devices).toEqual({ prefill: 'trn2x16', decode: 'cs3x4' });
  else expect(d.devices).toEqual({ colocated: 'h100x8' });
  expect(Object.keys(d.emulated).sort()).toEqual(['e2eMs', 'prefillMs', 'tpotMs', 'transferMs', 'ttftMs']);
  expect(Object.keys(d.measured).sort()).toEqual(['decodeMs', 'handoffMs', 'prefillMs', 'queueMs', 'totalMs']);
  for (const v of [...Object.values(d.emulated), ...Object.values(d.measured)]) {
    expect(Number.isFinite(v) && v >= 0).toBe(true);
  }
  expect(d.emulated.prefillMs).toBeGreaterThan(0);
  expect(d.emulated.ttftMs).toBeGreaterThanOrEqual(d.emulated.prefillMs);
  expect(d.emulated.e2eMs).toBeGreaterThanOrEqual(d.emulated.ttftMs);
  expect(d.measured.totalMs).toBeGreaterThan(0);
  const events = d.timeline.map((t) => t.event);
  const expected = mode === 'disaggregated' ? TIMELINE_EVENTS : TIMELINE_EVENTS.filter((e) => e !== 'kv_get');
  for (const name of expected) expect(events).toContain(name);
  // Stamps are in the order they happened.
  const order = expected.map((name) => events.indexOf(name));
  expect([...order].sort((a, b) => a - b)).toEqual(order);
  if (mode === 'colocated') expect(events).not.toContain('kv_get');
}

// Roles both the client's message type and the tokenizer's ChatMessage accept.
const messages: { role: 'system' | 'user'; content: string }[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Why split prefill from decode?' },
];
const promptTokens = (): number => chatPromptIds(llama3Tokenizer(), messages).length;

describe('the official openai client, unchanged', () => {
  it('chat.completions.create returns content, usage counting Llama 3 chat-template tokens, and disagg', async () => {
    const res = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 12, temperature: 0 });
    expect(res.object).toBe('chat.completion');
    expect(res.model).toBe(MODEL);
    expect(res.choices).toHaveLength(1);
    expect(res.choices[0]!.message.role).toBe('assistant');
    expect(res.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(res.choices[0]!.finish_reason);
    expect(res.usage!.prompt_tokens).toBe(promptTokens());
    expect(res.usage!.completion_tokens).toBeGreaterThan(0);
    expect(res.usage!.completion_tokens).toBeLessThanOrEqual(12);
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + res.usage!.completion_tokens);
    expectDisagg((res as unknown as { disagg: unknown }).disagg, 'disaggregated');
  });

  it('chat.completions.create with stream: true yields the same text as non-streamed, disagg on the finishing chunk, then ends', async () => {
    const request = { model: MODEL, messages, max_tokens: 12, temperature: 0, seed: 7 };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({ ...request, stream: true });
    let text = '';
    let finishing: OpenAI.Chat.Completions.ChatCompletionChunk | null = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      expect(chunk.object).toBe('chat.completion.chunk');
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.choices[0]?.finish_reason) finishing = chunk;
    }
    expect(chunks).toBeGreaterThan(2);
    expect(text.length).toBeGreaterThan(0);
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(finishing).not.toBeNull();
    expectDisagg((finishing as unknown as { disagg: unknown }).disagg, 'disaggregated');
  });

  it('stream_options.include_usage adds a final usage chunk with the real token counts', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: OpenAI.CompletionUsage | null | undefined;
    let pieces = 0;
    for await (const chunk of stream) {
      if (chunk.usage) {
        usage = chunk.usage;
        expect(chunk.choices).toEqual([]);
      }
      if (chunk.choices[0]?.delta.content) pieces += 1;
    }
    expect(usage).toBeDefined();
    expect(usage!.prompt_tokens).toBe(promptTokens());
    expect(usage!.completion_tokens).toBeGreaterThan(0);
    expect(usage!.completion_tokens).toBeGreaterThanOrEqual(pieces);
    expect(usage!.total_tokens).toBe(usage!.prompt_tokens + usage!.completion_tokens);
  });

  it('completions.create returns text, usage counting BOS plus prompt tokens, and disagg', async () => {
    const prompt = 'The KV cache moves from prefill to decode';
    const res = await client.completions.create({ model: MODEL, prompt, max_tokens: 10 });
    expect(res.object).toBe('text_completion');
    expect(res.choices[0]!.text.length).toBeGreaterThan(0);
    expect(res.usage!.prompt_tokens).toBe(completionPromptIds(llama3Tokenizer(), prompt).length);
    expect(res.usage!.completion_tokens).toBeGreaterThan(0);
    expectDisagg((res as unknown as { disagg: unknown }).disagg, 'disaggregated');
  });

  it('completions.create with stream: true assembles text, carries disagg on the finishing chunk, and reports usage', async () => {
    const stream = await client.completions.create({
      model: MODEL,
      prompt: 'Trainium prefills; the CS-3',
      max_tokens: 10,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let disagg: unknown;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      if (chunk.choices[0]?.finish_reason) disagg = (chunk as unknown as { disagg: unknown }).disagg;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text.length).toBeGreaterThan(0);
    expectDisagg(disagg, 'disaggregated');
    expect(usage!.prompt_tokens).toBe(completionPromptIds(llama3Tokenizer(), 'Trainium prefills; the CS-3').length);
  });
});

describe('the disagg request extension', () => {
  const create = (extra: Record<string, unknown>) =>
    client.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 4,
      ...extra,
    } as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming);

  it('disagg.mode "colocated" runs both phases on the colocated pool, with no KV handoff', async () => {
    const res = await create({ disagg: { mode: 'colocated' } });
    expectDisagg((res as unknown as { disagg: unknown }).disagg, 'colocated');
  });

  it('no disagg field, and disagg.mode "auto" (threshold 0), run disaggregated', async () => {
    for (const extra of [{}, { disagg: { mode: 'auto' } }, { disagg: { mode: 'disaggregated' } }]) {
      const res = await create(extra);
      expectDisagg((res as unknown as { disagg: unknown }).disagg, 'disaggregated');
    }
  });

  it('an unknown disagg.mode is a 400 naming disagg.mode and the allowed values', async () => {
    const error = await expectApiError(
      await post(fast, '/v1/chat/completions', { model: MODEL, messages, disagg: { mode: 'fastest' } }),
      400,
    );
    expect(error.param).toBe('disagg.mode');
    expect(error.message).toContain("'colocated'");
  });
});

describe('models, health and request inspection', () => {
  it('GET /v1/models lists the served model', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual([MODEL]);
    expect(list.data[0]!.object).toBe('model');
  });

  it('GET /healthz answers without a key and reports queue occupancy', async () => {
    const res = await fetch(`${fast.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', prefillQueue: 0, decodeQueue: 0 });
  });

  it('GET /v1/requests/{id} returns a finished request with its state, usage and timeline', async () => {
    const res = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 5 });
    const view = await getRequest(fast, res.id);
    expect(view).toMatchObject({ id: res.id, object: 'disagg.request', model: MODEL, state: 'completed', done: true });
    expect(view.usage).toEqual(res.usage);
    const events = (view.disagg as { timeline: { event: string }[] }).timeline.map((t) => t.event);
    for (const name of TIMELINE_EVENTS) expect(events).toContain(name);
  });

  it('GET and DELETE of an unknown request id are 404 in the error format', async () => {
    const get = await fetch(`${fast.url}/v1/requests/chatcmpl-nope`, { headers: auth });
    expect((await expectApiError(get, 404)).code).toBe('request_not_found');
    const del = await fetch(`${fast.url}/v1/requests/chatcmpl-nope`, { method: 'DELETE', headers: auth });
    expect((await expectApiError(del, 404)).param).toBe('id');
  });
});

describe('cancellation and disconnects (timeScale 1: device time is slept, so requests stay running)', () => {
  let paced: RunningServer;
  beforeAll(async () => {
    paced = await serve({ engine: { timeScale: 1 } });
  });

  /** Starts a long streamed chat; returns the response and its event iterator once the first content arrives. */
  async function startLongStream(controller: AbortController) {
    const res = await post(
      paced,
      '/v1/chat/completions',
      // ~400 prompt tokens: the KV blob is too big to travel inline, so it goes through the KV store.
      { model: MODEL, messages: [longMessage(200)], max_tokens: 4096, stream: true },
      controller.signal,
    );
    expect(res.status).toBe(200);
    const events = sseEvents(res);
    let id = '';
    let contentChunks = 0;
    while (contentChunks === 0) {
      const next = await events.next();
      if (next.done || next.value === '[DONE]') throw new Error('stream ended before any content');
      const chunk = next.value as { id: string; choices: { delta: { content?: string } }[] };
      id = chunk.id;
      if (chunk.choices[0]?.delta.content) contentChunks += 1;
    }
    return { id, events };
  }

  it('DELETE /v1/requests/{id} on a running stream ends it cancelled, stops the stream, and leaks no KV', async () => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 20_000);
    try {
      const { id, events } = await startLongStream(controller);
      const del = await fetch(`${paced.url}/v1/requests/${id}`, { method: 'DELETE', headers: auth });
      expect(del.status).toBe(200);
      expect(((await del.json()) as { id: string }).id).toBe(id);

      // The stream stops well short of max_tokens: an in-band error in the API's format, then [DONE].
      const rest: (Record<string, unknown> | '[DONE]')[] = [];
      for await (const event of events) rest.push(event);
      expect(rest.at(-1)).toBe('[DONE]');
      const error = rest.at(-2) as unknown as ErrorBody;
      expect(error.error).toMatchObject({ code: 'cancelled' });
      expect(rest.length).toBeLessThan(4096);

      const view = await waitForTerminal(paced, id);
      expect(view.state).toBe('cancelled');
      const events2 = (view.disagg as { timeline: { event: string }[] }).timeline.map((t) => t.event);
      expect(events2).toContain('cancelled');
      expect(events2).not.toContain('completed');
      expect(await paced.kv.count()).toBe(0);
    } finally {
      clearTimeout(timer);
    }
  });

  it('a client that disconnects mid-stream cancels its request and its KV is freed', async () => {
    const controller = new AbortController();
    const { id } = await startLongStream(controller);
    controller.abort();
    const view = await waitForTerminal(paced, id);
    expect(view.state).toBe('cancelled');
    expect(await paced.kv.count()).toBe(0);
    await expectHealthy(paced);
  });
});

describe('cancelling a queued request (timeScale 20: a ~1,000-token prefill sleeps over a second)', () => {
  it('DELETE of a request still waiting for prefill cancels it at once; the one ahead still completes', async () => {
    const slow = await serve({ engine: { timeScale: 20 } });
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 20_000);
    const chat = { model: MODEL, messages: [longMessage(500)], max_tokens: 2, stream: true };
    try {
      // Stream headers are sent once a request is admitted, so awaiting them orders the two requests.
      const ahead = await post(slow, '/v1/chat/completions', chat, controller.signal);
      expect(ahead.status).toBe(200);
      // One prefill replica: this one waits while the one ahead prefills.
      const waiting = await post(slow, '/v1/chat/completions', chat, controller.signal);
      const first = await sseEvents(waiting).next();
      const id = (first.value as { id: string }).id;
      const del = await fetch(`${slow.url}/v1/requests/${id}`, { method: 'DELETE', headers: auth });
      expect(del.status).toBe(200);
      expect(await del.json()).toMatchObject({ id, state: 'cancelled', done: true });

      let finishing: { disagg?: unknown } | null = null;
      for await (const event of sseEvents(ahead)) {
        if (event === '[DONE]') break;
        const chunk = event as { choices: { finish_reason: string | null }[]; disagg?: unknown };
        if (chunk.choices[0]?.finish_reason) finishing = chunk;
      }
      expectDisagg(finishing?.disagg, 'disaggregated');
      expect(await slow.kv.count()).toBe(0);
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  });
});

describe('bad input gets a 4xx in the error format, naming the field and the limit, and the server stays healthy', () => {
  const chat = { model: MODEL, messages };

  it('invalid JSON is a 400 invalid_json', async () => {
    const error = await expectApiError(await post(fast, '/v1/chat/completions', '{"model": "x", '), 400);
    expect(error.code).toBe('invalid_json');
    expect(error.message).toMatch(/not valid JSON/);
  });

  it('a text/plain body is a 415 naming application/json', async () => {
    const res = await fetch(`${fast.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', ...auth },
      body: JSON.stringify(chat),
    });
    const error = await expectApiError(res, 415);
    expect(error.message).toContain('application/json');
  });

  it('missing messages is a 400 with param "messages"', async () => {
    const error = await expectApiError(await post(fast, '/v1/chat/completions', { model: MODEL }), 400);
    expect(error.param).toBe('messages');
    expect(error.message).toMatch(/required/);
  });

  it('temperature "hot" is a 400 with param "temperature" and its range', async () => {
    const error = await expectApiError(await post(fast, '/v1/chat/completions', { ...chat, temperature: 'hot' }), 400);
    expect(error.param).toBe('temperature');
    expect(error.message).toContain('from 0 to 2');
    expect(error.message).toContain('"hot"');
  });

  it('an unknown model is a 404 model_not_found naming the served model', async () => {
    const error = await expectApiError(await post(fast, '/v1/chat/completions', { ...chat, model: 'gpt-4o' }), 404);
    expect(error).toMatchObject({ param: 'model', code: 'model_not_found' });
    expect(error.message).toContain(MODEL);
  });

  it('max_tokens 0 and max_tokens above the limit are 400s naming max_tokens and its range', async () => {
    for (const maxTokens of [0, LIMITS.maxOutputTokens + 1]) {
      const error = await expectApiError(
        await post(fast, '/v1/chat/completions', { ...chat, max_tokens: maxTokens }),
        400,
      );
      expect(error.param).toBe('max_tokens');
      expect(error.message).toContain(`from 1 to ${LIMITS.maxOutputTokens}`);
    }
  });

  it('a prompt beyond the prompt-token limit is a 400 context_length_exceeded with the limit', async () => {
    // ~360 characters, under the 512-character limit (64 tokens × 8), so the token count is what rejects it.
    const error = await expectApiError(
      await post(fast, '/v1/chat/completions', { model: MODEL, messages: [longMessage(60)] }),
      400,
    );
    expect(error).toMatchObject({ param: 'messages', code: 'context_length_exceeded' });
    expect(error.message).toContain(`at most ${LIMITS.maxPromptTokens} prompt tokens`);
    expect(error.message).toMatch(/^prompt is \d+ tokens/);
    const completion = await expectApiError(
      await post(fast, '/v1/completions', { model: MODEL, prompt: longMessage(60).content }),
      400,
    );
    expect(completion.param).toBe('prompt');
  });

  it('a body over the size limit is a 413 naming the limit in bytes', async () => {
    const body = JSON.stringify({ ...chat, user: 'x'.repeat(2 * MAX_BODY_BYTES) });
    const error = await expectApiError(await post(fast, '/v1/chat/completions', body), 413);
    expect(error.code).toBe('body_too_large');
    expect(error.message).toContain('10,240 bytes');
  });

  it('a chunked body (no Content-Length) that grows past the size limit is a 413 too', async () => {
    const body = JSON.stringify({ ...chat, user: 'x'.repeat(2 * MAX_BODY_BYTES) });
    const chunks = new TextEncoder().encode(body);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < chunks.length; at += 1024) controller.enqueue(chunks.slice(at, at + 1024));
        controller.close();
      },
    });
    const res = await fetch(`${fast.url}/v1/chat/completions`, {
      method: 'POST',
      headers: json,
      body: stream,
      duplex: 'half',
      signal: AbortSignal.timeout(10_000),
    } as RequestInit);
    expect((await expectApiError(res, 413)).code).toBe('body_too_large');
  });

  it('a missing or wrong API key is a 401 authentication_error', async () => {
    const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-key' }, { authorization: API_KEY }];
    for (const headers of attempts) {
      const res = await fetch(`${fast.url}/v1/models`, { headers });
      const error = await expectApiError(res, 401);
      expect(error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
    }
    const rejected = new OpenAI({ baseURL: `${fast.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await expect(rejected.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it('a wrong method is a 405 naming the allowed methods, with an Allow header', async () => {
    const cases: [string, string, string][] = [
      ['GET', '/v1/chat/completions', 'POST'],
      ['PUT', '/v1/completions', 'POST'],
      ['POST', '/v1/models', 'GET'],
      ['PATCH', '/v1/requests/chatcmpl-x', 'GET, DELETE'],
      ['POST', '/healthz', 'GET'],
    ];
    for (const [method, path, allowed] of cases) {
      const res = await fetch(`${fast.url}${path}`, { method, headers: auth });
      expect(res.headers.get('allow'), `${method} ${path}`).toBe(allowed);
      const error = await expectApiError(res, 405);
      expect(error.code).toBe('method_not_allowed');
      expect(error.message).toContain(allowed);
    }
  });

  it('an unknown route is a 404 route_not_found', async () => {
    for (const path of ['/v1/embeddings', '/v2/chat/completions', '/']) {
      const error = await expectApiError(await fetch(`${fast.url}${path}`, { headers: auth }), 404);
      expect(error.code).toBe('route_not_found');
    }
  });

  it('after all of that the server is healthy and still serves', async () => {
    await expectHealthy(fast);
    const res = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 3 });
    expect(res.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(await fast.kv.count()).toBe(0);
  });
});

describe('admission control', () => {
  it('a full prefill queue answers 429 with Retry-After in whole seconds, and every accepted request completes', async () => {
    const busy = await serve({ engine: { timeScale: 1, maxPrefillQueue: 1 } });
    const started = Date.now();
    const responses = await Promise.all(
      Array.from({ length: 4 }, () =>
        post(busy, '/v1/chat/completions', { model: MODEL, messages: [longMessage(500)], max_tokens: 4 }),
      ),
    );
    const rejected = responses.filter((r) => r.status === 429);
    const accepted = responses.filter((r) => r.status === 200);
    expect(rejected.length).toBeGreaterThanOrEqual(1);
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    expect(rejected.length + accepted.length).toBe(responses.length);
    for (const res of rejected) {
      const retryAfter = res.headers.get('retry-after') ?? '';
      expect(retryAfter).toMatch(/^\d+$/);
      expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
      const error = await expectApiError(res, 429);
      expect(error).toMatchObject({ type: 'rate_limit_error', code: 'overloaded' });
      expect(error.message).toContain('prefill queue is full');
    }
    for (const res of accepted) {
      const body = (await res.json()) as { choices: { message: { content: string } }[]; disagg: unknown };
      expect(body.choices[0]!.message.content.length).toBeGreaterThan(0);
      expectDisagg(body.disagg, 'disaggregated');
    }
    expect(Date.now() - started).toBeLessThan(20_000);
    await expectHealthy(busy);
    expect(await busy.kv.count()).toBe(0);
  });
});
