/**
 * Request validation for POST /v1/chat/completions and POST /v1/completions: the OpenAI request shapes, each
 * wrong field reported by name with what it must be, and the conversation they describe.
 */
import * as z from 'zod';
import type { SamplingParams } from '../ports';
import {
  assertChatSupported,
  assertCompletionSupported,
  ignoredFields,
  type BackendCapabilities,
} from './capabilities';
import { badRequest, notFound } from './errors';
import {
  assertPromptChars,
  MAX_CONTENT_CHARS,
  MAX_MESSAGES,
  MAX_MODEL_CHARS,
  MAX_STOP_CHARS,
  MAX_STOP_SEQUENCES,
  MAX_USER_CHARS,
  type ApiLimits,
} from './limits';
import {
  conversationChars,
  type ConversationMessage,
  type Endpoint,
  type ParsedCompletionRequest,
  type RoutingModeRequest,
  type ToolCall,
  type ToolChoice,
  type ToolDefinition,
} from './request';
import { guard, requireObject, schemaCache, validate } from './validation';

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool'] as const;
const MODES = ['auto', 'disaggregated', 'colocated'] as const;

/** One message per field, used for every way the field can be wrong, so errors read the same. */
export const MSG = {
  model: `must be a non-empty string of at most ${MAX_MODEL_CHARS} characters`,
  messages: `must be a non-empty array of at most ${MAX_MESSAGES} messages`,
  message: "must be an object with 'role' and 'content'",
  role: `must be one of ${ROLES.map((r) => `'${r}'`).join(', ')}`,
  content: "must be a string or an array of text parts ({type: 'text', text: string})",
  contentPart: "must be a text part object ({type: 'text', text: string})",
  partType: "must be 'text' (only text content parts are supported)",
  longString: `must be a string of at most ${MAX_CONTENT_CHARS} characters`,
  toolCalls: "must be an array of {id, type: 'function', function: {name, arguments}}",
  toolCall: "must be an object {id, type: 'function', function: {name, arguments}}",
  toolCallType: "must be 'function'",
  toolName: 'must be a non-empty string of at most 256 characters',
  toolArguments: 'must be a string (the arguments as JSON text)',
  toolCallId: 'must be a non-empty string of at most 256 characters',
  tools: "must be an array of {type: 'function', function: {name, description?, parameters?}}",
  tool: "must be an object {type: 'function', function: {name, description?, parameters?}}",
  toolParameters: 'must be a JSON Schema object',
  toolChoice: "must be 'none', 'auto', 'required' or {type: 'function', function: {name}}",
  prompt: 'must be a string, or an array holding one string',
  onePrompt: 'must hold exactly one prompt string (this server supports only one prompt per request)',
  temperature: 'must be a number from 0 to 2',
  topP: 'must be a number greater than 0 and at most 1',
  seed: `must be an integer from ${Number.MIN_SAFE_INTEGER} to ${Number.MAX_SAFE_INTEGER}`,
  n: 'must be 1 (this server returns one choice per request)',
  stream: 'must be a boolean',
  streamOptions: 'must be an object like {"include_usage": true}',
  includeUsage: 'must be a boolean',
  stop: `must be a string or an array of at most ${MAX_STOP_SEQUENCES} strings`,
  stopItem: `must be a string of at most ${MAX_STOP_CHARS} characters`,
  user: `must be a string of at most ${MAX_USER_CHARS} characters`,
  disagg: 'must be an object like {"mode": "auto"}',
  mode: `must be one of ${MODES.map((m) => `'${m}'`).join(', ')}`,
} as const;

export const longString = z.string({ error: MSG.longString }).max(MAX_CONTENT_CHARS, { error: MSG.longString });

const contentSchema = z.union(
  [
    longString,
    z.array(
      z.object({ type: z.literal('text', { error: MSG.partType }), text: longString }, { error: MSG.contentPart }),
      { error: MSG.content },
    ),
  ],
  { error: MSG.content },
);

export const toolNameSchema = z.string({ error: MSG.toolName }).min(1, { error: MSG.toolName }).max(256, {
  error: MSG.toolName,
});

