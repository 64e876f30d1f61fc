/**
 * The OpenAI-compatible surface: request validation for /v1/chat/completions and /v1/completions,
 * OpenAI-style errors, and the response, chunk and SSE shapes the official clients parse.
 * Pure: the HTTP adapters (Node server, Lambda) own transport, this module owns the wire format.
 */
import { z } from 'zod';
import type { ChatMessage, SamplingParams } from '../ports';

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

export type ApiErrorType =
  'invalid_request_error' | 'not_found_error' | 'rate_limit_error' | 'authentication_error' | 'server_error';

export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** An error with everything the HTTP layer needs to answer in OpenAI's error format. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
  /** Seconds the client should wait before retrying (sent as Retry-After on a 429). */
  readonly retryAfterSeconds?: number;

  constructor(
    status: number,
    message: string,
    type: ApiErrorType | string,
    param: string | null = null,
    code: string | null = null,
    retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = type;
    this.param = param;
    this.code = code;
    if (retryAfterSeconds !== undefined) this.retryAfterSeconds = retryAfterSeconds;
  }

  toBody(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function badRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, code);
}

export function notFound(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(404, message, 'not_found_error', param, code);
}

export function tooManyRequests(message: string, retryAfterSeconds: number): ApiError {
  return new ApiError(429, message, 'rate_limit_error', null, 'rate_limit_exceeded', retryAfterSeconds);
}

export function payloadTooLarge(limitBytes: number): ApiError {
  return new ApiError(
    413,
    `request body is larger than this server's limit of ${groupDigits(limitBytes)} bytes`,
    'invalid_request_error',
    null,
    'body_too_large',
  );
}

export function unsupportedMediaType(got: string | null): ApiError {
  const what = got === null || got === '' ? 'no Content-Type' : `Content-Type ${JSON.stringify(got)}`;
  return new ApiError(
    415,
    `request body must be sent as application/json (Content-Type: application/json), got ${what}`,
    'invalid_request_error',
    null,
    'unsupported_content_type',
  );
}

export function unauthorized(message: string): ApiError {
  return new ApiError(401, message, 'authentication_error', null, 'invalid_api_key');
}

export function serverError(message: string): ApiError {
  return new ApiError(500, message, 'server_error', null, null);
}

// ---------------------------------------------------------------------------------------------
// Request parsing
// ---------------------------------------------------------------------------------------------

export interface ApiLimits {
  maxOutputTokens: number;
  maxPromptTokens: number;
  defaultMaxTokens: number;
}

export type RoutingModeRequest = 'auto' | 'disaggregated' | 'colocated';

export interface ParsedCompletionRequest {
  kind: 'chat' | 'completion';
  model: string;
  /** For 'completion', the prompt as one user message. */
  messages: ChatMessage[];
  /** The raw prompt for 'completion'; null for chat. */
  prompt: string | null;
  sampling: SamplingParams;
  stream: boolean;
  /** stream_options.include_usage, only meaningful (and only true) when streaming. */
  includeUsageInStream: boolean;
  /** From the extension field `disagg: {"mode": ...}`. */
  mode: RoutingModeRequest;
  user: string | null;
}

/**
 * Prompt text allowed per token of the prompt-token limit, checked before tokenizing so an oversized
 * prompt costs no tokenizer work. English averages about 4 characters per BPE token and code fewer, so
 * a prompt above 8 per token cannot fit the token limit unless it is degenerate (long runs of one
 * character), and those are not worth tokenizing megabytes for.
 */
export const MAX_PROMPT_CHARS_PER_TOKEN = 8;

/** The character limit on a request's total prompt text (all message contents, or the prompt). */
export function maxPromptChars(limits: ApiLimits): number {
  return limits.maxPromptTokens * MAX_PROMPT_CHARS_PER_TOKEN;
}

