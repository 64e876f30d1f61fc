/**
 * Bedrock tool use through Converse: OpenAI tools and tool histories mapped to toolConfig / toolUse / toolResult,
 * the model's toolUse returned as a function call with stop reason tool_use, and what Converse cannot honour refused
 * by field.
 */
import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  type ConverseStreamOutput,
} from '@aws-sdk/client-bedrock-runtime';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { BedrockBackend } from '../../lib/adapters/backend-bedrock';
import { toConverseMessages, toConverseToolConfig } from '../../lib/adapters/bedrock-tools';
import { ApiError } from '../../lib/core/api/errors';
import type { ChatMessage, DecodeInput, GeneratedToken, ToolOffer } from '../../lib/core/ports';

const MODEL = 'us.anthropic.claude-haiku-4-5-20251001-v1:0';
const META = { httpStatusCode: 200 };

const weather: ToolOffer = {
  tools: [
    {
      name: 'weather',
      description: 'the weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  ],
  choice: 'auto',
};

const history: ChatMessage[] = [
  { role: 'system', content: 'Use tools.' },
  { role: 'user', content: 'Weather in Paris?' },
  { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' }] },
  { role: 'tool', content: '{"celsius":21}', toolCallId: 'call_1' },
];

function refusal(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error('expected a refusal');
}

describe('mapping to Converse', () => {
  it('turns tools into toolSpecs, and required / a named tool into toolChoice', () => {
    expect(toConverseToolConfig(weather, [])).toEqual({
      tools: [
        {
          toolSpec: {
            name: 'weather',
            description: 'the weather in a city',
            inputSchema: { json: weather.tools[0]!.parameters },
          },
        },
      ],
    });
    expect(toConverseToolConfig({ ...weather, choice: 'required' }, [])?.toolChoice).toEqual({ any: {} });
    expect(toConverseToolConfig({ ...weather, choice: { name: 'weather' } }, [])?.toolChoice).toEqual({
      tool: { name: 'weather' },
    });
    expect(toConverseToolConfig({ ...weather, choice: 'none' }, [])).toBeUndefined();
    expect(toConverseToolConfig(undefined, [])).toBeUndefined();
  });

  it('writes tool calls as toolUse blocks of the assistant turn and results as toolResult blocks', () => {
    expect(toConverseMessages(history)).toEqual({
      system: [{ text: 'Use tools.' }],
      messages: [
        { role: 'user', content: [{ text: 'Weather in Paris?' }] },
        {
          role: 'assistant',
          content: [{ toolUse: { toolUseId: 'call_1', name: 'weather', input: { city: 'Paris' } } }],
        },
        { role: 'user', content: [{ toolResult: { toolUseId: 'call_1', content: [{ text: '{"celsius":21}' }] } }] },
      ],
    });
  });

  it('refuses what Converse cannot honour, naming the field', () => {
    const badName = refusal(() => toConverseToolConfig({ tools: [{ name: 'get weather!' }], choice: 'auto' }, []));
    expect([badName.status, badName.param]).toEqual([400, 'tools[0].function.name']);
    expect(refusal(() => toConverseToolConfig({ ...weather, choice: 'none' }, history)).param).toBe('tool_choice');
    expect(refusal(() => toConverseToolConfig(undefined, history)).param).toBe('tools');
    const args = refusal(() =>
      toConverseMessages([{ role: 'assistant', content: '', toolCalls: [{ id: 'c', name: 'f', arguments: '[1]' }] }]),
    );
    expect(args.message).toMatch(/arguments of tool call c must be a JSON object/);
  });
});

describe('BedrockBackend with tools', () => {
  function setup() {
    const client = new BedrockRuntimeClient({ region: 'us-east-1' });
    const mock = mockClient(client);
    const backend = new BedrockBackend({ client, modelId: MODEL });
    return { mock, backend };
  }

  const input: DecodeInput = {
    promptIds: [1],
    messages: [{ role: 'user', content: 'Weather in Paris?' }],
    kv: null,
    firstToken: null,
    sampling: { temperature: 0, topP: 1, seed: 0, maxTokens: 64 },
    tools: weather,
  };

  async function* events(list: ConverseStreamOutput[]): AsyncGenerator<ConverseStreamOutput> {
    for (const e of list) yield e;
  }

  async function drain(session: { next(): Promise<GeneratedToken | null> }): Promise<GeneratedToken[]> {
    const out: GeneratedToken[] = [];
    for (let t = await session.next(); t !== null; t = await session.next()) out.push(t);
    return out;
  }

  it('sends toolConfig and returns a streamed toolUse as one function call, stop reason tool_use', async () => {
    const { mock, backend } = setup();
    mock.on(ConverseStreamCommand).resolves({
      stream: events([
        { messageStart: { role: 'assistant' } },
        {
          contentBlockStart: { contentBlockIndex: 0, start: { toolUse: { toolUseId: 'tooluse_1', name: 'weather' } } },
        },
        { contentBlockDelta: { contentBlockIndex: 0, delta: { toolUse: { input: '{"city":' } } } },
        { contentBlockDelta: { contentBlockIndex: 0, delta: { toolUse: { input: '"Paris"}' } } } },
        { contentBlockStop: { contentBlockIndex: 0 } },
        { messageStop: { stopReason: 'tool_use' } },
      ]),
      $metadata: META,
    });
    const session = backend.startDecode(input);
    expect(await drain(session)).toEqual([
      { id: null, text: '', toolCall: { id: 'tooluse_1', name: 'weather', arguments: '{"city":"Paris"}' } },
    ]);
    expect(session.stopReason).toBe('tool_use');
    const sent = mock.commandCalls(ConverseStreamCommand)[0]!.args[0].input;
    expect(sent.toolConfig?.tools?.[0]?.toolSpec?.name).toBe('weather');
  });

  it('returns Converse toolUse blocks as function calls after the text, when streaming is refused', async () => {
    const { mock, backend } = setup();
    const refused = Object.assign(new Error("This model doesn't support tool use in streaming mode."), {
      name: 'ValidationException',
    });
    mock.on(ConverseStreamCommand).rejects(refused);
    mock.on(ConverseCommand).resolves({
      output: {
        message: {
          role: 'assistant',
          content: [{ text: 'Checking.' }, { toolUse: { toolUseId: 't2', name: 'weather', input: { city: 'Paris' } } }],
        },
      },
      stopReason: 'tool_use',
      usage: { inputTokens: 10, outputTokens: 5, totalTokens: 15 },
      metrics: { latencyMs: 100 },
      $metadata: META,
    });
    const tokens = await drain(backend.startDecode(input));
    expect(tokens).toEqual([
      { id: null, text: 'Checking.' },
      { id: null, text: '', toolCall: { id: 't2', name: 'weather', arguments: '{"city":"Paris"}' } },
    ]);
  });
});