const toolCallSchema = z.object(
  {
    id: z.string({ error: MSG.toolCallId }).min(1, { error: MSG.toolCallId }).max(256, { error: MSG.toolCallId }),
    type: z.literal('function', { error: MSG.toolCallType }).nullish(),
    function: z.object(
      { name: toolNameSchema, arguments: z.string({ error: MSG.toolArguments }).max(MAX_CONTENT_CHARS) },
      { error: MSG.toolCall },
    ),
  },
  { error: MSG.toolCall },
);

const messageSchema = z.object(
  {
    role: z.enum(ROLES, { error: MSG.role }),
    // null or absent only on an assistant turn that called tools (checked below, with the role known).
    content: contentSchema.nullish(),
    tool_calls: z.array(toolCallSchema, { error: MSG.toolCalls }).max(128, { error: MSG.toolCalls }).nullish(),
    tool_call_id: z
      .string({ error: MSG.toolCallId })
      .min(1, { error: MSG.toolCallId })
      .max(256, { error: MSG.toolCallId })
      .nullish(),
    name: z.string({ error: MSG.toolName }).max(256, { error: MSG.toolName }).nullish(),
  },
  { error: MSG.message },
);

export const toolsSchema = z
  .array(
    z.object(
      {
        type: z.literal('function', { error: MSG.toolCallType }),
        function: z.object(
          {
            name: toolNameSchema,
            description: z.string({ error: 'must be a string' }).max(MAX_CONTENT_CHARS).nullish(),
            parameters: z.record(z.string(), z.unknown(), { error: MSG.toolParameters }).nullish(),
            strict: z.boolean({ error: 'must be a boolean' }).nullish(),
          },
          { error: MSG.tool },
        ),
      },
      { error: MSG.tool },
    ),
    { error: MSG.tools },
  )
  .max(128, { error: MSG.tools });

export const toolChoiceSchema = z.union(
  [
    z.enum(['none', 'auto', 'required'], { error: MSG.toolChoice }),
    z.object(
      { type: z.literal('function', { error: MSG.toolChoice }), function: z.object({ name: toolNameSchema }) },
      { error: MSG.toolChoice },
    ),
  ],
  { error: MSG.toolChoice },
);

const stopSchema = z.union(
  [
    z.string({ error: MSG.stopItem }).max(MAX_STOP_CHARS, { error: MSG.stopItem }),
    z
      .array(z.string({ error: MSG.stopItem }).max(MAX_STOP_CHARS, { error: MSG.stopItem }), { error: MSG.stop })
      .max(MAX_STOP_SEQUENCES, { error: MSG.stop }),
  ],
  { error: MSG.stop },
);

export function maxTokensSchema(maxOutputTokens: number) {
  const msg = `must be an integer from 1 to ${maxOutputTokens}`;
  return z.number({ error: msg }).int({ error: msg }).min(1, { error: msg }).max(maxOutputTokens, { error: msg });
}

export const modelSchema = z.string({ error: MSG.model }).min(1, { error: MSG.model }).max(MAX_MODEL_CHARS, {
  error: MSG.model,
});

/** Sampling fields every endpoint shares; the OpenAI client sends null for "not set", so null means absent. */
export const samplingFields = {
  temperature: z
    .number({ error: MSG.temperature })
    .min(0, { error: MSG.temperature })
    .max(2, { error: MSG.temperature })
    .nullish(),
  top_p: z.number({ error: MSG.topP }).gt(0, { error: MSG.topP }).max(1, { error: MSG.topP }).nullish(),
  stream: z.boolean({ error: MSG.stream }).nullish(),
  user: z.string({ error: MSG.user }).max(MAX_USER_CHARS, { error: MSG.user }).nullish(),
  disagg: z.object({ mode: z.enum(MODES, { error: MSG.mode }).nullish() }, { error: MSG.disagg }).nullish(),
};

