/**
 * The bodies and stream chunks of chat and text completions, exactly as the official OpenAI clients parse them,
 * plus the `disagg` object.
 */
import type { ToolCall } from './request';

export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface CompletionResult {
  id: string;
  model: string;
  /** Unix seconds. */
  createdS: number;
  text: string;
  /** Function calls the model made, where the backend calls tools. */
  toolCalls?: readonly ToolCall[];
  finishReason: FinishReason | null;
  promptTokens: number;
  completionTokens: number;
  /** Identifies the backend and build that produced the output (OpenAI's `system_fingerprint`). */
  systemFingerprint: string;
  /** Engine metadata, attached verbatim as the `disagg` field. */
  disagg: unknown;
}

export interface UsageBody {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ToolCallBody {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatCompletionBody {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  system_fingerprint: string;
  choices: {
    index: 0;
    message: { role: 'assistant'; content: string | null; refusal: null; tool_calls?: ToolCallBody[] };
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
  system_fingerprint: string;
  choices: { index: 0; text: string; logprobs: null; finish_reason: FinishReason | null }[];
  usage: UsageBody;
  disagg: unknown;
}

export interface ChatDelta {
  role?: 'assistant';
  content?: string;
  tool_calls?: (ToolCallBody & { index: number })[];
}

export interface ChatCompletionChunkBody {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  system_fingerprint: string;
  choices: { index: 0; delta: ChatDelta; logprobs: null; finish_reason: FinishReason | null }[];
  usage?: UsageBody | null;
  disagg?: unknown;
}

/** A text completion chunk has the body's fields; usage and `disagg` only on the chunks that carry them. */
export type TextCompletionChunkBody = Omit<TextCompletionBody, 'usage' | 'disagg'> & {
  usage?: UsageBody | null;
  disagg?: unknown;
};

export function usageBody(promptTokens: number, completionTokens: number): UsageBody {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

export function toolCallBodies(calls: readonly ToolCall[]): ToolCallBody[] {
  return calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
}

export function chatCompletionResponse(r: CompletionResult): ChatCompletionBody {
  const calls = r.toolCalls ?? [];
  return {
    id: r.id,
    object: 'chat.completion',
    created: r.createdS,
    model: r.model,
    system_fingerprint: r.systemFingerprint,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          // OpenAI sends null content on a turn that only called tools.
          content: calls.length > 0 && r.text === '' ? null : r.text,
          refusal: null,
          ...(calls.length > 0 ? { tool_calls: toolCallBodies(calls) } : {}),
        },
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
    system_fingerprint: r.systemFingerprint,
    choices: [{ index: 0, text: r.text, logprobs: null, finish_reason: r.finishReason }],
    usage: usageBody(r.promptTokens, r.completionTokens),
    disagg: r.disagg,
  };
}

export interface ChunkCommon {
  id: string;
  model: string;
  createdS: number;
  systemFingerprint: string;
  finishReason: FinishReason | null;
  /**
   * Omitted: no usage field. null: `usage: null`, as OpenAI sends on every chunk when include_usage is on.
   * A value: this is the final usage chunk, which carries `choices: []` (delta/text/finishReason unused).
   */
  usage?: UsageBody | null;
  disagg?: unknown;
}

export function chatCompletionChunk(args: ChunkCommon & { delta: ChatDelta }): ChatCompletionChunkBody {
  const chunk: ChatCompletionChunkBody = {
    id: args.id,
    object: 'chat.completion.chunk',
    created: args.createdS,
    model: args.model,
    system_fingerprint: args.systemFingerprint,
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
    system_fingerprint: args.systemFingerprint,
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
