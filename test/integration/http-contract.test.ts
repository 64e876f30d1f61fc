/**
 * The HTTP contract, run against both ways the one application is served: the embedded server over loopback, and
 * the API function through Hono's Lambda adapter with API Gateway REST proxy events (buffered, and with response
 * streaming), chained to the prefill and decode functions as AWS chains them. Same routes, validation, errors and
 * SSE framing in both, by construction; these cases check it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../lib/local/server';
import { apiEvent, createStack, type Stack } from './lambda-fixtures';

const API_KEY = 'sk-contract';
const MODEL = 'llama-3.3-70b';

interface Answer {
  status: number;
  headers: Record<string, string>;
  text: string;
}

interface Transport {
  readonly name: string;
  send(method: string, path: string, init?: { body?: unknown; headers?: Record<string, string> }): Promise<Answer>;
}

let server: RunningServer;
let stack: Stack;

const embedded: Transport = {
  name: 'embedded HTTP server',
  async send(method, path, init = {}) {
    const body =
      init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${API_KEY}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...init.headers,
      },
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(20_000),
    });
    return { status: res.status, headers: Object.fromEntries(res.headers), text: await res.text() };
  },
};

function lambdaEvent(method: string, path: string, init: { body?: unknown; headers?: Record<string, string> }) {
  return apiEvent(
    method,
    path,
    typeof init.body === 'string'
      ? { rawBody: init.body, headers: { 'Content-Type': 'application/json', ...init.headers } }
      : { body: init.body, headers: init.headers ?? {} },
  );
}

const lowerCase = (headers: Record<string, unknown>): Record<string, string> =>
  Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));

const lambdaBuffered: Transport = {
  name: 'API function, buffered (handler)',
  async send(method, path, init = {}) {
    const res = await stack.api(lambdaEvent(method, path, init));
    return { status: res.statusCode, headers: lowerCase(res.headers ?? {}), text: res.body };
  },
};

const lambdaStreamed: Transport = {
  name: 'API function, response streaming (streamHandler)',
  async send(method, path, init = {}) {
    const recorded = await stack.stream(lambdaEvent(method, path, init));
    expect(recorded.ended).toBe(true);
    return { status: recorded.status ?? 0, headers: lowerCase(recorded.headers), text: recorded.chunks.join('') };
  },
};

beforeAll(async () => {
  server = await startServer({ port: 0, engine: { timeScale: 0 }, apiKey: API_KEY });
  stack = await createStack({ chain: true });
}, 60_000);

afterAll(async () => {
  await stack?.settled();
  await server?.close();
});

const chat = (extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  max_tokens: 6,
  messages: [{ role: 'user', content: 'Why split prefill from decode?' }],
  ...extra,
});

function errorOf(answer: Answer): { message: string; type: string; param: string | null; code: string | null } {
  expect(answer.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(answer.text) as {
    error: { message: string; type: string; param: string | null; code: string | null };
  };
  expect(Object.keys(body)).toEqual(['error']);
  return body.error;
}

/** Named SSE events and data payloads, in order. */
function sse(text: string): { event: string | null; data: string }[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const lines = block.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7) ?? null;
      const data = lines.find((l) => l.startsWith('data: '))!.slice(6);
      return { event, data };
    });
}

