/**
 * What a request's record answers with: the completion it produced, the request view of GET and DELETE
 * /v1/requests/{id}, and the error a request that did not complete maps to.
 */
import type { AdmissionDecision } from '../engine/admission';
import { isTerminal, type RequestRecord } from '../engine/record';
import { ApiError } from './errors';
import type { CompletionResult } from './completion-shapes';
import type { ParsedCompletionRequest } from './request';
import { disaggSummary } from './summary';

export function completionResult(
  record: RequestRecord,
  parsed: ParsedCompletionRequest,
  id: string,
  createdS: number,
  systemFingerprint: string,
): CompletionResult {
  return {
    id,
    model: parsed.model,
    createdS,
    text: record.pieces.join(''),
    ...(record.toolCalls !== undefined && record.toolCalls.length > 0 ? { toolCalls: record.toolCalls } : {}),
    finishReason: record.finishReason,
    promptTokens: record.promptTokens,
    completionTokens: record.completionTokens,
    systemFingerprint,
    disagg: disaggSummary(record),
  };
}

/** GET/DELETE /v1/requests/{id}: the record's state, usage, output so far and `disagg` summary. */
export function requestView(record: RequestRecord): Record<string, unknown> {
  return {
    id: record.id,
    object: 'disagg.request',
    model: record.model,
    created: Math.floor(record.createdAtMs / 1000),
    state: record.state,
    done: isTerminal(record.state),
    finish_reason: record.finishReason,
    // The text so far, so a client given a poll URL (a long request in Lambda) can read its completion.
    output_text: record.pieces.join(''),
    usage: {
      prompt_tokens: record.promptTokens,
      completion_tokens: record.completionTokens,
      total_tokens: record.promptTokens + record.completionTokens,
    },
    disagg: disaggSummary(record),
  };
}

/** The error a request that did not complete answers with. */
export function failedRequest(record: RequestRecord): ApiError {
  const error = record.error ?? { code: record.state, message: `request ended ${record.state}` };
  if (record.state === 'cancelled')
    return new ApiError(409, `request ${record.id} was cancelled`, 'invalid_request_error', null, 'cancelled');
  // A server shutting down is unavailable, not broken: a 503 the client retries (elsewhere).
  const status = error.code === 'timeout' ? 504 : error.code === 'shutting_down' ? 503 : 500;
  return new ApiError(status, `request ${record.id} failed: ${error.message}`, 'server_error', null, error.code);
}

export function overloaded(decision: Extract<AdmissionDecision, { admitted: false }>): ApiError {
  return new ApiError(
    429,
    `server is at capacity: ${decision.reason}; retry after ${decision.retryAfterSeconds} s`,
    'rate_limit_error',
    null,
    'overloaded',
    decision.retryAfterSeconds,
  );
}

/** A request that outlived the time this transport can wait: the client reads the result from the poll URL. */
export function stillRunningError(id: string): ApiError {
  return new ApiError(
    504,
    `request ${id} is still running; read its result from GET /v1/requests/${id}`,
    'server_error',
    null,
    'still_running',
  );
}
