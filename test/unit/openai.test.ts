import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { REFERENCE_CAPABILITIES } from '../../lib/core/api/capabilities';
import { parseChatCompletionRequest, parseCompletionRequest } from '../../lib/core/api/chat-request';
import {
  chatCompletionChunk,
  chatCompletionResponse,
  completionChunk,
  completionResponse,
  type CompletionResult,
} from '../../lib/core/api/completion-shapes';
import {
  ApiError,
  badRequest,
  notFound,
  payloadTooLarge,
  tooManyRequests,
  unsupportedMediaType,
} from '../../lib/core/api/errors';
import {
  MAX_CONTENT_CHARS,
  MAX_PROMPT_CHARS_PER_TOKEN,
  assertPromptFits,
  maxPromptChars,
  type ApiLimits,
} from '../../lib/core/api/limits';
import type { ParsedCompletionRequest } from '../../lib/core/api/request';
import { sseData } from '../../lib/core/api/sse';
import { parseJsonBody } from '../../lib/core/api/validation';
import { mulberry32 } from '../../lib/core/random';

const LIMITS: ApiLimits = { maxOutputTokens: 4096, maxPromptTokens: 8192, defaultMaxTokens: 256 };
const SERVED = ['llama-3.1-8b', 'llama-3.1-70b'] as const;
const MODEL = 'llama-3.1-8b';

function chat(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: MODEL, messages: [{ role: 'user', content: 'hello' }], ...extra };
}

function completion(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: MODEL, prompt: 'Once upon a time', ...extra };
}

/** Runs fn, asserts it threw an ApiError, and returns it. */
function apiErrorFrom(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error('expected an ApiError, but nothing was thrown');
}

const context = (limits: ApiLimits) => ({ limits, servedModels: SERVED, backend: REFERENCE_CAPABILITIES });
const parseChat = (body: unknown, limits: ApiLimits = LIMITS) => parseChatCompletionRequest(body, context(limits));
const parseCompletion = (body: unknown, limits: ApiLimits = LIMITS) => parseCompletionRequest(body, context(limits));

describe('parseChatCompletionRequest: valid requests', () => {
  it('fills every default for a minimal request', () => {
    expect(parseChat(chat())).toEqual({
      kind: 'chat',
      model: MODEL,
      conversation: [{ role: 'user', content: 'hello' }],
      prompt: null,
      tools: [],
      toolChoice: 'auto',
      sampling: { temperature: 1, topP: 1, seed: 0, maxTokens: 256 },
      stream: false,
      includeUsageInStream: false,
      mode: 'auto',
      user: null,
      ignoredFields: [],
    } satisfies ParsedCompletionRequest);
  });

  it('maps every supported field to its parsed form', () => {
    const r = parseChat(
      chat({
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
          { role: 'tool', content: '{"ok":true}', tool_call_id: 'call_1' },
        ],
        temperature: 0,
        top_p: 0.9,
        seed: 42,
        max_tokens: 4096,
        n: 1,
        stop: ['\n\n', 'END'],
        stream: true,
        stream_options: { include_usage: true },
        user: 'user-7',
        disagg: { mode: 'colocated' },
      }),
    );
    expect(r.conversation.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool']);
    expect(r.sampling).toEqual({ temperature: 0, topP: 0.9, seed: 42, maxTokens: 4096, stop: ['\n\n', 'END'] });
    expect(r.stream).toBe(true);
    expect(r.includeUsageInStream).toBe(true);
    expect(r.user).toBe('user-7');
    expect(r.mode).toBe('colocated');
  });

  it.each(['auto', 'disaggregated', 'colocated'] as const)('accepts routing mode %s', (mode) => {
    expect(parseChat(chat({ disagg: { mode } })).mode).toBe(mode);
  });

  it('turns a single stop string into a one-element list and drops empty stop strings', () => {
    expect(parseChat(chat({ stop: 'STOP' })).sampling.stop).toEqual(['STOP']);
    expect(parseChat(chat({ stop: ['', 'x'] })).sampling.stop).toEqual(['x']);
  });

  it('stores seeds as 32-bit unsigned, so negative and large seeds wrap', () => {
    expect(parseChat(chat({ seed: -1 })).sampling.seed).toBe(0xffffffff);
    expect(parseChat(chat({ seed: 2 ** 32 + 5 })).sampling.seed).toBe(5);
  });

  it('uses max_completion_tokens when max_tokens is absent, and max_tokens when both are given', () => {
    expect(parseChat(chat({ max_completion_tokens: 77 })).sampling.maxTokens).toBe(77);
    expect(parseChat(chat({ max_tokens: 11, max_completion_tokens: 77 })).sampling.maxTokens).toBe(11);
  });

  it('treats null on optional fields as not given, as OpenAI does', () => {
    const r = parseChat(
      chat({
        temperature: null,
        top_p: null,
        seed: null,
        max_tokens: null,
        n: null,
        stop: null,
        stream: null,
        stream_options: null,
        user: null,
        disagg: null,
      }),
    );
    expect(r.sampling).toEqual({ temperature: 1, topP: 1, seed: 0, maxTokens: 256 });
    expect([r.stream, r.mode, r.user]).toEqual([false, 'auto', null]);
  });

  it('reports include_usage only for streaming requests', () => {
    expect(parseChat(chat({ stream_options: { include_usage: true } })).includeUsageInStream).toBe(false);
    expect(parseChat(chat({ stream: true })).includeUsageInStream).toBe(false);
  });

  it('joins text content parts with newlines', () => {
    const r = parseChat(
      chat({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'first' },
              { type: 'text', text: 'second' },
            ],
          },
        ],
      }),
    );
    expect(r.conversation).toEqual([{ role: 'user', content: 'first\nsecond' }]);
  });

  it('accepts fields at their neutral values and unknown fields, and lists what it did not act on', () => {
    const r = parseChat({
      ...chat(),
      messages: [{ role: 'user', content: 'hi', name: 'alice', cache_control: { type: 'ephemeral' } }],
      frequency_penalty: 0,
      logit_bias: {},
      tools: [],
      response_format: { type: 'text' },
      metadata: { deep: { deeper: [1, 2, 3] } },
      store: false,
      x_vendor_field: 1,
    });
    expect(r.conversation).toEqual([{ role: 'user', content: 'hi', name: 'alice' }]);
    expect(r).not.toHaveProperty('frequency_penalty');
    expect(r.ignoredFields).toEqual(['metadata', 'store', 'x_vendor_field']);
  });

  it('caps the default max_tokens at maxOutputTokens', () => {
    expect(parseChat(chat(), { ...LIMITS, defaultMaxTokens: 10_000 }).sampling.maxTokens).toBe(4096);
  });

  it('accepts exactly 2048 messages and a content string of exactly the maximum length', () => {
    const many = Array.from({ length: 2048 }, () => ({ role: 'user', content: 'x' }));
    expect(parseChat(chat({ messages: many })).conversation).toHaveLength(2048);
    const long = 'y'.repeat(MAX_CONTENT_CHARS);
    // A prompt-token limit high enough that the prompt character limit is not what is tested here.
    const roomy = { ...LIMITS, maxPromptTokens: MAX_CONTENT_CHARS };
    expect(
      parseChat(chat({ messages: [{ role: 'user', content: long }] }), roomy).conversation[0]!.content,
    ).toHaveLength(MAX_CONTENT_CHARS);
  });
});