/** Longest string accepted in message content or prompt: 4 Mi characters, well past any model context. */
export const MAX_CONTENT_CHARS = 4 * 1024 * 1024;
export const MAX_MESSAGES = 2048;
export const MAX_STOP_SEQUENCES = 4;
const MAX_STOP_CHARS = 1024;
const MAX_MODEL_CHARS = 256;
const MAX_USER_CHARS = 1024;

const ROLES = ['system', 'user', 'assistant', 'tool'] as const;
const MODES = ['auto', 'disaggregated', 'colocated'] as const;

/** One message per field, used for every way the field can be wrong, so errors read the same. */
const MSG = {
  model: `must be a non-empty string of at most ${MAX_MODEL_CHARS} characters`,
  messages: `must be a non-empty array of at most ${MAX_MESSAGES} messages`,
  message: "must be an object with 'role' and 'content'",
  role: `must be one of ${ROLES.map((r) => `'${r}'`).join(', ')}`,
  content: "must be a string or an array of text parts ({type: 'text', text: string})",
  contentPart: "must be a text part object ({type: 'text', text: string})",
  partType: "must be 'text' (only text content parts are supported)",
  longString: `must be a string of at most ${MAX_CONTENT_CHARS} characters`,
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

const longString = z.string({ error: MSG.longString }).max(MAX_CONTENT_CHARS, { error: MSG.longString });

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

const messageSchema = z.object(
  { role: z.enum(ROLES, { error: MSG.role }), content: contentSchema },
  { error: MSG.message },
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

function maxTokensSchema(maxOutputTokens: number) {
  const msg = `must be an integer from 1 to ${maxOutputTokens}`;
  return z.number({ error: msg }).int({ error: msg }).min(1, { error: msg }).max(maxOutputTokens, { error: msg });
}

/** Fields both endpoints share; the OpenAI client sends null for "not set", so null means absent. */
function commonFields(maxOutputTokens: number) {
  return {
    temperature: z
      .number({ error: MSG.temperature })
      .min(0, { error: MSG.temperature })
      .max(2, { error: MSG.temperature })
      .nullish(),
    top_p: z.number({ error: MSG.topP }).gt(0, { error: MSG.topP }).max(1, { error: MSG.topP }).nullish(),
    seed: z.number({ error: MSG.seed }).int({ error: MSG.seed }).nullish(),
    max_tokens: maxTokensSchema(maxOutputTokens).nullish(),
    n: z.literal(1, { error: MSG.n }).nullish(),
    stream: z.boolean({ error: MSG.stream }).nullish(),
    stream_options: z
      .object({ include_usage: z.boolean({ error: MSG.includeUsage }).nullish() }, { error: MSG.streamOptions })
      .nullish(),
    stop: stopSchema.nullish(),
    user: z.string({ error: MSG.user }).max(MAX_USER_CHARS, { error: MSG.user }).nullish(),
    disagg: z.object({ mode: z.enum(MODES, { error: MSG.mode }).nullish() }, { error: MSG.disagg }).nullish(),
  };
}

const modelSchema = z.string({ error: MSG.model }).min(1, { error: MSG.model }).max(MAX_MODEL_CHARS, {
  error: MSG.model,
});

function buildChatSchema(maxOutputTokens: number) {
  // Key order matters: the first issue reported follows it, and model/messages are the ones to fix first.
  return z.object({
    model: modelSchema,
    messages: z
      .array(messageSchema, { error: MSG.messages })
      .min(1, { error: MSG.messages })
      .max(MAX_MESSAGES, { error: MSG.messages }),
    ...commonFields(maxOutputTokens),
    max_completion_tokens: maxTokensSchema(maxOutputTokens).nullish(),
  });
}

function buildCompletionSchema(maxOutputTokens: number) {
  return z.object({
    model: modelSchema,
    prompt: z.union([longString, z.array(longString, { error: MSG.prompt }).length(1, { error: MSG.onePrompt })], {
      error: MSG.prompt,
    }),
    ...commonFields(maxOutputTokens),
  });
}

type ChatSchema = ReturnType<typeof buildChatSchema>;
type CompletionSchema = ReturnType<typeof buildCompletionSchema>;

// Schemas depend only on maxOutputTokens, which is configuration, so this stays tiny.
const chatSchemas = new Map<number, ChatSchema>();
const completionSchemas = new Map<number, CompletionSchema>();

function cached<T>(cache: Map<number, T>, key: number, build: (k: number) => T): T {
  let s = cache.get(key);
  if (s === undefined) {
    s = build(key);
    cache.set(key, s);
  }
  return s;
}

export function parseChatCompletionRequest(
  body: unknown,
  limits: ApiLimits,
  servedModels: readonly string[],
): ParsedCompletionRequest {
  return guard(() => {
    const obj = requireObject(body);
    const r = validate(cached(chatSchemas, limits.maxOutputTokens, buildChatSchema), obj);
    requireServed(r.model, servedModels);
    const messages: ChatMessage[] = r.messages.map((m, i) => {
      if (typeof m.content === 'string') return { role: m.role, content: m.content };
      // Text parts join with a newline, as vLLM and other OpenAI-compatible servers do.
      const content = m.content.map((p) => p.text).join('\n');
      if (content.length > MAX_CONTENT_CHARS) {
        throw badRequest(
          `messages[${i}].content ${MSG.longString}, got text parts totalling ${content.length} characters`,
          `messages[${i}].content`,
        );
      }
      return { role: m.role, content };
    });
    return finish('chat', r, messages, null, r.max_tokens ?? r.max_completion_tokens, limits);
  });
}

export function parseCompletionRequest(
  body: unknown,
  limits: ApiLimits,
  servedModels: readonly string[],
): ParsedCompletionRequest {
  return guard(() => {
    const obj = requireObject(body);
    const r = validate(cached(completionSchemas, limits.maxOutputTokens, buildCompletionSchema), obj);
    requireServed(r.model, servedModels);
    const prompt = typeof r.prompt === 'string' ? r.prompt : r.prompt[0]!;
    return finish('completion', r, [{ role: 'user', content: prompt }], prompt, r.max_tokens, limits);
  });
}

/** What finish() reads; both endpoint schemas produce at least this. */
interface CommonParsed {
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

function finish(
  kind: 'chat' | 'completion',
  r: CommonParsed,
  messages: ChatMessage[],
  prompt: string | null,
  maxTokens: number | null | undefined,
  limits: ApiLimits,
): ParsedCompletionRequest {
  assertPromptChars(kind, messages, limits);
  const stream = r.stream ?? false;
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
    messages,
    prompt,
    sampling,
    stream,
    includeUsageInStream: stream && (r.stream_options?.include_usage ?? false),
    mode: r.disagg?.mode ?? 'auto',
    user: r.user ?? null,
  };
}

/** Rejects prompt text beyond maxPromptChars(limits), before any tokenizer sees it. */
function assertPromptChars(kind: 'chat' | 'completion', messages: readonly ChatMessage[], limits: ApiLimits): void {
  let chars = 0;
  for (const m of messages) chars += m.content.length;
  const limit = maxPromptChars(limits);
  if (chars <= limit) return;
  throw badRequest(
    `prompt text is ${groupDigits(chars)} characters; this server accepts at most ${groupDigits(limits.maxPromptTokens)} prompt tokens, ` +
      `so at most ${groupDigits(limit)} characters of prompt text (${MAX_PROMPT_CHARS_PER_TOKEN} per token, checked before tokenizing)`,
    kind === 'chat' ? 'messages' : 'prompt',
    'context_length_exceeded',
  );
}

/** Parses a request body; any JSON value is accepted here, the endpoint parsers check the shape. */
export function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw badRequest(`request body is not valid JSON: ${detail}`, null, 'invalid_json');
  }
}

