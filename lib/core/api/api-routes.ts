/**
 * The API's routes and the transport-free parts of answering them, shared by the embedded HTTP
 * server and the API Lambda: route matching, content-type and body parsing, the request view and
 * the OpenAI-style errors a request's outcome maps to.
 */
import type { AdmissionDecision } from '../engine/admission';
import {
  ApiError,
  parseChatCompletionRequest,
  parseCompletionRequest,
  parseJsonBody,
  unsupportedMediaType,
  type ApiLimits,
  type CompletionResult,
  type ParsedCompletionRequest,
} from './openai';
import { isTerminal, type RequestRecord } from '../engine/record';
import { disaggSummary } from './summary';

export { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_TOKENS } from './api-defaults';

export type CompletionEndpoint = 'chat' | 'completion';

export type ApiRoute =
  | { readonly kind: 'healthz' }
  | { readonly kind: 'models' }
  | { readonly kind: 'completions'; readonly endpoint: CompletionEndpoint }
  | { readonly kind: 'get-request'; readonly id: string }
  | { readonly kind: 'cancel-request'; readonly id: string }
  /** `allow` is set on a 405: the methods the route supports, for the Allow header. */
  | { readonly kind: 'error'; readonly error: ApiError; readonly allow?: string };

/** A URL path without its trailing slashes ('/' stays '/'). */
export function normalizePath(pathname: string): string {
  return pathname.replace(/\/+$/, '') || '/';
}

/** Routes under /v1/ need the API key (where there is one); /healthz and unknown paths answer without it. */
export function requiresAuth(path: string): boolean {
  return path.startsWith('/v1/');
}

export function matchRoute(method: string, path: string): ApiRoute {
  if (path === '/healthz') return method === 'GET' ? { kind: 'healthz' } : wrongMethod(method, path, 'GET');
  if (!path.startsWith('/v1/')) return { kind: 'error', error: routeNotFound(method, path) };
  if (path === '/v1/models') return method === 'GET' ? { kind: 'models' } : wrongMethod(method, path, 'GET');
  if (path === '/v1/chat/completions' || path === '/v1/completions') {
    if (method !== 'POST') return wrongMethod(method, path, 'POST');
    return { kind: 'completions', endpoint: path === '/v1/chat/completions' ? 'chat' : 'completion' };
  }
  const match = /^\/v1\/requests\/([A-Za-z0-9_-]{1,128})$/.exec(path);
  if (match) {
    const id = match[1]!;
    if (method === 'GET') return { kind: 'get-request', id };
    if (method === 'DELETE') return { kind: 'cancel-request', id };
    return wrongMethod(method, path, 'GET, DELETE');
  }
  return { kind: 'error', error: routeNotFound(method, path) };
}

/** A known route with the wrong method is a 405 naming the allowed ones, not a 404 (the route exists). */
function wrongMethod(method: string, path: string, allow: string): ApiRoute {
  return { kind: 'error', error: methodNotAllowed(method, path, allow), allow };
}

/** The media type of a Content-Type header, lower case, without parameters ('' when absent). */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Completions take JSON only; the error names what was sent. */
export function jsonContentTypeError(header: string | undefined): ApiError | null {
  const contentType = mediaType(header);
  return contentType === 'application/json' ? null : unsupportedMediaType(contentType || '(none)');
}

/** Parses and validates a completion request body for its endpoint (JSON, shape, served model). */
export function parseCompletionBody(
  endpoint: CompletionEndpoint,
  bodyText: string,
  limits: ApiLimits,
  servedModels: readonly string[],
): ParsedCompletionRequest {
  const body = parseJsonBody(bodyText);
  return endpoint === 'chat'
    ? parseChatCompletionRequest(body, limits, servedModels)
    : parseCompletionRequest(body, limits, servedModels);
}

/** The request field a too-long prompt is reported against. */
export function promptParam(endpoint: CompletionEndpoint): 'messages' | 'prompt' {
  return endpoint === 'chat' ? 'messages' : 'prompt';
}

/** OpenAI-style ids: chatcmpl-… for chat, cmpl-… for completions. */
export function completionId(endpoint: CompletionEndpoint, uuid: string): string {
  return `${endpoint === 'chat' ? 'chatcmpl' : 'cmpl'}-${uuid}`;
}

export function modelList(modelId: string, createdS: number): Record<string, unknown> {
  return { object: 'list', data: [{ id: modelId, object: 'model', created: createdS, owned_by: 'disagg' }] };
}

export function completionResult(
  record: RequestRecord,
  parsed: ParsedCompletionRequest,
  id: string,
  createdS: number,
): CompletionResult {
  return {
    id,
    model: parsed.model,
    createdS,
    text: record.pieces.join(''),
    finishReason: record.finishReason,
    promptTokens: record.promptTokens,
    completionTokens: record.completionTokens,
    disagg: disaggSummary(record),
  };
}

/** GET/DELETE /v1/requests/{id}: the record's state, usage and `disagg` summary. */
export function requestView(record: RequestRecord): Record<string, unknown> {
  return {
    id: record.id,
    object: 'disagg.request',
    model: record.model,
    created: Math.floor(record.createdAtMs / 1000),
    state: record.state,
    done: isTerminal(record.state),
    finish_reason: record.finishReason,
    // The completion's text so far, whole once done: where a client told 202 reads its answer.
    text: record.pieces.join(''),
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
  const status = error.code === 'timeout' ? 504 : 500;
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

export function requestNotFound(id: string): ApiError {
  return new ApiError(
    404,
    `no request with id ${id} (records expire after the result TTL)`,
    'not_found_error',
    'id',
    'request_not_found',
  );
}

export function routeNotFound(method: string, path: string): ApiError {
  return new ApiError(404, `no route for ${method} ${path}`, 'not_found_error', null, 'route_not_found');
}

export function methodNotAllowed(method: string, path: string, allowed: string): ApiError {
  return new ApiError(
    405,
    `${method} is not allowed on ${path}; use ${allowed}`,
    'invalid_request_error',
    null,
    'method_not_allowed',
  );
}

/** What an unexpected error answers with: no internals leak to the client. */
export function internalError(): ApiError {
  return new ApiError(500, 'internal error; see the server log', 'server_error', null, 'internal_error');
}