interface InvalidCase {
  name: string;
  body: Record<string, unknown>;
  param: string;
  /** Fragments the message must contain: the field, what is allowed, and what was sent. */
  says: string[];
}

const user = (content: unknown) => ({ messages: [{ role: 'user', content }] });

const INVALID_CHAT: InvalidCase[] = [
  { name: 'missing model', body: { messages: [] }, param: 'model', says: ['model is required', 'string'] },
  { name: 'non-string model', body: chat({ model: 7 }), param: 'model', says: ['model must be', 'got 7'] },
  { name: 'empty model', body: chat({ model: '' }), param: 'model', says: ['non-empty', 'got ""'] },
  { name: 'missing messages', body: { model: MODEL }, param: 'messages', says: ['messages is required', '2048'] },
  {
    name: 'empty messages',
    body: chat({ messages: [] }),
    param: 'messages',
    says: ['non-empty array', 'at most 2048', 'got an array of 0 items'],
  },
  {
    name: 'more than 2048 messages',
    body: chat({ messages: Array.from({ length: 2049 }, () => ({ role: 'user', content: 'x' })) }),
    param: 'messages',
    says: ['at most 2048 messages', 'got an array of 2049 items'],
  },
  {
    name: 'messages not an array',
    body: chat({ messages: 'hi' }),
    param: 'messages',
    says: ['messages must be', 'got "hi"'],
  },
  {
    name: 'a message that is not an object',
    body: chat({ messages: [{ role: 'user', content: 'a' }, 'b'] }),
    param: 'messages[1]',
    says: ["messages[1] must be an object with 'role' and 'content'", 'got "b"'],
  },
  {
    name: 'unknown role',
    body: chat({ messages: [{ role: 'bot', content: 'a' }] }),
    param: 'messages[0].role',
    says: ["'system', 'developer', 'user', 'assistant', 'tool'", 'got "bot"'],
  },
  {
    name: 'missing content',
    body: chat({ messages: [{ role: 'user' }] }),
    param: 'messages[0].content',
    says: ['messages[0].content is required'],
  },
  {
    name: 'numeric content',
    body: chat({
      messages: [
        { role: 'user', content: 'a' },
        { role: 'user', content: 5 },
      ],
    }),
    param: 'messages[1].content',
    says: ['messages[1].content must be a string or an array of text parts', 'got 5'],
  },
  {
    name: 'null content',
    body: chat(user(null)),
    param: 'messages[0].content',
    says: ['only an assistant message with tool_calls may have null content'],
  },
  {
    name: 'an image part',
    body: chat(user([{ type: 'image_url', image_url: { url: 'x' } }])),
    param: 'messages[0].content[0].type',
    says: ["must be 'text'", 'only text', 'got "image_url"'],
  },
  {
    name: 'a text part without text',
    body: chat(user([{ type: 'text' }])),
    param: 'messages[0].content[0].text',
    says: ['messages[0].content[0].text is required'],
  },
  {
    name: 'a part that is not an object',
    body: chat(user(['text'])),
    param: 'messages[0].content[0]',
    says: ['text part object', 'got "text"'],
  },
  {
    name: 'content over the length limit',
    body: chat(user('z'.repeat(MAX_CONTENT_CHARS + 1))),
    param: 'messages[0].content',
    says: [`at most ${MAX_CONTENT_CHARS} characters`, `got a string of ${MAX_CONTENT_CHARS + 1} characters`],
  },
  {
    name: 'text parts joining to over the length limit',
    body: chat(
      user([
        { type: 'text', text: 'z'.repeat(MAX_CONTENT_CHARS / 2) },
        { type: 'text', text: 'z'.repeat(MAX_CONTENT_CHARS / 2) },
      ]),
    ),
    param: 'messages[0].content',
    says: [`at most ${MAX_CONTENT_CHARS} characters`, `totalling ${MAX_CONTENT_CHARS + 1} characters`],
  },
  {
    name: 'max_tokens above the limit',
    body: chat({ max_tokens: 100000 }),
    param: 'max_tokens',
    says: ['max_tokens must be an integer from 1 to 4096, got 100000'],
  },
  { name: 'max_tokens zero', body: chat({ max_tokens: 0 }), param: 'max_tokens', says: ['from 1 to 4096', 'got 0'] },
  {
    name: 'fractional max_tokens',
    body: chat({ max_tokens: 2.5 }),
    param: 'max_tokens',
    says: ['an integer from 1 to 4096', 'got 2.5'],
  },
  {
    name: 'string max_tokens',
    body: chat({ max_tokens: '100' }),
    param: 'max_tokens',
    says: ['an integer from 1 to 4096', 'got "100"'],
  },
  {
    name: 'max_completion_tokens above the limit',
    body: chat({ max_completion_tokens: 5000 }),
    param: 'max_completion_tokens',
    says: ['max_completion_tokens must be an integer from 1 to 4096, got 5000'],
  },
  {
    name: 'temperature above 2',
    body: chat({ temperature: 2.5 }),
    param: 'temperature',
    says: ['temperature must be a number from 0 to 2, got 2.5'],
  },
  {
    name: 'negative temperature',
    body: chat({ temperature: -0.1 }),
    param: 'temperature',
    says: ['from 0 to 2', 'got -0.1'],
  },
  {
    name: 'string temperature',
    body: chat({ temperature: '0.7' }),
    param: 'temperature',
    says: ['from 0 to 2', 'got "0.7"'],
  },
  {
    name: 'top_p of zero',
    body: chat({ top_p: 0 }),
    param: 'top_p',
    says: ['top_p must be a number greater than 0 and at most 1, got 0'],
  },
  { name: 'top_p above 1', body: chat({ top_p: 1.01 }), param: 'top_p', says: ['at most 1', 'got 1.01'] },
  { name: 'fractional seed', body: chat({ seed: 1.5 }), param: 'seed', says: ['seed must be an integer', 'got 1.5'] },
  {
    name: 'seed beyond the safe integers',
    body: chat({ seed: 2 ** 53 }),
    param: 'seed',
    says: ['seed must be an integer from -9007199254740991 to 9007199254740991'],
  },
  {
    name: 'n above 1',
    body: chat({ n: 2 }),
    param: 'n',
    says: ['n must be 1', 'one choice per request', 'got 2'],
  },
  { name: 'stream as a string', body: chat({ stream: 'true' }), param: 'stream', says: ['stream must be a boolean'] },
  {
    name: 'stream_options not an object',
    body: chat({ stream: true, stream_options: true }),
    param: 'stream_options',
    says: ['stream_options must be an object', 'got true'],
  },
  {
    name: 'include_usage as a string',
    body: chat({ stream: true, stream_options: { include_usage: 'yes' } }),
    param: 'stream_options.include_usage',
    says: ['stream_options.include_usage must be a boolean', 'got "yes"'],
  },
  {
    name: 'five stop sequences',
    body: chat({ stop: ['a', 'b', 'c', 'd', 'e'] }),
    param: 'stop',
    says: ['at most 4 strings', 'got an array of 5 items'],
  },
  { name: 'a numeric stop', body: chat({ stop: 3 }), param: 'stop', says: ['stop must be a string or an array'] },
  {
    name: 'a numeric stop in the list',
    body: chat({ stop: ['a', 3] }),
    param: 'stop[1]',
    says: ['stop[1] must be a string', 'got 3'],
  },
  { name: 'numeric user', body: chat({ user: 12 }), param: 'user', says: ['user must be a string', 'got 12'] },
  {
    name: 'disagg not an object',
    body: chat({ disagg: 'colocated' }),
    param: 'disagg',
    says: ['disagg must be an object', 'got "colocated"'],
  },
  {
    name: 'an unknown routing mode',
    body: chat({ disagg: { mode: 'fastest' } }),
    param: 'disagg.mode',
    says: ["'auto', 'disaggregated', 'colocated'", 'got "fastest"'],
  },
];