/**
 * Checked by the caller once the prompt is tokenized. The bound is the smaller of the server's
 * prompt limit and what the model context leaves after reserving max_tokens for the output.
 */
export function assertPromptFits(
  promptTokens: number,
  limits: ApiLimits,
  modelContext: number,
  maxTokens: number,
  param: 'messages' | 'prompt' = 'messages',
): void {
  const contextRoom = Math.max(0, modelContext - maxTokens);
  const limit = Math.min(limits.maxPromptTokens, contextRoom);
  if (promptTokens <= limit) return;
  const context = `model context ${groupDigits(modelContext)} minus max_tokens ${groupDigits(maxTokens)}`;
  const why =
    contextRoom <= limits.maxPromptTokens
      ? `(${context}); shorten the prompt or lower max_tokens`
      : `(the server's prompt limit; ${context} would allow ${groupDigits(contextRoom)})`;
  throw badRequest(
    `prompt is ${groupDigits(promptTokens)} tokens; this server accepts at most ${groupDigits(limit)} prompt tokens ${why}`,
    param,
    'context_length_exceeded',
  );
}

function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ApiError) throw e;
    // Anything else is a bug in this module, not the client's fault; never leak a raw error.
    throw serverError(`internal error while validating the request: ${e instanceof Error ? e.name : 'unknown'}`);
  }
}

function requireObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest(`request body must be a JSON object, got ${describe(body)}`, null, 'invalid_body');
  }
  return body as Record<string, unknown>;
}

function requireServed(model: string, servedModels: readonly string[]): void {
  if (servedModels.includes(model)) return;
  const served = servedModels.length === 0 ? '(none)' : servedModels.join(', ');
  throw notFound(
    `The model ${JSON.stringify(model)} does not exist on this server; served models: ${served}`,
    'model',
    'model_not_found',
  );
}

function validate<S extends z.ZodType>(schema: S, body: Record<string, unknown>): z.infer<S> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const first = result.error.issues[0];
  if (first === undefined) throw badRequest('request body is invalid');
  const { path, message } = innermost(first, []);
  const field = formatPath(path);
  const value = valueAt(body, path);
  const text =
    value === undefined ? `${field} is required: it ${message}` : `${field} ${message}, got ${describe(value)}`;
  throw badRequest(text, field, null);
}

/**
 * A union that fails reports only "none matched"; when one branch got past the type check
 * (an array of parts with a bad part, two prompts), its issue says far more, so report that one.
 */
function innermost(issue: z.core.$ZodIssue, prefix: PropertyKey[]): { path: PropertyKey[]; message: string } {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union') {
    for (const branch of issue.errors) {
      const deeper = branch[0];
      // A root-level type mismatch means the branch never applied; anything else means it did.
      if (deeper !== undefined && (deeper.path.length > 0 || deeper.code !== 'invalid_type')) {
        return innermost(deeper, path);
      }
    }
  }
  return { path, message: issue.message };
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const seg of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    // Own properties only, so a key like "constructor" never reaches the prototype.
    if (!Object.prototype.hasOwnProperty.call(v, seg)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

/** A short, safe description of a client value for an error message (never echoes a long string). */
function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return v.length <= 40 ? JSON.stringify(v) : `a string of ${v.length} characters`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.length === 1 ? 'an array of 1 item' : `an array of ${v.length} items`;
  if (typeof v === 'object') return 'an object';
  return typeof v;
}

