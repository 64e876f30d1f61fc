/**
 * The API function behind API Gateway (REST, proxy integration): the OpenAI-compatible routes of the
 * embedded server, with the same validation, limits and error format. Completions start the
 * pipeline and read the request's record back from the result store until it ends.
 *   handler        buffered: JSON, or the whole SSE body once the request ends (202 + poll URL if it runs long)
 *   streamHandler  API Gateway response streaming: SSE chunks written as the record grows
 */
import './bundle-require';
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { loadTokenizer, promptIdsFor } from '../lib/adapters/tokenizers';
import {
  completionId,
  completionResult,
  failedRequest,
  jsonContentTypeError,
  matchRoute,
  modelList,
  normalizePath,
  overloaded,
  parseCompletionBody,
  promptParam,
  requestNotFound,
  requestView,
  type CompletionEndpoint,
} from '../lib/core/api/api-routes';
import {
  ApiError,
  assertPromptFits,
  chatCompletionResponse,
  completionResponse,
  serverError,
  sseData,
} from '../lib/core/api/openai';
import { isTerminal, type RequestRecord } from '../lib/core/engine/record';
import type { Tokenizer } from '../lib/core/ports';
import { SSE_HEADERS, sseBody, sseClosing, sseOpening, ssePiece, type SseMeta } from '../lib/core/api/sse';
import { errorResult, header, jsonResult, requestBody } from './api-gateway';
import { cancel, pollRecord, PrefillInvokeError, submit } from './api-pipeline';
import { defaultWiring, type Wiring } from './wiring';

/** Where a streamed response goes: Lambda's response stream, or a test's recorder. */
export interface ResponseSink {
  start(statusCode: number, headers: Record<string, string>): void;
  write(chunk: string): void;
  end(): void;
}

/** Left unspent of the function's own timeout, to write the last event and close the stream. */
const STREAM_MARGIN_MS = 2000;
/** Left unspent of the function's own timeout by a buffered response. */
const RESPONSE_MARGIN_MS = 1000;

type RemainingTime = Pick<Context, 'getRemainingTimeInMillis'> | undefined;

export function createApiHandler(
  wiring: () => Promise<Wiring>,
): (event: APIGatewayProxyEvent, context?: Context) => Promise<APIGatewayProxyResult> {
  return async (event, context) => {
    const w = await wiring();
    return (await respond(event, w, context, null)) as APIGatewayProxyResult;
  };
}

/**
 * Answers one event into `sink`: streamed SSE for `stream: true` completions, any other response
 * written whole. This is the body of `streamHandler`, callable without the Lambda runtime.
 */
export async function streamApiEvent(
  event: APIGatewayProxyEvent,
  sink: ResponseSink,
  w: Wiring,
  context?: RemainingTime,
): Promise<void> {
  const result = await respond(event, w, context, sink);
  if (result === null) return;
  sink.start(result.statusCode, stringHeaders(result.headers));
  sink.write(result.body);
  sink.end();
}

/** The served family's tokenizer (or the wiring's), loaded on the first request: only this function counts prompts. */
export function loadPromptTokenizer(w: Wiring): Promise<Tokenizer> {
  return w.promptTokenizer ? w.promptTokenizer() : loadTokenizer(w.tokenizerFamily);
}

/** The process's wiring, built on first use; exported so a cold start can be measured without an invocation. */
export const initWiring = defaultWiring('disagg-api');

export const handler = createApiHandler(initWiring);

/**
 * Set by the Lambda Node.js runtime. Tested by its method, not its presence: bundled SDK packages
 * create an empty `globalThis.awslambda` of their own outside Lambda.
 */
const lambdaRuntime = (globalThis as { awslambda?: Partial<typeof awslambda> }).awslambda;

export const streamHandler =
  typeof lambdaRuntime?.streamifyResponse === 'function' && lambdaRuntime.HttpResponseStream !== undefined
    ? lambdaRuntime.streamifyResponse(
        async (event: APIGatewayProxyEvent, responseStream: awslambda.HttpResponseStream, context: Context) => {
          const { HttpResponseStream } = lambdaRuntime as typeof awslambda;
          let stream: awslambda.HttpResponseStream = responseStream;
          const sink: ResponseSink = {
            start: (statusCode, headers) => {
              // Status and headers go first, as the prelude API Gateway turns into the HTTP response head.
              stream = HttpResponseStream.from(responseStream, { statusCode, headers });
            },
            write: (chunk) => void stream.write(chunk),
            end: () => stream.end(),
          };
          await streamApiEvent(event, sink, await initWiring(), context);
        },
      )
    : undefined;