describe('parseChatCompletionRequest: invalid requests', () => {
  it.each(INVALID_CHAT)('rejects $name with 400 naming $param', ({ body, param, says }) => {
    const e = apiErrorFrom(() => parseChat(body));
    expect(e.status).toBe(400);
    expect(e.type).toBe('invalid_request_error');
    expect(e.param).toBe(param);
    for (const s of says) expect(e.message).toContain(s);
    expect(e.message.length).toBeLessThan(300);
  });

  it('states the configured max_tokens limit, not a fixed one', () => {
    const small = { ...LIMITS, maxOutputTokens: 100 };
    expect(apiErrorFrom(() => parseChat(chat({ max_tokens: 101 }), small)).message).toContain('from 1 to 100');
    expect(parseChat(chat({ max_tokens: 4000 })).sampling.maxTokens).toBe(4000);
    expect(apiErrorFrom(() => parseChat(chat({ max_tokens: 4097 }))).message).toContain('from 1 to 4096');
  });

  it('reports the first problem in field order when several fields are wrong', () => {
    const e = apiErrorFrom(() => parseChat({ model: MODEL, messages: [], temperature: 9 }));
    expect(e.param).toBe('messages');
  });

  it('answers an unknown model with 404 model_not_found listing the served models', () => {
    const e = apiErrorFrom(() => parseChat(chat({ model: 'gpt-4o' })));
    expect(e.status).toBe(404);
    expect(e.type).toBe('not_found_error');
    expect(e.code).toBe('model_not_found');
    expect(e.param).toBe('model');
    expect(e.message).toContain('"gpt-4o"');
    expect(e.message).toContain('llama-3.1-8b, llama-3.1-70b');
  });

  it.each([
    ['an array', [], 'an array'],
    ['a string', 'hello', '"hello"'],
    ['null', null, 'null'],
    ['a number', 42, '42'],
    ['a boolean', true, 'true'],
  ])('rejects a body that is %s with 400', (_label, body, got) => {
    for (const parse of [parseChat, parseCompletion]) {
      const e = apiErrorFrom(() => parse(body));
      expect(e.status).toBe(400);
      expect(e.param).toBeNull();
      expect(e.message).toContain('must be a JSON object');
      expect(e.message).toContain(got);
    }
  });

  it('never echoes a long client string back in a message', () => {
    const e = apiErrorFrom(() => parseChat(chat({ temperature: 'q'.repeat(10_000) })));
    expect(e.message).toContain('got a string of 10000 characters');
    expect(e.message).not.toContain('qqqq');
  });
});

