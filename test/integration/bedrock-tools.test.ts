/**
 * Function calling with the Bedrock backend, end to end: real OpenAI clients (the official one, LangChain's
 * bindTools, the Vercel AI SDK) against the embedded server, whose pipeline carries the tools through prefill,
 * the handoff descriptor and decode to the real @aws-sdk/client-bedrock-runtime, which talks to a Converse
 * server on 127.0.0.1 (test/integration/fake-bedrock.ts). Checked on both sides: what Converse received
 * (toolConfig, toolChoice, toolUse and toolResult blocks) and what the clients got (tool_calls,
 * finish_reason "tool_calls", streamed deltas); what Converse cannot honour is a 400 naming the field.
 */
import { createOpenAI } from '@ai-sdk/openai';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, jsonSchema, streamText, tool } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BedrockBackend } from '../../lib/adapters/backend-bedrock';
import { startServer, type RunningServer } from '../../lib/local/server';
import { apiEvent } from '../api-gateway-event';
import { createStack } from './lambda-fixtures';
import { startFakeBedrock, type ConverseCall, type FakeAnswer, type FakeBedrock } from './fake-bedrock';

const API_KEY = 'sk-bedrock-tools-test';
const MODEL = 'llama-3.3-70b';
const BEDROCK_MODEL = 'us.meta.llama3-3-70b-instruct-v1:0';

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'weather',
    description: 'the weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

/** The same tool as the AI SDK declares it. */
const aiSdkTools = {
  weather: tool({
    description: weatherTool.function.description,
    inputSchema: jsonSchema<{ city: string }>(weatherTool.function.parameters as never),
  }),
};

/** The model: calls the tool it is offered (the named one when told), answers in text once it has a result. */
function script(call: ConverseCall): FakeAnswer {
  const last = call.body.messages.at(-1);
  const result = last?.content.find((b) => 'toolResult' in b) as
    { toolResult: { content: { text: string }[] } } | undefined;
  if (result) {
    return { blocks: [{ text: `It is ${result.toolResult.content[0]!.text} in Paris.` }], stopReason: 'end_turn' };
  }
  const tools = call.body.toolConfig?.tools ?? [];
  if (tools.length > 0) {
    const named = (call.body.toolConfig?.toolChoice as { tool?: { name: string } } | undefined)?.tool?.name;
    return {
      blocks: [
        {
          toolUse: {
            toolUseId: `tooluse_${call.api}_1`,
            name: named ?? tools[0]!.toolSpec.name,
            input: { city: 'Paris' },
          },
        },
      ],
      stopReason: 'tool_use',
    };
  }
  return { blocks: [{ text: 'Prefill and decode want different hardware.' }], stopReason: 'end_turn' };
}

/** The function of a chat tool call (the client's type also admits custom tools, which this server never sends). */
function functionOf(call: OpenAI.Chat.ChatCompletionMessageToolCall): { name: string; arguments: string } {
  if (call.type !== 'function') throw new Error(`expected a function call, got ${call.type}`);
  return call.function;
}

let bedrock: FakeBedrock;
let server: RunningServer;
let client: OpenAI;

beforeAll(async () => {
  bedrock = await startFakeBedrock(script);
  server = await startServer({
    port: 0,
    engine: { timeScale: 0 },
    apiKey: API_KEY,
    generationBackend: new BedrockBackend({ client: bedrock.client(), modelId: BEDROCK_MODEL }),
    limits: { maxPromptTokens: 2048, maxOutputTokens: 64, defaultMaxTokens: 32 },
  });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: API_KEY, maxRetries: 0, timeout: 20_000 });
});

afterAll(async () => {
  await server?.close();
  await bedrock?.close();
});

beforeEach(() => {
  bedrock.calls.length = 0;
  bedrock.refuseStreamingTools = false;
});

const question = [{ role: 'user' as const, content: 'What is the weather in Paris?' }];

