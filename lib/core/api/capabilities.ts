/**
 * What the serving backend can honour, and the fields a request may not silently lose. A field the backend
 * cannot act on is a 400 naming it and why (as vLLM answers); informational fields are accepted and listed for
 * a debug log; a field at its neutral value (penalty 0, n 1, `response_format: text`) is simply accepted.
 */
import { unsupportedField } from './errors';
import type { ParsedCompletionRequest } from './request';

export interface BackendCapabilities {
  /** The backend's name, for error messages ("reference", "bedrock"). */
  readonly name: string;
  /** Function calling: `tools`, `tool_choice`, `finish_reason: "tool_calls"`. */
  readonly tools: boolean;
  /**
   * The backend's own refusals of a parsed request (what its API cannot honour), thrown as ApiErrors naming the
   * field, before the request is admitted rather than as a failure halfway through the pipeline.
   */
  readonly check?: (request: ParsedCompletionRequest, body: Readonly<Record<string, unknown>>) => void;
}

export const REFERENCE_CAPABILITIES: BackendCapabilities = { name: 'reference', tools: false };

/** Accepted and not acted on: they describe the caller or the account, not the generation. */
export const INFORMATIONAL_FIELDS = [
  'user',
  'metadata',
  'store',
  'service_tier',
  'parallel_tool_calls',
  'prompt_cache_key',
  'prompt_cache_retention',
  'safety_identifier',
  'truncation',
  'include',
  'max_tool_calls',
  'reasoning',
  'reasoning_effort',
  'verbosity',
] as const;

const isSet = (v: unknown): boolean => v !== undefined && v !== null;
const isNonZero = (v: unknown): boolean => isSet(v) && v !== 0;
const isNonEmptyObject = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length > 0;
const isNonEmptyArray = (v: unknown): boolean => Array.isArray(v) && v.length > 0;

/** Refusals shared by every endpoint: sampling controls the backend would drop. */
function assertSampling(body: Record<string, unknown>, backend: BackendCapabilities): void {
  const name = backend.name;
  for (const field of ['presence_penalty', 'frequency_penalty'] as const) {
    if (isNonZero(body[field])) {
      throw unsupportedField(field, `the ${name} backend samples without penalties; send 0 or leave it out`);
    }
  }
  if (isNonEmptyObject(body.logit_bias)) {
    throw unsupportedField('logit_bias', `the ${name} backend cannot bias token logits; leave it out`);
  }
}

/** Tools, where the backend has none: `tool_choice: "none"` (or no tools at all) is honoured by not calling any. */
function assertTools(
  body: Record<string, unknown>,
  backend: BackendCapabilities,
  fields: { tools: string; toolChoice: string },
): void {
  if (backend.tools) return;
  const choice = body[fields.toolChoice];
  const why = `the ${backend.name} backend cannot call functions in this pipeline`;
  if (isSet(choice) && choice !== 'none' && choice !== 'auto') throw unsupportedField(fields.toolChoice, why);
  if (isNonEmptyArray(body[fields.tools]) && choice !== 'none') throw unsupportedField(fields.tools, why);
  if (isNonEmptyArray(body.functions)) throw unsupportedField('functions', why);
  if (isSet(body.function_call) && body.function_call !== 'none') throw unsupportedField('function_call', why);
}

/** Refusals of /v1/chat/completions. */
export function assertChatSupported(body: Record<string, unknown>, backend: BackendCapabilities): void {
  assertTools(body, backend, { tools: 'tools', toolChoice: 'tool_choice' });
  const format = body.response_format as { type?: unknown } | null | undefined;
  if (isSet(format) && !(typeof format === 'object' && format !== null && format.type === 'text')) {
    throw unsupportedField(
      'response_format',
      `the ${backend.name} backend cannot constrain output to JSON; only {"type": "text"} is honoured`,
    );
  }
  if (body.logprobs === true) throw unsupportedField('logprobs', `the ${backend.name} backend reports no logprobs`);
  if (isSet(body.top_logprobs)) {
    throw unsupportedField('top_logprobs', `the ${backend.name} backend reports no logprobs`);
  }
  if (isSet(body.audio) || (Array.isArray(body.modalities) && body.modalities.some((m) => m !== 'text'))) {
    throw unsupportedField(isSet(body.audio) ? 'audio' : 'modalities', 'this server produces text only');
  }
  if (isSet(body.prediction)) throw unsupportedField('prediction', 'this server does no predicted-output decoding');
  if (isSet(body.web_search_options)) throw unsupportedField('web_search_options', 'this server does no web search');
  assertSampling(body, backend);
}

/** Refusals of /v1/completions. */
export function assertCompletionSupported(body: Record<string, unknown>, backend: BackendCapabilities): void {
  if (isNonZero(body.logprobs)) throw unsupportedField('logprobs', `the ${backend.name} backend reports no logprobs`);
  if (body.echo === true) throw unsupportedField('echo', 'this server does not echo the prompt back');
  if (isSet(body.best_of) && body.best_of !== 1)
    throw unsupportedField('best_of', 'this server generates one candidate');
  if (isSet(body.suffix) && body.suffix !== '') throw unsupportedField('suffix', 'this server does no insertion');
  assertSampling(body, backend);
}

/** Refusals of /v1/responses. */
export function assertResponsesSupported(body: Record<string, unknown>, backend: BackendCapabilities): void {
  assertTools(body, backend, { tools: 'tools', toolChoice: 'tool_choice' });
  const text = body.text as { format?: { type?: unknown } | null } | null | undefined;
  const format = typeof text === 'object' && text !== null ? text.format : undefined;
  if (isSet(format) && !(typeof format === 'object' && format !== null && format.type === 'text')) {
    throw unsupportedField(
      'text.format',
      `the ${backend.name} backend cannot constrain output to JSON; only {"type": "text"} is honoured`,
    );
  }
  if (isSet(body.previous_response_id)) {
    throw unsupportedField(
      'previous_response_id',
      'this server keeps no conversation state; send the whole history in `input`',
    );
  }
  if (isSet(body.conversation)) {
    throw unsupportedField('conversation', 'this server keeps no conversation state; send the history in `input`');
  }
  if (body.background === true) throw unsupportedField('background', 'use GET /v1/requests/{id} to poll instead');
  if (isSet(body.prompt)) throw unsupportedField('prompt', 'this server has no stored prompt templates');
  if (isSet(body.top_logprobs)) {
    throw unsupportedField('top_logprobs', `the ${backend.name} backend reports no logprobs`);
  }
  assertSampling(body, backend);
}

/** Fields present in the body that this server accepts without acting on them, in the body's order. */
export function ignoredFields(body: Record<string, unknown>, known: ReadonlySet<string>): string[] {
  const ignored: string[] = [];
  for (const key of Object.keys(body)) {
    if (body[key] === null || body[key] === undefined) continue;
    if ((INFORMATIONAL_FIELDS as readonly string[]).includes(key) || !known.has(key)) ignored.push(key);
  }
  return ignored;
}