describe('parseCompletionRequest', () => {
  it('parses a string prompt into one user message with defaults', () => {
    expect(parseCompletion(completion())).toEqual({
      kind: 'completion',
      model: MODEL,
      conversation: [{ role: 'user', content: 'Once upon a time' }],
      prompt: 'Once upon a time',
      tools: [],
      toolChoice: 'none',
      sampling: { temperature: 1, topP: 1, seed: 0, maxTokens: 256 },
      stream: false,
      includeUsageInStream: false,
      mode: 'auto',
      user: null,
      ignoredFields: [],
    } satisfies ParsedCompletionRequest);
  });

  it('accepts a prompt given as an array of one string', () => {
    const r = parseCompletion(completion({ prompt: ['only one'], max_tokens: 5, stream: true, echo: false }));
    expect([r.prompt, r.sampling.maxTokens, r.stream]).toEqual(['only one', 5, true]);
  });

  it.each([
    ['two prompts', ['a', 'b'], 'got an array of 2 items'],
    ['no prompts', [], 'got an array of 0 items'],
  ])('rejects %s, explaining only one prompt per request is supported', (_label, prompt, got) => {
    const e = apiErrorFrom(() => parseCompletion(completion({ prompt })));
    expect([e.status, e.param]).toEqual([400, 'prompt']);
    expect(e.message).toContain('only one prompt per request');
    expect(e.message).toContain(got);
  });

  it.each([
    ['missing prompt', { model: MODEL }, 'prompt', 'prompt is required'],
    ['numeric prompt', completion({ prompt: 3 }), 'prompt', 'prompt must be a string'],
    ['token-id prompt', completion({ prompt: [[1, 2, 3]] }), 'prompt[0]', 'prompt[0] must be a string'],
    ['max_tokens above the limit', completion({ max_tokens: 4097 }), 'max_tokens', 'from 1 to 4096, got 4097'],
    ['n above 1', completion({ n: 3 }), 'n', 'n must be 1'],
    ['five stops', completion({ stop: ['1', '2', '3', '4', '5'] }), 'stop', 'at most 4 strings'],
    [
      'a prompt over the length limit',
      completion({ prompt: 'p'.repeat(MAX_CONTENT_CHARS + 1) }),
      'prompt',
      `at most ${MAX_CONTENT_CHARS} characters`,
    ],
  ])('rejects %s with 400', (_label, body, param, says) => {
    const e = apiErrorFrom(() => parseCompletion(body));
    expect([e.status, e.type, e.param]).toEqual([400, 'invalid_request_error', param]);
    expect(e.message).toContain(says);
  });

  it('answers an unknown model with 404', () => {
    const e = apiErrorFrom(() => parseCompletion(completion({ model: 'nope' })));
    expect([e.status, e.code]).toEqual([404, 'model_not_found']);
  });
});

