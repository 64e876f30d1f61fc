/**
 * A completion request as the API hands it on, whichever endpoint it came through (chat completions, text
 * completions, responses): the conversation the model sees, sampling, streaming and the `disagg` extension.
 */
import type { ChatMessage, SamplingParams, ToolOffer } from '../ports';

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
 * The conversation as chat-template text: developer instructions are system text (the served templates know
 * only system), and a turn that only called tools carries its calls as text.
 */
export function pipelineMessages(conversation: readonly ConversationMessage[]): ChatMessage[] {
  return conversation.map((m) => {
    const role = m.role === 'developer' ? 'system' : m.role;
    if (m.toolCalls === undefined || m.toolCalls.length === 0) return { role, content: m.content };
    const calls = m.toolCalls.map((c) => JSON.stringify({ name: c.name, arguments: c.arguments })).join('\n');
    return { role, content: m.content === '' ? calls : `${m.content}\n${calls}` };
  });
}

/**
 * The conversation as the pipeline carries it to the backend: developer instructions are system text, and tool
 * calls and the results answering them keep their structure, for backends that call tools (Converse's toolUse
 * and toolResult blocks).
 */
export function backendMessages(conversation: readonly ConversationMessage[]): ChatMessage[] {
  return conversation.map((m) => ({
    role: m.role === 'developer' ? 'system' : m.role,
    content: m.content,
    ...(m.toolCalls !== undefined && m.toolCalls.length > 0
      ? { toolCalls: m.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })) }
      : {}),
    ...(m.role === 'tool' && m.toolCallId !== undefined ? { toolCallId: m.toolCallId } : {}),
  }));
}

/** The tools a request offers and how the model may use them; undefined when it offers none and says nothing. */
export function toolOffer(request: ParsedCompletionRequest): ToolOffer | undefined {
  if (request.tools.length === 0 && request.toolChoice !== 'none') return undefined;
  return {
    tools: request.tools.map((t) => ({
      name: t.name,
      ...(t.description !== undefined ? { description: t.description } : {}),
      ...(t.parameters !== undefined ? { parameters: t.parameters } : {}),
    })),
    choice: request.toolChoice,
  };
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