describe('the official openai client, Bedrock backend', () => {
  it.each(['disaggregated', 'colocated'] as const)(
    'a tool call comes back as tool_calls with finish_reason tool_calls (%s: the tools cross the pipeline)',
    async (mode) => {
      const completion = await client.chat.completions.create({
        model: MODEL,
        messages: question,
        tools: [weatherTool],
        // The `disagg` extension picks the path: through the handoff descriptor, or on one device.
        ...({ disagg: { mode } } as object),
      });
      const choice = completion.choices[0]!;
      expect(choice.finish_reason).toBe('tool_calls');
      expect(choice.message.content).toBeNull();
      expect(choice.message.tool_calls).toEqual([
        {
          id: 'tooluse_converse-stream_1',
          type: 'function',
          function: { name: 'weather', arguments: '{"city":"Paris"}' },
        },
      ]);
      expect((completion as unknown as { disagg: { mode: string } }).disagg.mode).toBe(mode);
      // What Converse was sent: the tool's spec, no toolChoice for "auto" (Converse's default).
      expect(bedrock.calls).toHaveLength(1);
      const sent = bedrock.calls[0]!;
      expect(sent.modelId).toBe(BEDROCK_MODEL);
      expect(sent.body.toolConfig).toEqual({
        tools: [
          {
            toolSpec: {
              name: 'weather',
              description: 'the weather in a city',
              inputSchema: { json: weatherTool.function.parameters },
            },
          },
        ],
      });
    },
  );

  it('tool_choice required and a named function map to Converse toolChoice any and tool', async () => {
    await client.chat.completions.create({
      model: MODEL,
      messages: question,
      tools: [weatherTool],
      tool_choice: 'required',
    });
    const other = { ...weatherTool, function: { ...weatherTool.function, name: 'forecast' } };
    const named = await client.chat.completions.create({
      model: MODEL,
      messages: question,
      tools: [weatherTool, other],
      tool_choice: { type: 'function', function: { name: 'forecast' } },
    });
    expect(bedrock.calls.map((c) => c.body.toolConfig?.toolChoice)).toEqual([
      { any: {} },
      { tool: { name: 'forecast' } },
    ]);
    expect(functionOf(named.choices[0]!.message.tool_calls![0]!).name).toBe('forecast');
  });

  it('streams the call as a tool_calls delta the client assembles, then finish_reason tool_calls', async () => {
    const stream = client.chat.completions.stream({
      model: MODEL,
      messages: question,
      tools: [weatherTool],
      stream_options: { include_usage: true },
    });
    const deltas: unknown[] = [];
    const usages: unknown[] = [];
    for await (const chunk of stream) {
      usages.push(chunk.usage);
      for (const c of chunk.choices) if (c.delta.tool_calls) deltas.push(...c.delta.tool_calls);
    }
    const final = await stream.finalChatCompletion();
    expect(deltas).toEqual([
      {
        index: 0,
        id: 'tooluse_converse-stream_1',
        type: 'function',
        function: { name: 'weather', arguments: '{"city":"Paris"}' },
      },
    ]);
    expect(final.choices[0]!.finish_reason).toBe('tool_calls');
    expect(functionOf(final.choices[0]!.message.tool_calls![0]!)).toEqual({
      name: 'weather',
      arguments: '{"city":"Paris"}',
    });
    // include_usage: null on every chunk but the last, which carries the usage.
    expect(usages.slice(0, -1).every((u) => u === null)).toBe(true);
    expect(usages.at(-1)).toMatchObject({ completion_tokens: 1 });
  });

  it('sends the assistant tool call and the tool result back as toolUse and toolResult blocks', async () => {
    const completion = await client.chat.completions.create({
      model: MODEL,
      tools: [weatherTool],
      messages: [
        { role: 'developer', content: 'Use the tools.' },
        ...question,
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '21 °C' },
      ],
    });
    expect(completion.choices[0]!.finish_reason).toBe('stop');
    expect(completion.choices[0]!.message.content).toBe('It is 21 °C in Paris.');
    expect(bedrock.calls[0]!.body.system).toEqual([{ text: 'Use the tools.' }]);
    expect(bedrock.calls[0]!.body.messages).toEqual([
      { role: 'user', content: [{ text: 'What is the weather in Paris?' }] },
      { role: 'assistant', content: [{ toolUse: { toolUseId: 'call_1', name: 'weather', input: { city: 'Paris' } } }] },
      { role: 'user', content: [{ toolResult: { toolUseId: 'call_1', content: [{ text: '21 °C' }] } }] },
    ]);
  });

  it('falls back to Converse when the model cannot stream tool use, and still returns the call', async () => {
    // A backend of its own: it remembers the refusal and sends later requests straight to Converse.
    const own = await startServer({
      port: 0,
      engine: { timeScale: 0 },
      apiKey: API_KEY,
      generationBackend: new BedrockBackend({ client: bedrock.client(), modelId: BEDROCK_MODEL }),
    });
    try {
      bedrock.refuseStreamingTools = true;
      const ownClient = new OpenAI({ baseURL: `${own.url}/v1`, apiKey: API_KEY, maxRetries: 0 });
      const completion = await ownClient.chat.completions.create({
        model: MODEL,
        messages: question,
        tools: [weatherTool],
      });
      expect(bedrock.calls.map((c) => c.api)).toEqual(['converse-stream', 'converse']);
      expect(completion.choices[0]!.finish_reason).toBe('tool_calls');
      expect(completion.choices[0]!.message.tool_calls![0]!.id).toBe('tooluse_converse_1');
    } finally {
      await own.close();
    }
  });

  it('refuses with a 400 naming the field what Converse cannot honour, before Bedrock is called', async () => {
    const history = [
      ...question,
      {
        role: 'assistant' as const,
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function' as const, function: { name: 'weather', arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: 'tool' as const, tool_call_id: 'call_1', content: '21 °C' },
    ];
    const refusal = async (
      body: Record<string, unknown>,
    ): Promise<{ status: number; param: unknown; message: string }> => {
      try {
        await client.chat.completions.create({ model: MODEL, ...body } as never);
      } catch (err) {
        const e = err as { status: number; param: unknown; message: string };
        return { status: e.status, param: e.param, message: e.message };
      }
      throw new Error('expected a 400');
    };
    const cases = [
      [{ messages: history, tools: [weatherTool], tool_choice: 'none' }, 'tool_choice', /cannot forbid tool calls/],
      [{ messages: history }, 'tools', /needs the tool definitions/],
      [
        { messages: question, tools: [weatherTool], parallel_tool_calls: false },
        'parallel_tool_calls',
        /one function call per turn/,
      ],
      [
        { messages: [{ role: 'assistant', content: 'Hi.' }, ...question], tools: [weatherTool] },
        'messages',
        /start with a user turn/,
      ],
      [
        { messages: question, tools: [{ ...weatherTool, function: { ...weatherTool.function, name: 'get.weather' } }] },
        'tools[0].function.name',
        /1 to 64 letters/,
      ],
      [
        { messages: question, response_format: { type: 'json_object' } },
        'response_format',
        /cannot constrain output to JSON/,
      ],
    ] as const;
    for (const [body, param, why] of cases) {
      const r = await refusal(body);
      expect([param, r.status, r.param]).toEqual([param, 400, param]);
      expect(r.message).toMatch(why);
    }
    expect(bedrock.calls).toHaveLength(0);
  });

  it('tool_choice none without a tool history is honoured by offering Converse no tools', async () => {
    const completion = await client.chat.completions.create({
      model: MODEL,
      messages: question,
      tools: [weatherTool],
      tool_choice: 'none',
    });
    expect(completion.choices[0]!.finish_reason).toBe('stop');
    expect(bedrock.calls[0]!.body.toolConfig).toBeUndefined();
  });
});

