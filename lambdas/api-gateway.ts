/** Reading API Gateway REST proxy events and shaping proxy results, in the API's error format. */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { internalError } from '../lib/core/api/api-routes';
import { ApiError, payloadTooLarge } from '../lib/core/api/openai';
import { describeError, type LogSink } from './observability';

/** A request header by name; API Gateway keeps the client's spelling, HTTP names are case-insensitive. */
export function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === wanted && value !== undefined) return value;
  }
  for (const [key, values] of Object.entries(event.multiValueHeaders ?? {})) {
    if (key.toLowerCase() === wanted && values !== undefined && values.length > 0) return values.join(', ');
  }
  return undefined;
}

/** The request body as text, refused past `limitBytes` (API Gateway itself allows up to 10 MB). */
export function requestBody(event: APIGatewayProxyEvent, limitBytes: number): string {
  const raw = event.body ?? '';
  const bytes = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  if (bytes.length > limitBytes) throw payloadTooLarge(limitBytes);
  return bytes.toString('utf8');
}

export function jsonResult(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResult {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

/** Any failure as an OpenAI-style error; an unexpected one is logged and answered without internals. */
export function errorResult(err: unknown, logger: LogSink, allow?: string): APIGatewayProxyResult {
  if (!(err instanceof ApiError)) {
    logger.error('unexpected error in the API function', { error: describeError(err) });
  }
  const apiError = err instanceof ApiError ? err : internalError();
  const headers: Record<string, string> = {};
  if (apiError.retryAfterSeconds !== undefined) headers['retry-after'] = String(apiError.retryAfterSeconds);
  if (allow !== undefined) headers.allow = allow;
  return jsonResult(apiError.status, apiError.toBody(), headers);
}