function groupDigits(n: number): string {
  const s = String(Math.trunc(n));
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

// ---------------------------------------------------------------------------------------------
// Response shaping
// ---------------------------------------------------------------------------------------------

export type FinishReason = 'stop' | 'length';

export interface CompletionResult {
  id: string;
  model: string;
  /** Unix seconds. */
  createdS: number;
  text: string;
  finishReason: FinishReason | null;
  promptTokens: number;
  completionTokens: number;
  /** Engine metadata, attached verbatim as the `disagg` field. */
  disagg: unknown;
}

export interface UsageBody {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ChatCompletionBody {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: 0;
    message: { role: 'assistant'; content: string; refusal: null };
    logprobs: null;
    finish_reason: FinishReason | null;
  }[];
  usage: UsageBody;
  disagg: unknown;
}

export interface TextCompletionBody {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: 0; text: string; logprobs: null; finish_reason: FinishReason | null }[];
  usage: UsageBody;
  disagg: unknown;
}

export interface ChatCompletionChunkBody {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: {
    index: 0;
    delta: { role?: 'assistant'; content?: string };
    logprobs: null;
    finish_reason: FinishReason | null;
  }[];
  usage?: UsageBody | null;
  disagg?: unknown;
}

export interface TextCompletionChunkBody {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: 0; text: string; logprobs: null; finish_reason: FinishReason | null }[];
  usage?: UsageBody | null;
  disagg?: unknown;
}

function usageBody(promptTokens: number, completionTokens: number): UsageBody {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

export function chatCompletionResponse(r: CompletionResult): ChatCompletionBody {
  return {
    id: r.id,
    object: 'chat.completion',
    created: r.createdS,
    model: r.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: r.text, refusal: null },
        logprobs: null,
        finish_reason: r.finishReason,
      },
    ],
    usage: usageBody(r.promptTokens, r.completionTokens),
    disagg: r.disagg,
  };
}

export function completionResponse(r: CompletionResult): TextCompletionBody {
  return {
    id: r.id,
    object: 'text_completion',
    created: r.createdS,
    model: r.model,
    choices: [{ index: 0, text: r.text, logprobs: null, finish_reason: r.finishReason }],
    usage: usageBody(r.promptTokens, r.completionTokens),
    disagg: r.disagg,
  };
}

interface ChunkCommon {
  id: string;
  model: string;
  createdS: number;
  finishReason: FinishReason | null;
  /**
   * Omitted: no usage field. null: `usage: null`, as OpenAI sends on every chunk when include_usage is on.
   * A value: this is the final usage chunk, which carries `choices: []` (delta/text/finishReason unused).
   */
  usage?: UsageBody | null;
  disagg?: unknown;
}

export function chatCompletionChunk(
  args: ChunkCommon & { delta: { role?: 'assistant'; content?: string } },
): ChatCompletionChunkBody {
  const chunk: ChatCompletionChunkBody = {
    id: args.id,
    object: 'chat.completion.chunk',
    created: args.createdS,
    model: args.model,
    choices: args.usage
      ? []
      : [{ index: 0, delta: { ...args.delta }, logprobs: null, finish_reason: args.finishReason }],
  };
  return withUsage(chunk, args);
}

export function completionChunk(args: ChunkCommon & { text: string }): TextCompletionChunkBody {
  const chunk: TextCompletionChunkBody = {
    id: args.id,
    object: 'text_completion',
    created: args.createdS,
    model: args.model,
    choices: args.usage ? [] : [{ index: 0, text: args.text, logprobs: null, finish_reason: args.finishReason }],
  };
  return withUsage(chunk, args);
}

function withUsage<T extends { usage?: UsageBody | null; disagg?: unknown }>(chunk: T, args: ChunkCommon): T {
  if (args.usage === null) chunk.usage = null;
  else if (args.usage !== undefined) {
    const { prompt_tokens, completion_tokens, total_tokens } = args.usage;
    chunk.usage = { prompt_tokens, completion_tokens, total_tokens };
  }
  if (args.disagg !== undefined) chunk.disagg = args.disagg;
  return chunk;
}

/** One server-sent event. JSON.stringify escapes CR and LF, so the payload is always a single line. */
export function sseData(obj: object | '[DONE]'): string {
  return obj === '[DONE]' ? 'data: [DONE]\n\n' : `data: ${JSON.stringify(obj)}\n\n`;
}
