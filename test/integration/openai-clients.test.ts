/**
 * Clients nobody here wrote, against the embedded server, scripted: the official `openai` client (chat,
 * completions, responses, models, request ids, errors), LangChain's ChatOpenAI (invoke, stream, bindTools) and
 * the Vercel AI SDK's default provider (`createOpenAI()(model)`, which calls /v1/responses), with generateText
 * and streamText. The Python client cannot run here (no PyPI on this machine); its wire format is the JS one's.
 */
import { createOpenAI } from '@ai-sdk/openai';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, streamText } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../lib/local/server';

const API_KEY = 'sk-clients-test';
const MODEL = 'llama-3.3-70b';

let server: RunningServer;
let client: OpenAI;

beforeAll(async () => {
  server = await startServer({
    port: 0,
    engine: { timeScale: 0 },
    apiKey: API_KEY,
    limits: { maxPromptTokens: 512, maxOutputTokens: 64, defaultMaxTokens: 12 },
  });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: API_KEY, maxRetries: 0, timeout: 20_000 });
});

afterAll(async () => {
  await server.close();
});

const question = [{ role: 'user' as const, content: 'Why split prefill from decode?' }];

describe('the official openai client', () => {
  it('chat.completions.create: text, usage, system_fingerprint and a request id from x-request-id', async () => {
    const { data, response, request_id } = await client.chat.completions
      .create({ model: MODEL, messages: question, max_tokens: 8 })
      .withResponse();
    expect(data.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(data.usage!.completion_tokens).toBeGreaterThan(0);
    expect(data.system_fingerprint).toBe('fp_disagg_reference');
    expect(request_id).toMatch(/^req_[0-9a-f]{32}$/);
    expect(response.headers.get('x-request-id')).toBe(request_id);
  });

  it('honours an x-request-id the client sends', async () => {
    const { request_id } = await client.models.list({ headers: { 'x-request-id': 'trace-1234.abc' } }).withResponse();
    expect(request_id).toBe('trace-1234.abc');
  });

  it('a developer message and an assistant tool-call history are accepted', async () => {
    const done = await client.chat.completions.create({
      model: MODEL,
      max_tokens: 6,
      messages: [
        { role: 'developer', content: 'Answer in one line.' },
        { role: 'user', content: 'What is the weather in Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '{"celsius": 21}' },
      ],
    });
    expect(done.choices[0]!.finish_reason).toMatch(/^(stop|length)$/);
  });

  it('streams with usage: null on every chunk and a final usage chunk', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: question,
      max_tokens: 6,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.completion_tokens).toBeGreaterThan(0);
    for (const chunk of chunks.slice(0, -1)) expect(chunk.usage).toBeNull();
  });

  it('responses.create returns output_text and usage', async () => {
    const response = await client.responses.create({
      model: MODEL,
      instructions: 'Be brief.',
      input: 'Why split prefill from decode?',
      max_output_tokens: 8,
    });
    expect(response.object).toBe('response');
    expect(response.status).toMatch(/^(completed|incomplete)$/);
    expect(response.output_text.length).toBeGreaterThan(0);
    expect(response.usage!.input_tokens).toBeGreaterThan(0);
    expect(response.usage!.output_tokens).toBeGreaterThan(0);
  });

  it('responses.stream yields text deltas and ends with the completed response', async () => {
    const stream = client.responses.stream({ model: MODEL, input: 'Hello there', max_output_tokens: 6 });
    let deltas = '';
    const types: string[] = [];
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') deltas += event.delta;
    }
    const final = await stream.finalResponse();
    expect(types[0]).toBe('response.created');
    expect(types).toContain('response.output_item.done');
    expect(types.at(-1)).toMatch(/^response\.(completed|incomplete)$/);
    expect(final.output_text).toBe(deltas);
  });

  it('models.retrieve returns the served model with max_model_len; another id is a 404', async () => {
    const model = await client.models.retrieve(MODEL);
    expect(model.id).toBe(MODEL);
    expect((model as unknown as { max_model_len: number }).max_model_len).toBe(512 + 64);
    await expect(client.models.retrieve('gpt-4o')).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
  });

  it('fields the reference backend cannot honour are a 400 naming the field, not a silent 200', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] }, 'tools'],
      [{ tool_choice: 'required' }, 'tool_choice'],
      [{ response_format: { type: 'json_object' } }, 'response_format'],
      [{ logprobs: true }, 'logprobs'],
      [{ n: 2 }, 'n'],
      [{ presence_penalty: 0.5 }, 'presence_penalty'],
      [{ frequency_penalty: -1 }, 'frequency_penalty'],
      [{ logit_bias: { '50256': -100 } }, 'logit_bias'],
    ];
    for (const [extra, param] of cases) {
      const call = client.chat.completions.create({ model: MODEL, messages: question, ...extra } as never);
      await expect(call, param).rejects.toMatchObject({ status: 400, param });
    }
  });
});

describe('LangChain ChatOpenAI', () => {
  const chat = (): ChatOpenAI =>
    new ChatOpenAI({
      model: MODEL,
      apiKey: API_KEY,
      maxTokens: 8,
      maxRetries: 0,
      configuration: { baseURL: `${server.url}/v1` },
    });

  it('invoke returns an AIMessage with text and token usage', async () => {
    const message = await chat().invoke([
      ['system', 'You are terse.'],
      ['human', 'Why split prefill from decode?'],
    ]);
    expect(typeof message.content).toBe('string');
    expect((message.content as string).length).toBeGreaterThan(0);
    expect(message.usage_metadata!.input_tokens).toBeGreaterThan(0);
  });

  it('stream yields chunks that join to the text', async () => {
    let text = '';
    let chunks = 0;
    for await (const chunk of await chat().stream('Hello there')) {
      text += chunk.content as string;
      chunks += 1;
    }
    expect(chunks).toBeGreaterThan(1);
    expect(text.length).toBeGreaterThan(0);
  });

  it('bindTools gets a clear 400 naming tools on the reference backend', async () => {
    const withTools = chat().bindTools([
      {
        type: 'function',
        function: {
          name: 'weather',
          description: 'the weather in a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      },
    ]);
    await expect(withTools.invoke('What is the weather in Paris?')).rejects.toThrow(
      /tools is not supported here: the reference backend cannot call functions/,
    );
  });
});

describe('the Vercel AI SDK through its default provider (POST /v1/responses)', () => {
  const provider = () => createOpenAI({ baseURL: `${server.url}/v1`, apiKey: API_KEY });

  it('generateText returns the text and usage', async () => {
    const result = await generateText({
      model: provider()(MODEL),
      system: 'Be brief.',
      prompt: 'Why split prefill from decode?',
      maxOutputTokens: 8,
      maxRetries: 0,
    });
    expect(result.text.length).toBeGreaterThan(0);
    expect(result.usage.inputTokens).toBeGreaterThan(0);
    expect(result.usage.outputTokens).toBeGreaterThan(0);
    expect(result.finishReason).toMatch(/^(stop|length)$/);
    // The default provider called the Responses API: the id is a response's.
    expect(result.response.id).toMatch(/^resp_/);
  });

  it('streamText streams deltas that join to the final text', async () => {
    const result = streamText({ model: provider()(MODEL), prompt: 'Hello there', maxOutputTokens: 6, maxRetries: 0 });
    let streamed = '';
    for await (const delta of result.textStream) streamed += delta;
    expect(streamed.length).toBeGreaterThan(0);
    expect(await result.text).toBe(streamed);
    expect((await result.usage).outputTokens).toBeGreaterThan(0);
    expect((await result.response).id).toMatch(/^resp_/);
  });
});