describe('parseJsonBody', () => {
  it('returns the parsed value for valid JSON of any kind', () => {
    expect(parseJsonBody('{"a":[1,"x",null]}')).toEqual({ a: [1, 'x', null] });
    expect(parseJsonBody('[]')).toEqual([]);
  });

  it.each(['{"a":}', '', '{"model": "m",', 'not json', '{"a":1}}'])(
    'rejects %j with 400 invalid_json carrying the parser message',
    (text) => {
      let parserMessage = '';
      try {
        JSON.parse(text);
      } catch (e) {
        parserMessage = (e as Error).message;
      }
      const e = apiErrorFrom(() => parseJsonBody(text));
      expect([e.status, e.type, e.code, e.param]).toEqual([400, 'invalid_request_error', 'invalid_json', null]);
      expect(parserMessage).not.toBe('');
      expect(e.message).toContain(parserMessage);
    },
  );
});

describe('prompt character limit (maxPromptTokens × MAX_PROMPT_CHARS_PER_TOKEN, before tokenizing)', () => {
  const small: ApiLimits = { ...LIMITS, maxPromptTokens: 10 };

  it('is 8 characters per token of the prompt-token limit', () => {
    expect(MAX_PROMPT_CHARS_PER_TOKEN).toBe(8);
    expect(maxPromptChars(small)).toBe(80);
  });

  it('accepts prompt text of exactly the limit, summed over chat messages', () => {
    const messages = [
      { role: 'system', content: 'a'.repeat(40) },
      { role: 'user', content: 'b'.repeat(40) },
    ];
    expect(parseChat(chat({ messages }), small).conversation).toHaveLength(2);
    expect(parseCompletion(completion({ prompt: 'c'.repeat(80) }), small).prompt).toHaveLength(80);
  });

  it('rejects one character over with a 400 context_length_exceeded naming both limits', () => {
    const messages = [
      { role: 'system', content: 'a'.repeat(40) },
      { role: 'user', content: [{ type: 'text', text: 'b'.repeat(41) }] },
    ];
    const e = apiErrorFrom(() => parseChat(chat({ messages }), small));
    expect([e.status, e.code, e.param]).toEqual([400, 'context_length_exceeded', 'messages']);
    expect(e.message).toBe(
      'prompt text is 81 characters; this server accepts at most 10 prompt tokens, ' +
        'so at most 80 characters of prompt text (8 per token, checked before tokenizing)',
    );
    const c = apiErrorFrom(() => parseCompletion(completion({ prompt: ['c'.repeat(81)] }), small));
    expect([c.status, c.code, c.param]).toEqual([400, 'context_length_exceeded', 'prompt']);
  });
});

describe('assertPromptFits', () => {
  it('accepts a prompt exactly at the limit', () => {
    expect(() => assertPromptFits(8192, LIMITS, 131_072, 256)).not.toThrow();
    expect(() => assertPromptFits(0, LIMITS, 131_072, 256)).not.toThrow();
  });

  it('rejects one token over the server prompt limit, naming both bounds', () => {
    const e = apiErrorFrom(() => assertPromptFits(9120, LIMITS, 131_072, 256));
    expect([e.status, e.code, e.param]).toEqual([400, 'context_length_exceeded', 'messages']);
    expect(e.message).toBe(
      'prompt is 9,120 tokens; this server accepts at most 8,192 prompt tokens ' +
        "(the server's prompt limit; model context 131,072 minus max_tokens 256 would allow 130,816)",
    );
    expect(() => assertPromptFits(8193, LIMITS, 131_072, 256)).toThrow(ApiError);
  });

  it('uses the model context minus max_tokens when that is smaller', () => {
    expect(() => assertPromptFits(7936, LIMITS, 8192, 256)).not.toThrow();
    const e = apiErrorFrom(() => assertPromptFits(7937, LIMITS, 8192, 256, 'prompt'));
    expect(e.param).toBe('prompt');
    expect(e.message).toBe(
      'prompt is 7,937 tokens; this server accepts at most 7,936 prompt tokens ' +
        '(model context 8,192 minus max_tokens 256); shorten the prompt or lower max_tokens',
    );
  });

  it('leaves no room at all when max_tokens fills the model context', () => {
    expect(apiErrorFrom(() => assertPromptFits(1, LIMITS, 4096, 4096)).message).toContain('at most 0 prompt tokens');
  });
});

