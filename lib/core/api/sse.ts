/**
 * The server-sent event stream of a completion, shared by the embedded HTTP server (which writes
 * pieces as tokens arrive) and the API Lambda (which writes them as the polled record grows, or
 * all at once when buffered): an opening chunk, one chunk per piece, then the closing events.
 */
import { failedRequest, type CompletionEndpoint } from './api-routes';
import { chatCompletionChunk, completionChunk, sseData, type FinishReason } from './openai';
import type { RequestRecord } from '../engine/record';
import { disaggSummary } from './summary';

export interface SseMeta {
  readonly id: string;
  readonly model: string;
  /** Unix seconds. */
  readonly createdS: number;
  readonly endpoint: CompletionEndpoint;
  readonly promptTokens: number;
  /** stream_options.include_usage: a usage chunk before [DONE]. */
  readonly includeUsage: boolean;
}

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
} as const;

function chunk(meta: SseMeta, text: string | null, finishReason: FinishReason | null, disagg?: unknown): object {
  const base = { id: meta.id, model: meta.model, createdS: meta.createdS };
  const extra = disagg === undefined ? {} : { disagg };
  return meta.endpoint === 'chat'
    ? chatCompletionChunk({ ...base, delta: text === null ? {} : { content: text }, finishReason, ...extra })
    : completionChunk({ ...base, text: text ?? '', finishReason, ...extra });
}

/** Chat streams open with the assistant role, as OpenAI's do; completions have no opening event (''). */
export function sseOpening(meta: SseMeta): string {
  if (meta.endpoint !== 'chat') return '';
  const base = { id: meta.id, model: meta.model, createdS: meta.createdS };
  return sseData(chatCompletionChunk({ ...base, delta: { role: 'assistant', content: '' }, finishReason: null }));
}

export function ssePiece(meta: SseMeta, text: string): string {
  return sseData(chunk(meta, text, null));
}

/**
 * After the last piece: the finish chunk with `disagg` (or, since headers are gone, the failure
 * in the API's error format), the usage chunk when asked for, and `data: [DONE]`.
 */
export function sseClosing(meta: SseMeta, record: RequestRecord): string {
  let out =
    record.state === 'completed'
      ? sseData(chunk(meta, null, record.finishReason ?? 'stop', disaggSummary(record)))
      : sseData(failedRequest(record).toBody());
  if (meta.includeUsage) {
    const base = { id: meta.id, model: meta.model, createdS: meta.createdS };
    const usage = {
      prompt_tokens: meta.promptTokens,
      completion_tokens: record.completionTokens,
      total_tokens: meta.promptTokens + record.completionTokens,
    };
    const usageChunk =
      meta.endpoint === 'chat'
        ? { ...chatCompletionChunk({ ...base, delta: {}, finishReason: null, usage }), choices: [] }
        : { ...completionChunk({ ...base, text: '', finishReason: null, usage }), choices: [] };
    out += sseData(usageChunk);
  }
  return out + sseData('[DONE]');
}

/** The whole stream of a finished request, from its record. */
export function sseBody(meta: SseMeta, record: RequestRecord): string {
  return sseOpening(meta) + record.pieces.map((piece) => ssePiece(meta, piece)).join('') + sseClosing(meta, record);
}
