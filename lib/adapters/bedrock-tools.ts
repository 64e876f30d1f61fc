/**
 * Function calling through Bedrock's Converse API: OpenAI tools become `toolConfig`, assistant tool calls become
 * `toolUse` blocks and tool turns `toolResult` blocks, and a `toolUse` the model emits comes back as a function call
 * (finish reason `tool_calls`). What Converse cannot honour is refused by field, in the API's 400 format.
 */
import type {
  ContentBlock,
  Message,
  SystemContentBlock,
  Tool,
  ToolConfiguration,
} from '@aws-sdk/client-bedrock-runtime';
import type { BackendCapabilities } from '../core/api/capabilities';
import { unsupportedField } from '../core/api/errors';
import { backendMessages, toolOffer, type ParsedCompletionRequest } from '../core/api/request';
import type { ChatMessage, FunctionCall, ToolOffer } from '../core/ports';

/**
 * What the Bedrock backend honours: function calling through Converse's tool use. Its check runs the request
 * through the same mapping the decode session will, so whatever Converse cannot take is a 400 naming the field
 * before the request is admitted, not a failed request after prefill.
 */
export const BEDROCK_CAPABILITIES: BackendCapabilities = {
  name: 'bedrock',
  tools: true,
  check: (request, body) => assertConverseCanHonour(request, body),
};

export function assertConverseCanHonour(
  request: ParsedCompletionRequest,
  body: Readonly<Record<string, unknown>>,
): void {
  const messages = backendMessages(request.conversation);
  toConverseToolConfig(toolOffer(request), messages);
  const turns = toConverseMessages(messages).messages;
  const param = request.kind === 'responses' ? 'input' : request.kind === 'chat' ? 'messages' : 'prompt';
  if (turns.length === 0) throw unsupportedField(param, 'Converse needs at least one non-empty user turn');
  if (turns[0]!.role !== 'user') {
    throw unsupportedField(param, 'Converse needs the conversation (after system text) to start with a user turn');
  }
  if (body.parallel_tool_calls === false && request.tools.length > 0) {
    throw unsupportedField(
      'parallel_tool_calls',
      'Converse cannot limit the model to one function call per turn; leave it out or send true',
    );
  }
}

/** Converse's rule for tool names. */
const CONVERSE_TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** The tool configuration for a Converse request; undefined when no tools are offered. */
export function toConverseToolConfig(
  offer: ToolOffer | undefined,
  messages: readonly ChatMessage[],
): ToolConfiguration | undefined {
  const history = messages.some(
    (m) => (m.toolCalls?.length ?? 0) > 0 || (m.role === 'tool' && m.toolCallId !== undefined),
  );
  if (offer?.choice === 'none') {
    // Converse has no "none": leaving the tools out works only when the history holds no tool calls.
    if (history) {
      throw unsupportedField(
        'tool_choice',
        'Converse cannot forbid tool calls in a conversation that already has them',
      );
    }
    return undefined;
  }
  if (offer === undefined || offer.tools.length === 0) {
    if (history) {
      throw unsupportedField(
        'tools',
        'Converse needs the tool definitions to read a history with tool calls; send them',
      );
    }
    return undefined;
  }
  const tools: Tool[] = offer.tools.map((t, i) => {
    if (!CONVERSE_TOOL_NAME.test(t.name)) {
      throw unsupportedField(
        `tools[${i}].function.name`,
        `Converse takes names of 1 to 64 letters, digits, '_' or '-', got ${JSON.stringify(t.name.slice(0, 80))}`,
      );
    }
    return {
      toolSpec: {
        name: t.name,
        ...(t.description ? { description: t.description } : {}),
        inputSchema: { json: (t.parameters ?? { type: 'object', properties: {} }) as never },
      },
    };
  });
  const choice = offer.choice;
  return {
    tools,
    ...(choice === 'required' ? { toolChoice: { any: {} } } : {}),
    ...(typeof choice === 'object' ? { toolChoice: { tool: { name: choice.name } } } : {}),
  };
}

/**
 * Chat messages in Converse form: system text goes to `system`; the rest alternate user/assistant, which Converse
 * requires, so consecutive same-role messages merge into one with several blocks. Tool calls are `toolUse` blocks
 * of the assistant turn, tool results `toolResult` blocks of a user turn.
 */
export function toConverseMessages(messages: readonly ChatMessage[]): {
  system: SystemContentBlock[];
  messages: Message[];
} {
  const system: SystemContentBlock[] = [];
  const turns: { role: 'user' | 'assistant'; content: ContentBlock[] }[] = [];
  const push = (role: 'user' | 'assistant', block: ContentBlock): void => {
    const last = turns.at(-1);
    if (last !== undefined && last.role === role) last.content.push(block);
    else turns.push({ role, content: [block] });
  };
  for (const m of messages) {
    if (m.role === 'system') {
      // Bedrock rejects blank text blocks.
      if (m.content.trim() !== '') system.push({ text: m.content });
      continue;
    }
    if (m.role === 'tool' && m.toolCallId !== undefined) {
      push('user', {
        toolResult: { toolUseId: m.toolCallId, content: [{ text: m.content === '' ? '(empty)' : m.content }] },
      });
      continue;
    }
    const role = m.role === 'assistant' ? 'assistant' : 'user';
    if (m.content.trim() !== '') push(role, { text: m.content });
    for (const call of m.toolCalls ?? [])
      push('assistant', { toolUse: { toolUseId: call.id, name: call.name, input: toolInput(call) } });
  }
  return { system, messages: turns };
}

/** Converse takes a call's input as a JSON object, where OpenAI sends the arguments as JSON text. */
function toolInput(call: FunctionCall): never {
  try {
    const value: unknown = JSON.parse(call.arguments === '' ? '{}' : call.arguments);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as never;
  } catch {
    // Falls through to the refusal below.
  }
  throw unsupportedField('messages', `the arguments of tool call ${call.id} must be a JSON object for Converse`);
}
