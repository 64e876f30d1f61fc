/**
 * Server-sent event framing of the completion streams, written the same way by every transport: an opening
 * chunk, one chunk per text piece, then the closing events. Chat and text completions end with `data: [DONE]`;
 * the Responses API sends named events (`event: response.output_text.delta`) and no [DONE].
 */
import { chatCompletionChunk, completionChunk, toolCallBodies, type FinishReason } from './completion-shapes';
import type { Endpoint, ToolCall } from './request';

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
} as const;

/** One server-sent event. JSON.stringify escapes CR and LF, so the payload is always a single line. */
export function sseData(obj: object | '[DONE]'): string {
  return obj === '[DONE]' ? 'data: [DONE]\n\n' : `data: ${JSON.stringify(obj)}\n\n`;
}

/** A named server-sent event (the Responses API's framing). */
export function sseEvent(type: string, data: object): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

export interface SseMeta {
  readonly id: string;
  readonly model: string;
  /** Unix seconds. */
  readonly createdS: number;
  readonly endpoint: Exclude<Endpoint, 'responses'>;
  readonly systemFingerprint: string;
  readonly promptTokens: number;
  /** stream_options.include_usage: `usage: null` on every chunk, and a usage chunk before [DONE]. */
  readonly includeUsage: boolean;
}

/** What every chunk of a stream carries: its ids, and `usage: null` when usage is asked for. */
function chunkBase(meta: SseMeta) {
  return {
    id: meta.id,
    model: meta.model,
    createdS: meta.createdS,
    systemFingerprint: meta.systemFingerprint,
    ...(meta.includeUsage ? { usage: null } : {}),
  };
}

function chunk(meta: SseMeta, text: string | null, finishReason: FinishReason | null, disagg?: unknown): object {
  const base = { ...chunkBase(meta), ...(disagg === undefined ? {} : { disagg }) };
  return meta.endpoint === 'chat'
    ? chatCompletionChunk({ ...base, delta: text === null ? {} : { content: text }, finishReason })
    : completionChunk({ ...base, text: text ?? '', finishReason });
}

/** Chat streams open with the assistant role, as OpenAI's do; completions have no opening event (''). */
export function sseOpening(meta: SseMeta): string {
  if (meta.endpoint !== 'chat') return '';
  return sseData(
    chatCompletionChunk({
      ...chunkBase(meta),
      delta: { role: 'assistant', content: '' },
      finishReason: null,
    }),
  );
}

export function ssePiece(meta: SseMeta, text: string): string {
  return sseData(chunk(meta, text, null));
}

/**
 * ssePiece for every piece of one stream, byte for byte, with the event around the text serialized once: only
 * the text changes from piece to piece, so each piece costs one JSON string instead of a chunk object.
 */
export function ssePieces(meta: SseMeta): (text: string) => string {
  const marker = '\u0000disagg piece\u0000';
  const quoted = JSON.stringify(marker);
  const frame = ssePiece(meta, marker);
  const at = frame.indexOf(quoted);
  // The stream's own fields holding the marker too (never in practice): serialize each piece whole.
  if (at < 0 || frame.includes(quoted, at + quoted.length)) return (text) => ssePiece(meta, text);
  const head = frame.slice(0, at);
  const tail = frame.slice(at + quoted.length);
  return (text) => head + JSON.stringify(text) + tail;
}

/**
 * The function calls a chat stream ends with, one chunk each: the first (and here only) delta of call `index`
 * carries its id, type, name and the whole arguments, as OpenAI's streams shape a call's opening delta.
 */
export function sseToolCalls(meta: SseMeta, calls: readonly ToolCall[]): string {
  if (meta.endpoint !== 'chat') return '';
  return toolCallBodies(calls)
    .map((body, index) =>
      sseData(
        chatCompletionChunk({
          ...chunkBase(meta),
          delta: { tool_calls: [{ index, ...body }] },
          finishReason: null,
        }),
      ),
    )
    .join('');
}

/** The finish chunk with `disagg`, the usage chunk when asked for, and `data: [DONE]`. */
export function sseFinish(
  meta: SseMeta,
  finishReason: FinishReason,
  completionTokens: number,
  disagg: unknown,
): string {
  let out = sseData(chunk(meta, null, finishReason, disagg));
  if (meta.includeUsage) {
    const base = { id: meta.id, model: meta.model, createdS: meta.createdS, systemFingerprint: meta.systemFingerprint };
    const usage = {
      prompt_tokens: meta.promptTokens,
      completion_tokens: completionTokens,
      total_tokens: meta.promptTokens + completionTokens,
    };
    out +=
      meta.endpoint === 'chat'
        ? sseData(chatCompletionChunk({ ...base, delta: {}, finishReason: null, usage }))
        : sseData(completionChunk({ ...base, text: '', finishReason: null, usage }));
  }
  return out + sseData('[DONE]');
}

/** Headers are gone when a stream fails: the failure goes in-band, in the API's error format, then [DONE]. */
export function sseFailure(errorBody: object): string {
  return sseData(errorBody) + sseData('[DONE]');
}