describe('LangChain bindTools, Bedrock backend', () => {
  it('invoke returns an AIMessage whose tool_calls hold the parsed arguments', async () => {
    const chat = new ChatOpenAI({
      model: MODEL,
      apiKey: API_KEY,
      maxRetries: 0,
      configuration: { baseURL: `${server.url}/v1` },
    });
    const message = await chat.bindTools([weatherTool]).invoke('What is the weather in Paris?');
    expect(message.tool_calls).toEqual([
      expect.objectContaining({ name: 'weather', args: { city: 'Paris' }, id: 'tooluse_converse-stream_1' }),
    ]);
  });
});

describe('the Vercel AI SDK, Bedrock backend (POST /v1/responses)', () => {
  it('generateText with a tool gets the call as a function_call item and finish reason tool-calls', async () => {
    const provider = createOpenAI({ baseURL: `${server.url}/v1`, apiKey: API_KEY });
    const result = await generateText({
      model: provider(MODEL),
      prompt: 'What is the weather in Paris?',
      tools: aiSdkTools,
      maxRetries: 0,
    });
    expect(result.finishReason).toBe('tool-calls');
    expect(result.toolCalls).toEqual([expect.objectContaining({ toolName: 'weather', input: { city: 'Paris' } })]);
    expect(bedrock.calls[0]!.body.toolConfig?.tools[0]!.toolSpec.name).toBe('weather');
  });
});