describe.each([embedded, lambdaBuffered, lambdaStreamed])('$name', (t) => {
  it('GET /healthz answers ok', async () => {
    const a = await t.send('GET', '/healthz');
    expect(a.status).toBe(200);
    expect(JSON.parse(a.text)).toMatchObject({ status: 'ok' });
  });

  it('every response carries an x-request-id, the client’s own when it sends one', async () => {
    expect((await t.send('GET', '/v1/models')).headers['x-request-id']).toMatch(/^req_[0-9a-f]{32}$/);
    const own = await t.send('GET', '/v1/nope', { headers: { 'x-request-id': 'client-7' } });
    expect(own.headers['x-request-id']).toBe('client-7');
  });

  it('GET /v1/models and /v1/models/{id} describe the served model with max_model_len', async () => {
    const list = JSON.parse((await t.send('GET', '/v1/models')).text) as {
      data: { id: string; max_model_len: number }[];
    };
    expect(list.data.map((m) => m.id)).toEqual([MODEL]);
    expect(list.data[0]!.max_model_len).toBeGreaterThan(0);
    const one = await t.send('GET', `/v1/models/${MODEL}///`);
    expect(one.status).toBe(200);
    expect(JSON.parse(one.text)).toMatchObject({ id: MODEL, object: 'model' });
    const missing = await t.send('GET', '/v1/models/gpt-4o');
    expect(missing.status).toBe(404);
    expect(errorOf(missing)).toMatchObject({ code: 'model_not_found', param: 'model' });
  });

  it('unknown routes are 404, wrong methods 405 with Allow', async () => {
    const none = await t.send('POST', '/v1/embeddings', { body: {} });
    expect(none.status).toBe(404);
    expect(errorOf(none).code).toBe('route_not_found');
    const wrong = await t.send('PUT', '/v1/requests/abc');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('GET, DELETE');
  });

  it('bad bodies are 4xx in the error format, naming the field', async () => {
    const notJson = await t.send('POST', '/v1/chat/completions', { body: '{"model":', headers: {} });
    expect(notJson.status).toBe(400);
    expect(errorOf(notJson).code).toBe('invalid_json');
    const tools = await t.send('POST', '/v1/chat/completions', {
      body: chat({ tools: [{ type: 'function', function: { name: 'f' } }] }),
    });
    expect(tools.status).toBe(400);
    expect(errorOf(tools)).toMatchObject({ param: 'tools', code: 'unsupported_parameter' });
    const format = await t.send('POST', '/v1/responses', {
      body: { model: MODEL, input: 'hi', text: { format: { type: 'json_object' } } },
    });
    expect(format.status).toBe(400);
    expect(errorOf(format).param).toBe('text.format');
  });

  it('a chat completion answers in the OpenAI shape with disagg, readable afterwards by id', async () => {
    const a = await t.send('POST', '/v1/chat/completions', { body: chat() });
    expect(a.status).toBe(200);
    const body = JSON.parse(a.text) as {
      id: string;
      object: string;
      system_fingerprint: string;
      choices: { message: { content: string } }[];
      disagg: { state: string };
    };
    expect(body.object).toBe('chat.completion');
    expect(body.system_fingerprint).toBe('fp_disagg_reference');
    expect(body.disagg.state).toBe('completed');
    const view = JSON.parse((await t.send('GET', `/v1/requests/${body.id}`)).text) as {
      state: string;
      output_text: string;
    };
    expect(view.state).toBe('completed');
    expect(view.output_text).toBe(body.choices[0]!.message.content);
  });

  it('a streamed chat completion opens with the role and ends with disagg, usage and [DONE]', async () => {
    const a = await t.send('POST', '/v1/chat/completions', {
      body: chat({ stream: true, stream_options: { include_usage: true } }),
    });
    expect(a.status).toBe(200);
    expect(a.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = sse(a.text);
    expect(events.at(-1)!.data).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data) as Record<string, unknown>);
    expect(chunks[0]).toMatchObject({ choices: [{ delta: { role: 'assistant' } }], usage: null });
    expect(chunks.at(-2)).toHaveProperty('disagg');
    expect(chunks.at(-1)).toMatchObject({ choices: [] });
  });

  it('POST /v1/responses answers a response object; streamed, the named events in order', async () => {
    const plain = JSON.parse(
      (await t.send('POST', '/v1/responses', { body: { model: MODEL, input: 'Hello', max_output_tokens: 5 } })).text,
    ) as { object: string; output: { type: string; content: { text: string }[] }[] };
    expect(plain.object).toBe('response');
    expect(plain.output[0]!.type).toBe('message');
    const streamed = await t.send('POST', '/v1/responses', {
      body: { model: MODEL, input: 'Hello', max_output_tokens: 5, stream: true },
    });
    const names = sse(streamed.text).map((e) => e.event);
    expect(names.slice(0, 4)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
    ]);
    expect(names).toContain('response.output_text.delta');
    expect(names.slice(-4)).toEqual([
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      expect.stringMatching(/^response\.(completed|incomplete)$/),
    ]);
  });
});