describe('ApiError helpers', () => {
  it('serialises to the OpenAI error body', () => {
    const e = badRequest('temperature must be a number from 0 to 2, got 3', 'temperature');
    expect(e).toBeInstanceOf(Error);
    expect(e.toBody()).toEqual({
      error: {
        message: 'temperature must be a number from 0 to 2, got 3',
        type: 'invalid_request_error',
        param: 'temperature',
        code: null,
      },
    });
    expect(e.retryAfterSeconds).toBeUndefined();
  });

  it('takes constructor arguments as status, message, type, param, code, retry-after', () => {
    const e = new ApiError(429, 'at capacity', 'rate_limit_error', null, 'overloaded', 7);
    expect([e.status, e.message, e.type, e.param, e.code, e.retryAfterSeconds]).toEqual([
      429,
      'at capacity',
      'rate_limit_error',
      null,
      'overloaded',
      7,
    ]);
    expect(e.name).toBe('ApiError');
  });

  it('builds 404, 429, 413 and 415 with their types and codes', () => {
    const nf = notFound('no such thing', 'model', 'model_not_found');
    expect([nf.status, nf.type, nf.param, nf.code]).toEqual([404, 'not_found_error', 'model', 'model_not_found']);

    const tm = tooManyRequests('slow down', 3);
    expect([tm.status, tm.type, tm.retryAfterSeconds]).toEqual([429, 'rate_limit_error', 3]);

    const big = payloadTooLarge(1_048_576);
    expect([big.status, big.code]).toEqual([413, 'body_too_large']);
    expect(big.message).toContain('1,048,576 bytes');

    const media = unsupportedMediaType('text/plain');
    expect([media.status, media.code]).toEqual([415, 'unsupported_content_type']);
    expect(media.message).toContain('application/json');
    expect(media.message).toContain('"text/plain"');
    expect(unsupportedMediaType(null).message).toContain('no Content-Type');
  });
});

const RESULT: CompletionResult = {
  id: 'chatcmpl-abc',
  model: MODEL,
  createdS: 1_700_000_000,
  text: 'Hi there.',
  finishReason: 'stop',
  promptTokens: 12,
  completionTokens: 4,
  systemFingerprint: 'fp_disagg_reference',
  disagg: { mode: 'disaggregated', handoffMs: 3.5 },
};

describe('response shapes', () => {
  it('builds a chat.completion with exactly the OpenAI fields plus disagg', () => {
    expect(chatCompletionResponse(RESULT)).toStrictEqual({
      id: 'chatcmpl-abc',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: MODEL,
      system_fingerprint: 'fp_disagg_reference',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hi there.', refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 },
      disagg: { mode: 'disaggregated', handoffMs: 3.5 },
    });
  });

  it('builds a text_completion with exactly the OpenAI fields plus disagg', () => {
    expect(completionResponse({ ...RESULT, id: 'cmpl-1', finishReason: 'length' })).toStrictEqual({
      id: 'cmpl-1',
      object: 'text_completion',
      created: 1_700_000_000,
      model: MODEL,
      system_fingerprint: 'fp_disagg_reference',
      choices: [{ index: 0, text: 'Hi there.', logprobs: null, finish_reason: 'length' }],
      usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 },
      disagg: { mode: 'disaggregated', handoffMs: 3.5 },
    });
  });

  it('attaches the engine disagg object by reference, untouched', () => {
    expect(chatCompletionResponse(RESULT).disagg).toBe(RESULT.disagg);
  });

  const base = { id: 'chatcmpl-abc', model: MODEL, createdS: 1_700_000_000, systemFingerprint: 'fp_disagg_reference' };

  it('builds chat chunks: role first, then content, then the finish reason', () => {
    expect(
      chatCompletionChunk({ ...base, delta: { role: 'assistant', content: '' }, finishReason: null }),
    ).toStrictEqual({
      id: 'chatcmpl-abc',
      object: 'chat.completion.chunk',
      created: 1_700_000_000,
      model: MODEL,
      system_fingerprint: 'fp_disagg_reference',
      choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
    });
    const last = chatCompletionChunk({ ...base, delta: {}, finishReason: 'length', disagg: { a: 1 } });
    expect(last.choices).toEqual([{ index: 0, delta: {}, logprobs: null, finish_reason: 'length' }]);
    expect(last.disagg).toEqual({ a: 1 });
    expect(last).not.toHaveProperty('usage');
  });

  it('sends usage: null on ordinary chunks when asked, and a final usage chunk with no choices', () => {
    const mid = chatCompletionChunk({ ...base, delta: { content: 'x' }, finishReason: null, usage: null });
    expect(mid.usage).toBeNull();
    expect(mid.choices).toHaveLength(1);
    const usage = chatCompletionChunk({
      ...base,
      delta: {},
      finishReason: null,
      usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 },
    });
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toEqual({ prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 });
  });

  it('builds text_completion chunks, with a usage chunk that has no choices', () => {
    expect(completionChunk({ ...base, text: 'Hi', finishReason: null })).toStrictEqual({
      id: 'chatcmpl-abc',
      object: 'text_completion',
      created: 1_700_000_000,
      model: MODEL,
      system_fingerprint: 'fp_disagg_reference',
      choices: [{ index: 0, text: 'Hi', logprobs: null, finish_reason: null }],
    });
    const u = completionChunk({
      ...base,
      text: '',
      finishReason: null,
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    });
    expect([u.choices, u.usage]).toEqual([[], { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }]);
  });

  it('frames SSE events as one data line and a blank line, even when the text has newlines', () => {
    expect(sseData('[DONE]')).toBe('data: [DONE]\n\n');
    const frame = sseData(completionChunk({ ...base, text: 'a\nb\r\nc', finishReason: null }));
    expect(frame.startsWith('data: {')).toBe(true);
    expect(frame.endsWith('}\n\n')).toBe(true);
    expect(frame.slice(0, -2)).not.toMatch(/[\r\n]/);
    expect(JSON.parse(frame.slice('data: '.length))).toMatchObject({ choices: [{ text: 'a\nb\r\nc' }] });
  });
});