describe('the Vercel AI SDK streaming a tool call (Responses function_call events)', () => {
  it('streamText gets the call from the function_call item events and finishes with tool-calls', async () => {
    const provider = createOpenAI({ baseURL: `${server.url}/v1`, apiKey: API_KEY });
    const result = streamText({
      model: provider(MODEL),
      prompt: 'What is the weather in Paris?',
      tools: aiSdkTools,
      maxRetries: 0,
    });
    const parts: string[] = [];
    for await (const part of result.fullStream) {
      parts.push(part.type);
      if (part.type === 'error') throw part.error as Error;
    }
    expect(await result.finishReason).toBe('tool-calls');
    expect(await result.toolCalls).toEqual([
      expect.objectContaining({ toolName: 'weather', input: { city: 'Paris' } }),
    ]);
    expect(parts).toContain('tool-call');
  });
});

describe('the same through the Lambda functions (API → prefill → SQS descriptor → decode → results)', () => {
  it('a tool call crosses the deployed pipeline and comes back as tool_calls, and a refusal is the same 400', async () => {
    const backend = new BedrockBackend({ client: bedrock.client(), modelId: BEDROCK_MODEL });
    const stack = await createStack({
      chain: true,
      backend,
      env: { DISAGG_BACKEND: 'bedrock', DISAGG_BEDROCK_MODEL_ID: BEDROCK_MODEL },
    });
    const body = {
      model: MODEL,
      messages: question,
      tools: [weatherTool],
      tool_choice: 'required',
      disagg: { mode: 'disaggregated' },
    };
    const res = await stack.api(apiEvent('POST', '/v1/chat/completions', { body }));
    await stack.settled();
    expect(res.statusCode).toBe(200);
    const completion = JSON.parse(res.body) as OpenAI.Chat.ChatCompletion;
    expect(completion.choices[0]!.finish_reason).toBe('tool_calls');
    expect(functionOf(completion.choices[0]!.message.tool_calls![0]!)).toEqual({
      name: 'weather',
      arguments: '{"city":"Paris"}',
    });
    expect((completion as unknown as { disagg: { mode: string } }).disagg.mode).toBe('disaggregated');
    expect(stack.invoked).toHaveLength(1);
    expect(await stack.queue.depth()).toBe(0);
    // The descriptor on the queue carried the tools: decode's Converse call had them.
    expect(bedrock.calls).toHaveLength(1);
    expect(bedrock.calls[0]!.body.toolConfig?.toolChoice).toEqual({ any: {} });
    const refused = await stack.api(
      apiEvent('POST', '/v1/chat/completions', { body: { ...body, parallel_tool_calls: false } }),
    );
    expect(refused.statusCode).toBe(400);
    expect((JSON.parse(refused.body) as { error: { param: string } }).error.param).toBe('parallel_tool_calls');
    expect(bedrock.calls).toHaveLength(1);
  });
});