function commonFields(maxOutputTokens: number) {
  return {
    ...samplingFields,
    seed: z.number({ error: MSG.seed }).int({ error: MSG.seed }).nullish(),
    max_tokens: maxTokensSchema(maxOutputTokens).nullish(),
    n: z.literal(1, { error: MSG.n }).nullish(),
    stream_options: z
      .object({ include_usage: z.boolean({ error: MSG.includeUsage }).nullish() }, { error: MSG.streamOptions })
      .nullish(),
    stop: stopSchema.nullish(),
  };
}

const chatSchema = schemaCache((maxOutputTokens: number) =>
  // Key order matters: the first issue reported follows it, and model/messages are the ones to fix first.
  z.object({
    model: modelSchema,
    messages: z
      .array(messageSchema, { error: MSG.messages })
      .min(1, { error: MSG.messages })
      .max(MAX_MESSAGES, { error: MSG.messages }),
    ...commonFields(maxOutputTokens),
    max_completion_tokens: maxTokensSchema(maxOutputTokens).nullish(),
    tools: toolsSchema.nullish(),
    tool_choice: toolChoiceSchema.nullish(),
  }),
);

const completionSchema = schemaCache((maxOutputTokens: number) =>
  z.object({
    model: modelSchema,
    prompt: z.union([longString, z.array(longString, { error: MSG.prompt }).length(1, { error: MSG.onePrompt })], {
      error: MSG.prompt,
    }),
    ...commonFields(maxOutputTokens),
  }),
);

/** Fields the parsers read; anything else in a body is accepted and reported as ignored. */
const CHAT_FIELDS = new Set([
  ...Object.keys(chatSchema(1).shape),
  // Checked by the capability rules: accepted at their neutral values.
  'response_format',
  'logprobs',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'modalities',
]);
const COMPLETION_FIELDS = new Set([
  ...Object.keys(completionSchema(1).shape),
  'logprobs',
  'echo',
  'best_of',
  'suffix',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
]);

export interface ParseContext {
  readonly limits: ApiLimits;
  readonly servedModels: readonly string[];
  readonly backend: BackendCapabilities;
}

export function parseChatCompletionRequest(body: unknown, ctx: ParseContext): ParsedCompletionRequest {
  return guard(() => {
    const obj = requireObject(body);
    const r = validate(chatSchema(ctx.limits.maxOutputTokens), obj);
    requireServed(r.model, ctx.servedModels);
    assertChatSupported(obj, ctx.backend);
    const conversation = r.messages.map((m, i) => conversationMessage(m, i));
    assertPromptChars(conversationChars(conversation), ctx.limits, 'messages');
    return finish('chat', r, conversation, null, r.max_tokens ?? r.max_completion_tokens, ctx, {
      tools: toolDefinitions(r.tools),
      toolChoice: toolChoice(r.tool_choice),
      ignored: ignoredFields(obj, CHAT_FIELDS),
    });
  });
}

export function parseCompletionRequest(body: unknown, ctx: ParseContext): ParsedCompletionRequest {
  return guard(() => {
    const obj = requireObject(body);
    const r = validate(completionSchema(ctx.limits.maxOutputTokens), obj);
    requireServed(r.model, ctx.servedModels);
    assertCompletionSupported(obj, ctx.backend);
    const prompt = typeof r.prompt === 'string' ? r.prompt : r.prompt[0]!;
    assertPromptChars(prompt.length, ctx.limits, 'prompt');
    return finish('completion', r, [{ role: 'user', content: prompt }], prompt, r.max_tokens, ctx, {
      tools: [],
      toolChoice: 'none',
      ignored: ignoredFields(obj, COMPLETION_FIELDS),
    });
  });
}

type ParsedMessage = z.infer<ReturnType<typeof chatSchema>>['messages'][number];

