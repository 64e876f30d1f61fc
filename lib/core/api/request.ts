/**
 * A completion request as the API hands it on, whichever endpoint it came through (chat completions, text
 * completions, responses): the conversation the model sees, sampling, streaming and the `disagg` extension.
 */
import type { ChatMessage, SamplingParams } from '../ports';

export type Endpoint = 'chat' | 'completion' | 'responses';

export type RoutingModeRequest = 'auto' | 'disaggregated' | 'colocated';

/** A function call an assistant turn made (OpenAI `tool_calls[]`, responses `function_call` items). */
export interface ToolCall {
  readonly id: string;
  readonly name: string;
  /** The arguments as the model wrote them: a JSON text. */
  readonly arguments: string;
}

/** A function the model may call (OpenAI `tools[]` of type "function"). */
export interface ToolDefinition {
  readonly name: string;
  readonly description?: string;
  /** JSON Schema of the arguments. */
  readonly parameters?: Record<string, unknown>;
}

export type ToolChoice = 'auto' | 'none' | 'required' | { readonly name: string };

/**
 * One turn of the conversation, as a chat template renders it: OpenAI's roles (developer included), text
 * content, and the tool-call history agents send.
 */
export interface ConversationMessage {
  readonly role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  /** Text content; '' for an assistant turn that only called tools. */
  readonly content: string;
  readonly toolCalls?: readonly ToolCall[];
  /** On a tool result: the call it answers. */
  readonly toolCallId?: string;
  /** On a tool result: the function's name, where the client gave it or the history names it. */
  readonly name?: string;
}

export interface ParsedCompletionRequest {
  readonly kind: Endpoint;
  readonly model: string;
  /** The turns, as templates and hosted backends see them. For 'completion', the prompt as one user turn. */
  readonly conversation: readonly ConversationMessage[];
  /** The raw prompt for 'completion'; null otherwise. */
  readonly prompt: string | null;
  readonly tools: readonly ToolDefinition[];
  readonly toolChoice: ToolChoice;
  readonly sampling: SamplingParams;
  readonly stream: boolean;
  /** stream_options.include_usage, only meaningful (and only true) when streaming. */
  readonly includeUsageInStream: boolean;
  /** From the extension field `disagg: {"mode": ...}`. */
  readonly mode: RoutingModeRequest;
  readonly user: string | null;
  /** Fields accepted but not acted on (`user`, `metadata`, `store`, …), for a debug log line. */
  readonly ignoredFields: readonly string[];
}

/**
 * The conversation as the pipeline's messages: developer instructions are system text (the served templates know
 * only system), and a turn that only called tools carries its calls as text, so a hosted model still sees them.
 */
export function pipelineMessages(conversation: readonly ConversationMessage[]): ChatMessage[] {
  return conversation.map((m) => {
    const role = m.role === 'developer' ? 'system' : m.role;
    if (m.toolCalls === undefined || m.toolCalls.length === 0) return { role, content: m.content };
    const calls = m.toolCalls.map((c) => JSON.stringify({ name: c.name, arguments: c.arguments })).join('\n');
    return { role, content: m.content === '' ? calls : `${m.content}\n${calls}` };
  });
}

/** Characters of prompt text a conversation holds (the character limit counts these, before tokenizing). */
export function conversationChars(conversation: readonly ConversationMessage[]): number {
  let chars = 0;
  for (const m of conversation) {
    chars += m.content.length;
    for (const call of m.toolCalls ?? []) chars += call.name.length + call.arguments.length;
  }
  return chars;
}
