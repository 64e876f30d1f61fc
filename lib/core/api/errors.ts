/**
 * The API's errors in OpenAI's format, `{"error": {"message", "type", "param", "code"}}`, with everything the
 * HTTP layer needs to answer them: status, and Retry-After or Allow where they apply.
 */
import { groupDigits } from './describe';

export type ApiErrorType =
  'invalid_request_error' | 'not_found_error' | 'rate_limit_error' | 'authentication_error' | 'server_error';

export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** An error with everything the HTTP layer needs to answer in OpenAI's error format. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
  /** Seconds the client should wait before retrying (sent as Retry-After on a 429). */
  readonly retryAfterSeconds?: number;
  /** The methods a route supports (sent as Allow on a 405). */
  readonly allow?: string;

  constructor(
    status: number,
    message: string,
    type: ApiErrorType | string,
    param: string | null = null,
    code: string | null = null,
    retryAfterSeconds?: number,
    allow?: string,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = type;
    this.param = param;
    this.code = code;
    if (retryAfterSeconds !== undefined) this.retryAfterSeconds = retryAfterSeconds;
    if (allow !== undefined) this.allow = allow;
  }

  toBody(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function badRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, code);
}

/** A field this server cannot honour: 400 naming the field and why, as vLLM answers, never a silent 200. */
export function unsupportedField(param: string, why: string): ApiError {
  return badRequest(`${param} is not supported here: ${why}`, param, 'unsupported_parameter');
}

export function notFound(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(404, message, 'not_found_error', param, code);
}

export function tooManyRequests(message: string, retryAfterSeconds: number): ApiError {
  return new ApiError(429, message, 'rate_limit_error', null, 'rate_limit_exceeded', retryAfterSeconds);
}

export function payloadTooLarge(limitBytes: number): ApiError {
  return new ApiError(
    413,
    `request body is larger than this server's limit of ${groupDigits(limitBytes)} bytes`,
    'invalid_request_error',
    null,
    'body_too_large',
  );
}

export function unsupportedMediaType(got: string | null): ApiError {
  const what = got === null || got === '' ? 'no Content-Type' : `Content-Type ${JSON.stringify(got)}`;
  return new ApiError(
    415,
    `request body must be sent as application/json (Content-Type: application/json), got ${what}`,
    'invalid_request_error',
    null,
    'unsupported_content_type',
  );
}

export function unauthorized(message: string): ApiError {
  return new ApiError(401, message, 'authentication_error', null, 'invalid_api_key');
}

export function serverError(message: string, code: string | null = null): ApiError {
  return new ApiError(500, message, 'server_error', null, code);
}

/** What an unexpected error answers with: no internals leak to the client. */
export function internalError(): ApiError {
  return new ApiError(500, 'internal error; see the server log', 'server_error', null, 'internal_error');
}

export function routeNotFound(method: string, path: string): ApiError {
  return new ApiError(404, `no route for ${method} ${shortPath(path)}`, 'not_found_error', null, 'route_not_found');
}

/** RFC 9110 (15.5.6): a 405 carries an Allow header listing the methods the route supports. */
export function methodNotAllowed(method: string, path: string, allowed: string): ApiError {
  return new ApiError(
    405,
    `${method} is not allowed on ${shortPath(path)}; use ${allowed}`,
    'invalid_request_error',
    null,
    'method_not_allowed',
    undefined,
    allowed,
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

/** A path quoted in an error message, cut short so a hostile path is not echoed whole. */
function shortPath(path: string): string {
  return path.length <= 200 ? path : `${path.slice(0, 200)}… (${groupDigits(path.length)} characters)`;
}