function conversationMessage(m: ParsedMessage, i: number): ConversationMessage {
  const field = `messages[${i}]`;
  const toolCalls: ToolCall[] | undefined = m.tool_calls?.map((c) => ({
    id: c.id,
    name: c.function.name,
    arguments: c.function.arguments,
  }));
  if (m.content === null || m.content === undefined) {
    if (m.role !== 'assistant' || toolCalls === undefined || toolCalls.length === 0) {
      throw badRequest(
        `${field}.content is required: only an assistant message with tool_calls may have null content`,
        `${field}.content`,
      );
    }
  }
  if (toolCalls !== undefined && toolCalls.length > 0 && m.role !== 'assistant') {
    throw badRequest(
      `${field}.tool_calls is only allowed on an assistant message, got role '${m.role}'`,
      `${field}.tool_calls`,
    );
  }
  if (m.role === 'tool' && (m.tool_call_id === null || m.tool_call_id === undefined)) {
    throw badRequest(
      `${field}.tool_call_id is required on a tool message: it names the call it answers`,
      `${field}.tool_call_id`,
    );
  }
  const content = messageText(m.content, field);
  return {
    role: m.role,
    content,
    ...(toolCalls !== undefined && toolCalls.length > 0 ? { toolCalls } : {}),
    ...(m.tool_call_id ? { toolCallId: m.tool_call_id } : {}),
    ...(m.name ? { name: m.name } : {}),
  };
}

/** Text parts join with a newline, as vLLM and other OpenAI-compatible servers do. */
function messageText(content: ParsedMessage['content'], field: string): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  const text = content.map((p) => p.text).join('\n');
  if (text.length > MAX_CONTENT_CHARS) {
    throw badRequest(
      `${field}.content ${MSG.longString}, got text parts totalling ${text.length} characters`,
      `${field}.content`,
    );
  }
  return text;
}

export function toolDefinitions(tools: z.infer<typeof toolsSchema> | null | undefined): ToolDefinition[] {
  return (tools ?? []).map((t) => ({
    name: t.function.name,
    ...(t.function.description ? { description: t.function.description } : {}),
    ...(t.function.parameters ? { parameters: t.function.parameters } : {}),
  }));
}

function toolChoice(choice: z.infer<typeof toolChoiceSchema> | null | undefined): ToolChoice {
  if (choice === null || choice === undefined) return 'auto';
  return typeof choice === 'string' ? choice : { name: choice.function.name };
}

export function requireServed(model: string, servedModels: readonly string[]): void {
  if (servedModels.includes(model)) return;
  const served = servedModels.length === 0 ? '(none)' : servedModels.join(', ');
  throw notFound(
    `The model ${JSON.stringify(model)} does not exist on this server; served models: ${served}`,
    'model',
    'model_not_found',
  );
}

/** What finish() reads; every endpoint schema produces at least this. */
export interface CommonParsed {
  model: string;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
  stop?: string | string[] | null;
  user?: string | null;
  disagg?: { mode?: RoutingModeRequest | null } | null;
}

export function finish(
  kind: Endpoint,
  r: CommonParsed,
  conversation: readonly ConversationMessage[],
  prompt: string | null,
  maxTokens: number | null | undefined,
  ctx: ParseContext,
  extra: { tools: readonly ToolDefinition[]; toolChoice: ToolChoice; ignored: readonly string[] },
): ParsedCompletionRequest {
  const stream = r.stream ?? false;
  const { limits } = ctx;
  const sampling: { -readonly [K in keyof SamplingParams]: SamplingParams[K] } = {
    temperature: r.temperature ?? 1,
    topP: r.top_p ?? 1,
    // Stored as u32 because that is what the sampler's PRNG seeds from; negative seeds wrap.
    seed: (r.seed ?? 0) >>> 0,
    maxTokens: maxTokens ?? Math.min(limits.defaultMaxTokens, limits.maxOutputTokens),
  };
  if (r.stop !== null && r.stop !== undefined) {
    // An empty stop string would end every generation at once; clients that send one mean "none".
    sampling.stop = (typeof r.stop === 'string' ? [r.stop] : r.stop).filter((s) => s.length > 0);
  }
  return {
    kind,
    model: r.model,
    conversation,
    prompt,
    tools: extra.toolChoice === 'none' ? [] : extra.tools,
    toolChoice: extra.toolChoice,
    sampling,
    stream,
    includeUsageInStream: stream && (r.stream_options?.include_usage ?? false),
    mode: r.disagg?.mode ?? 'auto',
    user: r.user ?? null,
    ignoredFields: extra.ignored,
  };
}