/** The official client, talking to a fake fetch that answers with the given body. */
function clientAnswering(status: number, body: string, contentType: string): OpenAI {
  return new OpenAI({
    apiKey: 'test-key',
    baseURL: 'http://disagg.test/v1',
    maxRetries: 0,
    fetch: async () => new Response(body, { status, headers: { 'content-type': contentType } }),
  });
}

describe('the official openai client reads these shapes', () => {
  it('parses a chat.completion', async () => {
    const client = clientAnswering(200, JSON.stringify(chatCompletionResponse(RESULT)), 'application/json');
    const c = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
    expect(c.choices[0]!.message.content).toBe('Hi there.');
    expect(c.choices[0]!.finish_reason).toBe('stop');
    expect(c.usage?.total_tokens).toBe(16);
  });

  it('streams chat chunks ending in a usage chunk and [DONE]', async () => {
    const base = { id: 'chatcmpl-s', model: MODEL, createdS: 1_700_000_000, systemFingerprint: 'fp_disagg_reference' };
    const frames = [
      chatCompletionChunk({ ...base, delta: { role: 'assistant', content: '' }, finishReason: null, usage: null }),
      chatCompletionChunk({ ...base, delta: { content: 'Hel' }, finishReason: null, usage: null }),
      chatCompletionChunk({ ...base, delta: { content: 'lo' }, finishReason: null, usage: null }),
      chatCompletionChunk({ ...base, delta: {}, finishReason: 'stop', usage: null }),
      chatCompletionChunk({
        ...base,
        delta: {},
        finishReason: null,
        usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
        disagg: { mode: 'colocated' },
      }),
    ]
      .map(sseData)
      .concat(sseData('[DONE]'))
      .join('');
    const client = clientAnswering(200, frames, 'text/event-stream');
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    const finish: (string | null)[] = [];
    let usage: unknown = null;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        text += choice.delta.content ?? '';
        finish.push(choice.finish_reason);
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('Hello');
    expect(finish).toEqual([null, null, null, 'stop']);
    expect(usage).toEqual({ prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
  });

  it('streams text_completion chunks', async () => {
    const base = { id: 'cmpl-s', model: MODEL, createdS: 1_700_000_000, systemFingerprint: 'fp_disagg_reference' };
    const frames = [
      completionChunk({ ...base, text: 'A', finishReason: null }),
      completionChunk({ ...base, text: 'B', finishReason: 'length' }),
    ]
      .map(sseData)
      .concat(sseData('[DONE]'))
      .join('');
    const client = clientAnswering(200, frames, 'text/event-stream');
    const stream = await client.completions.create({ model: MODEL, prompt: 'x', stream: true });
    const texts: string[] = [];
    for await (const chunk of stream) texts.push(chunk.choices[0]!.text);
    expect(texts).toEqual(['A', 'B']);
  });

  it('surfaces an ApiError body as the client error with type, param and code', async () => {
    const err = apiErrorFrom(() => parseChat(chat({ max_tokens: 100000 })));
    const client = clientAnswering(err.status, JSON.stringify(err.toBody()), 'application/json');
    const thrown = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(thrown).toBeInstanceOf(OpenAI.BadRequestError);
    const e = thrown as InstanceType<typeof OpenAI.BadRequestError>;
    expect([e.status, e.type, e.param, e.code]).toEqual([400, 'invalid_request_error', 'max_tokens', null]);
    expect(e.message).toContain('max_tokens must be an integer from 1 to 4096');
  });
});

const KNOWN_KEYS = [
  'model',
  'messages',
  'prompt',
  'temperature',
  'top_p',
  'seed',
  'max_tokens',
  'max_completion_tokens',
  'n',
  'stream',
  'stream_options',
  'stop',
  'user',
  'disagg',
  'role',
  'content',
  'type',
  'text',
  'mode',
  'include_usage',
  '__proto__',
  'constructor',
];
const SPECIAL_STRINGS = ['', 'user', 'text', MODEL, 'auto', '\u0000', '\ud83d\ude00', '\u202e', '\ud800', 'é'];
const SPECIAL_NUMBERS = [0, -0, 1, -1, 0.5, 2, 4096, 4097, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, -1e-308, 1.5];

function pickWith<T>(rng: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)]!;
}

