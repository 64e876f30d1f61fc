/**
 * The Responses API's response object and its stream events, in the order the official client and the Vercel AI
 * SDK consume them: created, in_progress, output_item.added, content_part.added, output_text.delta…,
 * output_text.done, content_part.done, output_item.done, then completed (or incomplete, or failed).
 */
import type { ParsedCompletionRequest, ToolCall } from './request';
import type { ApiErrorBody } from './errors';

export type ResponseStatus = 'in_progress' | 'completed' | 'incomplete' | 'failed';

export interface ResponseUsageBody {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export interface ResponseState {
  readonly id: string;
  /** The output message item's id. */
  readonly messageId: string;
  readonly createdS: number;
  readonly request: ParsedCompletionRequest;
  readonly status: ResponseStatus;
  readonly text: string;
  readonly toolCalls?: readonly ToolCall[];
  /** A stream opened the message item before knowing whether text would come: it stays in the output. */
  readonly streamed?: boolean;
  /** 'max_output_tokens' when the output was cut at the limit. */
  readonly incompleteReason: string | null;
  readonly error: ApiErrorBody['error'] | null;
  readonly usage: { input: number; output: number } | null;
  readonly disagg?: unknown;
}

function outputText(text: string, status: 'in_progress' | 'completed') {
  return {
    type: 'message',
    id: '',
    status,
    role: 'assistant',
    content:
      status === 'completed' || text !== '' ? [{ type: 'output_text', text, annotations: [], logprobs: [] }] : [],
  };
}

function output(s: ResponseState): Record<string, unknown>[] {
  if (s.status === 'in_progress') return [];
  const items: Record<string, unknown>[] = [];
  if (s.streamed === true || s.text !== '' || (s.toolCalls ?? []).length === 0) {
    items.push({ ...outputText(s.text, 'completed'), id: s.messageId });
  }
  for (const call of s.toolCalls ?? []) items.push(functionCallItem(call, 'completed'));
  return items;
}

function functionCallItem(call: ToolCall, status: 'in_progress' | 'completed'): Record<string, unknown> {
  return {
    type: 'function_call',
    id: `fc_${call.id}`,
    call_id: call.id,
    name: call.name,
    arguments: status === 'completed' ? call.arguments : '',
    status,
  };
}

export function responseUsage(input: number, outputTokens: number): ResponseUsageBody {
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: input + outputTokens,
  };
}

/** The `response` object: the body of a non-streamed POST /v1/responses, and inside the stream's events. */
export function responseBody(s: ResponseState): Record<string, unknown> {
  const r = s.request;
  const instructions = r.conversation[0]?.role === 'developer' ? r.conversation[0].content : null;
  return {
    id: s.id,
    object: 'response',
    created_at: s.createdS,
    status: s.status,
    error: s.error,
    incomplete_details: s.incompleteReason === null ? null : { reason: s.incompleteReason },
    instructions,
    max_output_tokens: r.sampling.maxTokens,
    model: r.model,
    output: output(s),
    parallel_tool_calls: false,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: r.sampling.temperature,
    text: { format: { type: 'text' } },
    tool_choice: typeof r.toolChoice === 'string' ? r.toolChoice : { type: 'function', name: r.toolChoice.name },
    tools: r.tools.map((t) => ({
      type: 'function',
      name: t.name,
      description: t.description ?? null,
      parameters: t.parameters ?? null,
      strict: false,
    })),
    top_p: r.sampling.topP,
    truncation: 'disabled',
    usage: s.usage === null ? null : responseUsage(s.usage.input, s.usage.output),
    user: r.user,
    metadata: {},
    ...(s.disagg !== undefined ? { disagg: s.disagg } : {}),
  };
}

/** Numbers the events of one stream, as `sequence_number`. */
export class ResponseEvents {
  private sequence = 0;

  constructor(private readonly state: Pick<ResponseState, 'id' | 'messageId'>) {}

  private event(type: string, fields: Record<string, unknown>): { type: string; data: Record<string, unknown> } {
    return { type, data: { type, sequence_number: this.sequence++, ...fields } };
  }

  /** created, in_progress, and the opened output message with its empty text part. */
  opening(initial: ResponseState): { type: string; data: Record<string, unknown> }[] {
    const inProgress = responseBody({ ...initial, status: 'in_progress' });
    const ids = { item_id: this.state.messageId, output_index: 0, content_index: 0 };
    return [
      this.event('response.created', { response: inProgress }),
      this.event('response.in_progress', { response: inProgress }),
      this.event('response.output_item.added', {
        output_index: 0,
        item: { ...outputText('', 'in_progress'), id: this.state.messageId },
      }),
      this.event('response.content_part.added', {
        ...ids,
        part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
      }),
    ];
  }

  delta(text: string): { type: string; data: Record<string, unknown> } {
    return this.event('response.output_text.delta', {
      item_id: this.state.messageId,
      output_index: 0,
      content_index: 0,
      delta: text,
      logprobs: [],
    });
  }

  /** The text's end, the item's end, then the terminal event carrying the whole response. */
  closing(final: ResponseState): { type: string; data: Record<string, unknown> }[] {
    const ids = { item_id: this.state.messageId, output_index: 0, content_index: 0 };
    const part = { type: 'output_text', text: final.text, annotations: [], logprobs: [] };
    const terminal =
      final.status === 'completed'
        ? 'response.completed'
        : final.status === 'incomplete'
          ? 'response.incomplete'
          : 'response.failed';
    // Function calls follow the message, each its own output item with its arguments in one delta.
    const calls = (final.toolCalls ?? []).flatMap((call, i) => {
      const at = { item_id: `fc_${call.id}`, output_index: 1 + i };
      return [
        this.event('response.output_item.added', {
          output_index: at.output_index,
          item: functionCallItem(call, 'in_progress'),
        }),
        this.event('response.function_call_arguments.delta', { ...at, delta: call.arguments }),
        this.event('response.function_call_arguments.done', { ...at, arguments: call.arguments }),
        this.event('response.output_item.done', {
          output_index: at.output_index,
          item: functionCallItem(call, 'completed'),
        }),
      ];
    });
    return [
      this.event('response.output_text.done', { ...ids, text: final.text, logprobs: [] }),
      this.event('response.content_part.done', { ...ids, part }),
      this.event('response.output_item.done', {
        output_index: 0,
        item: { ...outputText(final.text, 'completed'), id: this.state.messageId },
      }),
      ...calls,
      this.event(terminal, { response: responseBody({ ...final, streamed: true }) }),
    ];
  }
}
