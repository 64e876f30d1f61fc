/**
 * Request validation for POST /v1/responses (OpenAI's Responses API, which the Vercel AI SDK's default provider
 * calls): text input as a string or as message items, instructions, the function-call history of an agent, and
 * the sampling fields, parsed into the same request the other endpoints produce.
 */
import * as z from 'zod';
import { assertResponsesSupported, ignoredFields } from './capabilities';
import {
  finish,
  longString,
  maxTokensSchema,
  modelSchema,
  MSG,
  requireServed,
  samplingFields,
  toolChoiceSchema,
  toolNameSchema,
  type ParseContext,
} from './chat-request';
import { badRequest } from './errors';
import { assertPromptChars, MAX_CONTENT_CHARS, MAX_MESSAGES } from './limits';
import { conversationChars, type ConversationMessage, type ParsedCompletionRequest, type ToolChoice } from './request';
import { guard, requireObject, schemaCache, validate } from './validation';

const INPUT_ROLES = ['system', 'developer', 'user', 'assistant'] as const;

const RMSG = {
  input: `must be a string or a non-empty array of at most ${MAX_MESSAGES} input items`,
  item: 'must be a message {role, content}, a function_call or a function_call_output item',
  role: `must be one of ${INPUT_ROLES.map((r) => `'${r}'`).join(', ')}`,
  content: "must be a string or an array of text parts ({type: 'input_text', text})",
  part: "must be a text part ({type: 'input_text' | 'output_text', text})",
  partType: "must be 'input_text' or 'output_text' (only text input is supported)",
  instructions: `must be a string of at most ${MAX_CONTENT_CHARS} characters`,
  tools: "must be an array of {type: 'function', name, description?, parameters?}",
  tool: "must be a function tool {type: 'function', name, description?, parameters?}",
  callId: 'must be a non-empty string',
} as const;

const textPart = z.object(
  {
    type: z.enum(['input_text', 'output_text'], { error: RMSG.partType }),
    text: longString,
  },
  { error: RMSG.part },
);

const messageItem = z.object({
  type: z.literal('message').nullish(),
  role: z.enum(INPUT_ROLES, { error: RMSG.role }),
  content: z.union([longString, z.array(textPart, { error: RMSG.content })], { error: RMSG.content }),
});

const functionCallItem = z.object({
  type: z.literal('function_call'),
  call_id: z.string({ error: RMSG.callId }).min(1, { error: RMSG.callId }),
  name: toolNameSchema,
  arguments: z.string({ error: MSG.toolArguments }).max(MAX_CONTENT_CHARS),
});

const functionOutputItem = z.object({
  type: z.literal('function_call_output'),
  call_id: z.string({ error: RMSG.callId }).min(1, { error: RMSG.callId }),
  output: z.union([longString, z.array(textPart)], { error: RMSG.content }),
});

const inputItem = z.union([functionCallItem, functionOutputItem, messageItem], { error: RMSG.item });

const responsesTools = z
  .array(
    z.object(
      {
        type: z.literal('function', { error: "must be 'function' (only function tools are supported)" }),
        name: toolNameSchema,
        description: z.string().max(MAX_CONTENT_CHARS).nullish(),
        parameters: z.record(z.string(), z.unknown(), { error: MSG.toolParameters }).nullish(),
        strict: z.boolean().nullish(),
      },
      { error: RMSG.tool },
    ),
    { error: RMSG.tools },
  )
  .max(128, { error: RMSG.tools });

const responsesToolChoice = z.union([
  toolChoiceSchema,
  z.object({ type: z.literal('function'), name: toolNameSchema }, { error: MSG.toolChoice }),
]);

const responsesSchema = schemaCache((maxOutputTokens: number) =>
  z.object({
    model: modelSchema,
    input: z.union(
      [
        longString,
        z
          .array(inputItem, { error: RMSG.input })
          .min(1, { error: RMSG.input })
          .max(MAX_MESSAGES, { error: RMSG.input }),
      ],
      { error: RMSG.input },
    ),
    instructions: z.string({ error: RMSG.instructions }).max(MAX_CONTENT_CHARS, { error: RMSG.instructions }).nullish(),
    ...samplingFields,
    max_output_tokens: maxTokensSchema(maxOutputTokens).nullish(),
    tools: responsesTools.nullish(),
    tool_choice: responsesToolChoice.nullish(),
  }),
);

const RESPONSES_FIELDS = new Set([...Object.keys(responsesSchema(1).shape), 'text', 'previous_response_id']);

type ParsedItem = z.infer<typeof inputItem>;

export function parseResponsesRequest(body: unknown, ctx: ParseContext): ParsedCompletionRequest {
  return guard(() => {
    const obj = requireObject(body);
    const r = validate(responsesSchema(ctx.limits.maxOutputTokens), obj);
    requireServed(r.model, ctx.servedModels);
    assertResponsesSupported(obj, ctx.backend);
    const conversation: ConversationMessage[] = [];
    // Instructions come first, as the developer's message (OpenAI inserts them as a system/developer turn).
    if (r.instructions) conversation.push({ role: 'developer', content: r.instructions });
    if (typeof r.input === 'string') conversation.push({ role: 'user', content: r.input });
    else appendItems(conversation, r.input);
    assertPromptChars(conversationChars(conversation), ctx.limits, 'input');
    const tools = (r.tools ?? []).map((t) => ({
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      ...(t.parameters ? { parameters: t.parameters } : {}),
    }));
    return finish('responses', r, conversation, null, r.max_output_tokens, ctx, {
      tools,
      toolChoice: responsesChoice(r.tool_choice),
      ignored: ignoredFields(obj, RESPONSES_FIELDS),
    });
  });
}

/** Items to turns: consecutive function calls join one assistant turn; each output is a tool turn. */
function appendItems(conversation: ConversationMessage[], items: readonly ParsedItem[]): void {
  const callNames = new Map<string, string>();
  items.forEach((item, i) => {
    if (item.type === 'function_call') {
      callNames.set(item.call_id, item.name);
      const call = { id: item.call_id, name: item.name, arguments: item.arguments };
      const last = conversation.at(-1);
      if (last?.role === 'assistant' && last.toolCalls !== undefined) {
        conversation[conversation.length - 1] = { ...last, toolCalls: [...last.toolCalls, call] };
      } else conversation.push({ role: 'assistant', content: '', toolCalls: [call] });
      return;
    }
    if (item.type === 'function_call_output') {
      const name = callNames.get(item.call_id);
      conversation.push({
        role: 'tool',
        content: partsText(item.output, `input[${i}].output`),
        toolCallId: item.call_id,
        ...(name !== undefined ? { name } : {}),
      });
      return;
    }
    conversation.push({ role: item.role, content: partsText(item.content, `input[${i}].content`) });
  });
}

function partsText(content: string | readonly { text: string }[], field: string): string {
  if (typeof content === 'string') return content;
  const text = content.map((p) => p.text).join('\n');
  if (text.length > MAX_CONTENT_CHARS) {
    throw badRequest(`${field} ${MSG.longString}, got text parts totalling ${text.length} characters`, field);
  }
  return text;
}

function responsesChoice(choice: z.infer<typeof responsesToolChoice> | null | undefined): ToolChoice {
  if (choice === null || choice === undefined) return 'auto';
  if (typeof choice === 'string') return choice;
  return 'function' in choice ? { name: choice.function.name } : { name: choice.name };
}