/** Random JSON: nested arrays and objects, known keys so validation goes deep, odd numbers and unicode. */
function junk(rng: () => number, depth: number): unknown {
  const r = rng();
  if (depth <= 0 || r < 0.3) {
    const leaf = rng();
    if (leaf < 0.15) return null;
    if (leaf < 0.3) return rng() < 0.5;
    if (leaf < 0.5) return pickWith(rng, SPECIAL_NUMBERS);
    if (leaf < 0.6) return (rng() - 0.5) * 10 ** Math.floor(rng() * 20);
    if (leaf < 0.75) return pickWith(rng, SPECIAL_STRINGS);
    const len = Math.floor(rng() * 12);
    let s = '';
    for (let i = 0; i < len; i++) s += String.fromCodePoint(Math.floor(rng() * 0x10ffff) & ~0x800);
    return s;
  }
  const n = Math.floor(rng() * 5);
  if (r < 0.6) return Array.from({ length: n }, () => junk(rng, depth - 1));
  const o: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const key = rng() < 0.8 ? pickWith(rng, KNOWN_KEYS) : String(rng());
    // defineProperty so "__proto__" becomes an own key, as JSON.parse makes it.
    Object.defineProperty(o, key, {
      value: junk(rng, depth - 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return o;
}

/** Mostly-valid requests with one or two fields replaced by junk, to reach every validator. */
function nearlyValid(rng: () => number): unknown {
  const body: Record<string, unknown> = rng() < 0.5 ? chat() : completion();
  if (rng() < 0.1) body.model = pickWith(rng, ['gpt-4o', 'LLAMA-3.1-8B', ' llama-3.1-8b', '\ud83d\ude00']);
  const fields = Math.floor(rng() * 3);
  for (let i = 0; i < fields; i++) {
    body[KNOWN_KEYS[Math.floor(rng() * 14)]!] = junk(rng, 4);
  }
  return JSON.parse(JSON.stringify(body));
}

describe('hostile input', () => {
  it('throws only ApiError 400/404 for 500 random JSON values, in both parsers', () => {
    const rng = mulberry32(20240601);
    const statuses = new Map<number, number>();
    let parsed = 0;
    for (let i = 0; i < 500; i++) {
      // Round-trip through JSON so the values are exactly what a body could hold.
      const raw = i % 2 === 0 ? junk(rng, 6) : nearlyValid(rng);
      const value = parseJsonBody(JSON.stringify(raw) ?? 'null');
      for (const parse of [parseChat, parseCompletion]) {
        try {
          const r = parse(value);
          parsed++;
          expect(SERVED).toContain(r.model);
          expect(r.conversation.length).toBeGreaterThan(0);
        } catch (e) {
          expect(e).toBeInstanceOf(ApiError);
          const err = e as ApiError;
          expect([400, 404]).toContain(err.status);
          expect(err.message.length).toBeGreaterThan(0);
          expect(err.message.length).toBeLessThan(400);
          expect(err.param === null || typeof err.param === 'string').toBe(true);
          statuses.set(err.status, (statuses.get(err.status) ?? 0) + 1);
        }
      }
    }
    // The generator must reach the deep validators, not just bounce off the first check.
    expect(statuses.get(400) ?? 0).toBeGreaterThan(300);
    expect(statuses.get(404) ?? 0).toBeGreaterThan(0);
    expect(parsed).toBeGreaterThan(0);
  });

  it('throws only ApiError 400 invalid_json for random text', () => {
    const rng = mulberry32(7);
    const alphabet = '{}[]":,0123456789.eE+-truefalsnl \\u\n\t\u00e9\ud83d\ude00';
    for (let i = 0; i < 500; i++) {
      let s = '';
      const len = Math.floor(rng() * 30);
      for (let k = 0; k < len; k++) s += alphabet[Math.floor(rng() * alphabet.length)];
      try {
        parseJsonBody(s);
      } catch (e) {
        expect(e).toBeInstanceOf(ApiError);
        expect([(e as ApiError).status, (e as ApiError).code]).toEqual([400, 'invalid_json']);
      }
    }
  });

  it('handles deeply nested unknown fields without recursing into them', () => {
    const deep = parseJsonBody('{"x":' + '['.repeat(50_000) + ']'.repeat(50_000) + '}') as Record<string, unknown>;
    expect(parseChat({ ...chat(), ...deep }).model).toBe(MODEL);
    const e = apiErrorFrom(() => parseChat(chat({ messages: deep.x })));
    expect(e.param).toBe('messages[0]');
  });
});