/** The response, or null when it was streamed into `sink`. */
async function respond(
  event: APIGatewayProxyEvent,
  w: Wiring,
  context: RemainingTime,
  sink: ResponseSink | null,
): Promise<APIGatewayProxyResult | null> {
  const path = normalizePath(event.path ?? '/');
  const route = matchRoute(event.httpMethod, path);
  try {
    switch (route.kind) {
      case 'healthz':
        return jsonResult(200, { status: 'ok' });
      case 'models':
        return jsonResult(200, modelList(w.config.model.id, Math.floor(Date.now() / 1000)));
      case 'completions':
        return await completions(event, w, route.endpoint, context, sink);
      case 'get-request': {
        const record = await w.results.get(route.id);
        if (!record) throw requestNotFound(route.id);
        return jsonResult(200, requestView(record));
      }
      case 'cancel-request': {
        const record = await cancel(w, route.id);
        if (!record) throw requestNotFound(route.id);
        return jsonResult(200, requestView(record));
      }
      case 'error':
        return errorResult(route.error, w.logger, route.allow);
    }
  } catch (err) {
    if (err instanceof PrefillInvokeError) return errorResult(serverError(err.message), w.logger);
    return errorResult(err, w.logger);
  }
}

async function completions(
  event: APIGatewayProxyEvent,
  w: Wiring,
  endpoint: CompletionEndpoint,
  context: RemainingTime,
  sink: ResponseSink | null,
): Promise<APIGatewayProxyResult | null> {
  const contentTypeError = jsonContentTypeError(header(event, 'content-type'));
  if (contentTypeError) throw contentTypeError;
  const parsed = parseCompletionBody(endpoint, requestBody(event, w.maxBodyBytes), w.limits, [w.config.model.id]);
  const tokenizer = await loadPromptTokenizer(w);
  const promptIds =
    parsed.kind === 'chat'
      ? promptIdsFor(tokenizer, w.tokenizerFamily, 'chat', parsed.messages)
      : promptIdsFor(tokenizer, w.tokenizerFamily, 'completion', parsed.prompt ?? '');
  assertPromptFits(
    promptIds.length,
    w.limits,
    w.config.model.maxContext,
    parsed.sampling.maxTokens,
    promptParam(endpoint),
  );

  const id = completionId(endpoint, randomUUID());
  const createdS = Math.floor(Date.now() / 1000);
  const submitted = await submit(w, {
    id,
    model: parsed.model,
    promptIds,
    messages: parsed.messages,
    sampling: parsed.sampling,
    mode: parsed.mode,
  });
  if (!submitted.accepted) throw overloaded(submitted.decision);

  const meta: SseMeta = {
    id,
    model: parsed.model,
    createdS,
    endpoint,
    promptTokens: promptIds.length,
    includeUsage: parsed.includeUsageInStream,
  };
  if (parsed.stream && sink) {
    await streamEvents(w, meta, sink, streamDeadline(w, context));
    return null;
  }
  const record = await pollRecord(w, id, responseDeadline(w, context));
  if (record === null) throw new Error(`record of request ${id} vanished from the result store`);
  if (!isTerminal(record.state)) return stillRunning(record);
  if (parsed.stream) {
    return { statusCode: 200, headers: { ...SSE_HEADERS }, body: sseBody(meta, record) };
  }
  if (record.state !== 'completed') throw failedRequest(record);
  const result = completionResult(record, parsed, id, createdS);
  return jsonResult(200, endpoint === 'chat' ? chatCompletionResponse(result) : completionResponse(result));
}

/** SSE written as the polled record grows: pieces are saved every few tokens and at the end. */
async function streamEvents(w: Wiring, meta: SseMeta, sink: ResponseSink, deadlineMs: number): Promise<void> {
  sink.start(200, { ...SSE_HEADERS });
  const opening = sseOpening(meta);
  if (opening !== '') sink.write(opening);
  let sent = 0;
  const write = (record: RequestRecord): void => {
    for (; sent < record.pieces.length; sent++) sink.write(ssePiece(meta, record.pieces[sent]!));
  };
  const record = await pollRecord(w, meta.id, deadlineMs, write);
  if (record !== null && isTerminal(record.state)) {
    sink.write(sseClosing(meta, record));
  } else {
    // Headers are gone: say in-band, in the API's error format, where the result will be.
    sink.write(sseData(stillRunningError(meta.id).toBody()) + sseData('[DONE]'));
  }
  sink.end();
}

/** 202: the request runs on; the client reads the result from the poll URL. */
function stillRunning(record: RequestRecord): APIGatewayProxyResult {
  return jsonResult(202, { id: record.id, status: record.state, poll: `/v1/requests/${record.id}` });
}

function stillRunningError(id: string): ApiError {
  return new ApiError(
    504,
    `request ${id} is still running; read its result from GET /v1/requests/${id}`,
    'server_error',
    null,
    'still_running',
  );
}

function responseDeadline(w: Wiring, context: RemainingTime): number {
  const remaining = context ? context.getRemainingTimeInMillis() - RESPONSE_MARGIN_MS : Infinity;
  return w.wallClockMs() + Math.max(0, Math.min(w.responseBudgetMs, remaining));
}

function streamDeadline(w: Wiring, context: RemainingTime): number {
  const remaining = context ? context.getRemainingTimeInMillis() - STREAM_MARGIN_MS : Infinity;
  return w.wallClockMs() + Math.max(0, Math.min(w.config.requestTimeoutMs, remaining));
}

function stringHeaders(headers: APIGatewayProxyResult['headers']): Record<string, string> {
  return Object.fromEntries(Object.entries(headers ?? {}).map(([name, value]) => [name, String(value)]));
}
