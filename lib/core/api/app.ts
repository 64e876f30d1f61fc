/**
 * The OpenAI-compatible HTTP application, written once and served two ways: by `disagg serve` through Hono's
 * Node adapter and by the API function through its Lambda adapter (buffered, or with response streaming). It
 * owns routes, validation, limits, errors and SSE framing; it reaches the pipeline only through
 * CompletionPipeline, and the tokenizer only through `countPrompt`.
 *
 *   POST /v1/chat/completions, POST /v1/completions, POST /v1/responses (JSON or SSE)
 *   GET /v1/models, GET /v1/models/{id}, GET|DELETE /v1/requests/{id}, GET /healthz
 */
import { Hono, type Context } from 'hono';
import { cors } from 'hono/cors';
import { routePath } from 'hono/route';
import { isTerminal, type RequestRecord } from '../engine/record';
import type { RoutingMode } from '../engine/routing';
import type { BackendCapabilities } from './capabilities';
import { parseChatCompletionRequest, parseCompletionRequest, type ParseContext } from './chat-request';
import { chatCompletionResponse, completionResponse, type FinishReason } from './completion-shapes';
import { ApiError, internalError, methodNotAllowed, notFound, requestNotFound, routeNotFound } from './errors';
import {
  assertJsonContentType,
  authenticate,
  normalizePath,
  presentedKey,
  readBodyText,
  requestIdFor,
  requiresAuth,
} from './http-edge';
import { assertPromptFits, promptTokenBudget, type ApiLimits } from './limits';
import type { CompletionPipeline, RequestProgress } from './pipeline-port';
import { CORS_ALLOW_HEADERS, CORS_ALLOW_METHODS, CORS_EXPOSE_HEADERS, CORS_MAX_AGE_SECONDS } from './cors';
import { completionResult, failedRequest, overloaded, requestView, stillRunningError } from './record-view';
import { backendMessages, toolOffer, type Endpoint, type ParsedCompletionRequest } from './request';
import { parseResponsesRequest } from './responses-request';
import { ResponseEvents, responseBody, type ResponseState } from './responses-shapes';
import { validTraceparent } from '../handoff/traceparent';
import {
  SSE_HEADERS,
  sseData,
  sseEvent,
  sseFailure,
  sseFinish,
  sseOpening,
  ssePieces,
  sseToolCalls,
  type SseMeta,
} from './sse';
import { disaggSummary } from './summary';
import { parseJsonBody } from './validation';

/** Where the application logs; attributes are ids, sizes and timings, never prompts or completions. */
export interface ApiLog {
  debug(message: string, attributes?: Record<string, unknown>): void;
  /** Something the client should know it did: fields it sent that nothing acts on. */
  warn(message: string, attributes?: Record<string, unknown>): void;
  error(message: string, attributes?: Record<string, unknown>): void;
}

/** A completion request as the application saw it: ids and sizes, never its text. */
export interface CompletionSeen {
  /** The completion's id (the pipeline's request id, `GET /v1/requests/{id}`). */
  readonly id: string;
  /** The HTTP request's `x-request-id`. */
  readonly requestId: string;
  /** The route pattern, e.g. `/v1/chat/completions`. */
  readonly route: string;
  readonly mode: RoutingMode;
  readonly promptTokens: number;
  /** W3C traceparent the client sent, if any. */
  readonly traceparent?: string;
}

/** What the application tells its host about the requests it serves, for metrics and logs. */
export interface ApiObserver {
  /** Admitted: the pipeline runs it; its end arrives through the pipeline, not here. */
  accepted?(seen: CompletionSeen): void;
  /** Refused at admission (429) because a queue was full, before any stage saw it. */
  rejected?(seen: CompletionSeen & { readonly queue: 'prefill' | 'decode' }): void;
  /** Every response once its status is known (for a stream, when its headers go out). */
  responded?(response: {
    readonly requestId: string;
    readonly method: string;
    /** The route pattern it matched, or `unmatched`. */
    readonly route: string;
    readonly status: number;
    readonly durationMs: number;
  }): void;
}

export interface ServedModel {
  readonly id: string;
  /** The model's context window, tokens. */
  readonly maxContext: number;
}

export interface ApiAppOptions {
  readonly pipeline: CompletionPipeline;
  readonly model: ServedModel;
  readonly limits: ApiLimits;
  /** Largest request body accepted, bytes. */
  readonly maxBodyBytes: number;
  readonly backend: BackendCapabilities;
  /** OpenAI's `system_fingerprint`: which backend and build answered. */
  readonly systemFingerprint: string;
  /**
   * The prompt's token ids under the served model's tokenizer and chat template. May stop counting past
   * `budget` tokens (the answer is then a refusal anyway); throws an ApiError for a conversation the
   * template refuses.
   */
  readonly countPrompt: (request: ParsedCompletionRequest, budget: number) => Promise<readonly number[]>;
  /** Key required on /v1 routes; null turns checking off (API Gateway checks it in front of the function). */
  readonly apiKey: string | null;
  /** Origins a browser page may call from; empty: no CORS headers. `*` allows any. */
  readonly corsOrigins?: readonly string[];
  readonly newId: () => string;
  /** Epoch ms. */
  readonly nowMs: () => number;
  /** Epoch ms by which a response must be written (a Lambda's remaining time); omitted: no limit. */
  readonly responseDeadlineMs?: (c: Context) => number;
  /** Buffered transports (Lambda without streaming): a stream's SSE body is written whole once it ends. */
  readonly bufferStreams?: boolean;
  readonly log: ApiLog;
  readonly observer?: ApiObserver;
  /**
   * Routes of the host's own (the embedded server's /metrics and /dashboard), added after the API's routes and
   * before its 404 and 405 answers; those under /v1/ need the key like every /v1 route.
   */
  readonly extraRoutes?: (app: Hono<ApiEnv>) => void;
  /**
   * The host server's own view of a request, where it has one cheaper than the web Request (node:http's request
   * and response): the body read and a client that goes away noticed without a web stream and an AbortSignal
   * built per request. Absent or null (Lambda): the web Request's body and signal.
   */
  readonly hostRequest?: (c: Context) => HostRequest | null;
}

/** See ApiAppOptions.hostRequest. */
export interface HostRequest {
  /** The body as text, as readBodyText reads it (same limit, same errors). */
  readBody(limitBytes: number): Promise<string>;
  /** Calls `listener` once if the client goes away before the response is written; returns the unsubscribe. */
  onClientGone(listener: () => void): () => void;
}

/** The routes and the methods each allows, for 405 answers. */
const ROUTES: readonly { path: string; allow: string }[] = [
  { path: '/healthz', allow: 'GET' },
  { path: '/v1/models', allow: 'GET' },
  { path: '/v1/models/:id', allow: 'GET' },
  { path: '/v1/chat/completions', allow: 'POST' },
  { path: '/v1/completions', allow: 'POST' },
  { path: '/v1/responses', allow: 'POST' },
  { path: '/v1/requests/:id{[A-Za-z0-9_-]{1,128}}', allow: 'GET, DELETE' },
];

const PROMPT_PARAM: Record<Endpoint, string> = { chat: 'messages', completion: 'prompt', responses: 'input' };
const ID_PREFIX: Record<Endpoint, string> = { chat: 'chatcmpl-', completion: 'cmpl-', responses: 'resp_' };
const PATH_OF: Record<Endpoint, string> = {
  chat: 'chat/completions',
  completion: 'completions',
  responses: 'responses',
};

export type ApiEnv = { Variables: { requestId: string } };
type Env = ApiEnv;

/** The route pattern a request matched, for metrics labels: its last matched route, `unmatched` when none. */
function routeLabel(c: Context): string {
  const path = routePath(c, -1);
  return path.includes('*') ? 'unmatched' : path.replace(/\{[^}]*\}/g, '');
}

export function createApiApp(o: ApiAppOptions): Hono<Env> {
  const app = new Hono<Env>({ getPath: (request) => normalizePath(request.url) });
  const parseContext: ParseContext = { limits: o.limits, servedModels: [o.model.id], backend: o.backend };

  app.use('*', async (c, next) => {
    const startedMs = o.nowMs();
    const requestId = requestIdFor(c.req.header('x-request-id'), o.newId);
    c.set('requestId', requestId);
    c.header('x-request-id', requestId);
    await next();
    o.observer?.responded?.({
      requestId,
      method: c.req.method,
      route: routeLabel(c),
      status: c.res.status,
      durationMs: o.nowMs() - startedMs,
    });
  });
  if (o.corsOrigins && o.corsOrigins.length > 0) {
    const origins = [...o.corsOrigins];
    app.use(
      '*',
      cors({
        origin: origins.includes('*') ? '*' : origins,
        allowMethods: [...CORS_ALLOW_METHODS],
        allowHeaders: [...CORS_ALLOW_HEADERS],
        exposeHeaders: [...CORS_EXPOSE_HEADERS],
        maxAge: CORS_MAX_AGE_SECONDS,
      }),
    );
  }
  app.use('/v1/*', async (c, next) => {
    if (requiresAuth(normalizePath(c.req.url))) {
      authenticate(presentedKey(c.req.header('authorization'), c.req.header('x-api-key')), o.apiKey);
    }
    await next();
  });

  app.get('/healthz', async (c) => {
    const health = { status: 'ok', ...(await o.pipeline.health()) };
    // A dependency down (or a server draining for shutdown) is a 503, so a load balancer sends elsewhere.
    return c.json(health, health.status === 'ok' ? 200 : 503);
  });
  app.get('/v1/models', (c) => c.json({ object: 'list', data: [modelCard(o, c)] }));
  app.get('/v1/models/:id', (c) => {
    const id = c.req.param('id');
    if (id !== o.model.id) {
      throw notFound(
        `The model ${JSON.stringify(id)} does not exist on this server; served models: ${o.model.id}`,
        'model',
        'model_not_found',
      );
    }
    return c.json(modelCard(o, c));
  });
  app.post('/v1/chat/completions', (c) => completions(c, 'chat', o, parseContext));
  app.post('/v1/completions', (c) => completions(c, 'completion', o, parseContext));
  app.post('/v1/responses', (c) => completions(c, 'responses', o, parseContext));
  app.get('/v1/requests/:id{[A-Za-z0-9_-]{1,128}}', async (c) => {
    const id = c.req.param('id');
    const record = await o.pipeline.get(id);
    if (!record) throw requestNotFound(id);
    return c.json(requestView(record));
  });
  app.delete('/v1/requests/:id{[A-Za-z0-9_-]{1,128}}', async (c) => {
    const id = c.req.param('id');
    const record = await o.pipeline.cancel(id);
    if (!record) throw requestNotFound(id);
    return c.json(requestView(record));
  });
  o.extraRoutes?.(app);
  // A known route with the wrong method is a 405 naming the allowed ones, not a 404 (the route exists).
  for (const route of ROUTES) {
    app.all(route.path, (c) => {
      throw methodNotAllowed(c.req.method, normalizePath(c.req.url), route.allow);
    });
  }

  app.notFound((c) => errorResponse(c, routeNotFound(c.req.method, normalizePath(c.req.url))));
  app.onError((err, c) => {
    if (!(err instanceof ApiError)) {
      o.log.error('unexpected error in the API', {
        requestId: c.get('requestId'),
        error: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err),
      });
    }
    return errorResponse(c, err instanceof ApiError ? err : internalError());
  });
  return app;
}

function errorResponse(c: Context, error: ApiError): Response {
  if (error.retryAfterSeconds !== undefined) c.header('retry-after', String(error.retryAfterSeconds));
  if (error.allow !== undefined) c.header('allow', error.allow);
  return c.json(error.toBody(), error.status as 400);
}

function modelCard(o: ApiAppOptions, _c: Context): Record<string, unknown> {
  return {
    id: o.model.id,
    object: 'model',
    created: Math.floor(o.nowMs() / 1000),
    owned_by: 'disagg',
    // What one request may use here: the model's window, or the server's prompt and output limits if smaller.
    max_model_len: Math.min(o.model.maxContext, o.limits.maxPromptTokens + o.limits.maxOutputTokens),
  };
}

function parse(endpoint: Endpoint, body: unknown, ctx: ParseContext): ParsedCompletionRequest {
  const parsed =
    endpoint === 'chat'
      ? parseChatCompletionRequest(body, ctx)
      : endpoint === 'completion'
        ? parseCompletionRequest(body, ctx)
        : parseResponsesRequest(body, ctx);
  // Parsing succeeded, so the body is a JSON object.
  ctx.backend.check?.(parsed, body as Record<string, unknown>);
  return parsed;
}

async function completions(
  c: Context<Env>,
  endpoint: Endpoint,
  o: ApiAppOptions,
  ctx: ParseContext,
): Promise<Response> {
  assertJsonContentType(c.req.header('content-type'));
  const host = o.hostRequest?.(c) ?? null;
  const text = host ? await host.readBody(o.maxBodyBytes) : await readBodyText(c.req.raw, o.maxBodyBytes);
  const parsed = parse(endpoint, parseJsonBody(text), ctx);
  const requestId = c.get('requestId');
  if (parsed.ignoredFields.length > 0) {
    o.log.warn('request fields accepted but not acted on', { requestId, fields: parsed.ignoredFields });
  }
  const budget = promptTokenBudget(o.limits, o.model.maxContext, parsed.sampling.maxTokens);
  const promptIds = await o.countPrompt(parsed, budget);
  assertPromptFits(promptIds.length, o.limits, o.model.maxContext, parsed.sampling.maxTokens, PROMPT_PARAM[endpoint]);

  const id = `${ID_PREFIX[endpoint]}${o.newId()}`;
  const createdS = Math.floor(o.nowMs() / 1000);
  const deadlineMs = o.responseDeadlineMs?.(c) ?? Infinity;
  const traceparent = validTraceparent(c.req.header('traceparent'));
  const tools = o.backend.tools ? toolOffer(parsed) : undefined;
  const submitted = await o.pipeline.submit(
    {
      id,
      model: parsed.model,
      promptIds,
      messages: backendMessages(parsed.conversation),
      sampling: parsed.sampling,
      ...(tools ? { tools } : {}),
      mode: parsed.mode,
      ...(traceparent ? { traceparent } : {}),
    },
    { deadlineMs },
  );
  const seen: CompletionSeen = {
    id,
    requestId,
    route: `/v1/${PATH_OF[endpoint]}`,
    mode: submitted.record.mode,
    promptTokens: promptIds.length,
    ...(traceparent ? { traceparent } : {}),
  };
  if (!submitted.accepted) {
    o.observer?.rejected?.({ ...seen, queue: submitted.decision.queue });
    throw overloaded(submitted.decision);
  }
  o.observer?.accepted?.(seen);
  const { progress } = submitted;
  const run: Run = { id, createdS, parsed, promptTokens: promptIds.length, progress, o };

  // A client that goes away cancels its request: decode stops and the KV is freed.
  let finished = false;
  const onAbort = (): void => {
    progress.close();
    if (!finished) void o.pipeline.cancel(id).catch(() => undefined);
  };
  const unwatch = host ? host.onClientGone(onAbort) : watchSignal(c.req.raw.signal, onAbort);
  const done = (): void => {
    finished = true;
    unwatch();
  };

  if (parsed.stream && !o.bufferStreams) return streamResponse(c, run, done);
  try {
    const record = await progress.outcome();
    if (!isTerminal(record.state)) {
      // Only where responses have a deadline (Lambda): the request runs on, its result stays readable.
      return c.json({ id, status: record.state, poll: `/v1/requests/${id}` }, 202);
    }
    if (parsed.stream) return c.body(bufferedStream(run, record), 200, { ...SSE_HEADERS });
    if (record.state !== 'completed') throw failedRequest(record);
    return c.json(jsonBody(run, record));
  } finally {
    done();
    progress.close();
  }
}

function watchSignal(signal: AbortSignal, listener: () => void): () => void {
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}

/** One accepted request on its way to a response. */
interface Run {
  readonly id: string;
  readonly createdS: number;
  readonly parsed: ParsedCompletionRequest;
  readonly promptTokens: number;
  readonly progress: RequestProgress;
  readonly o: ApiAppOptions;
}

function jsonBody(run: Run, record: RequestRecord): Record<string, unknown> {
  const { parsed, id, createdS, o } = run;
  if (parsed.kind === 'responses') return responseBody(responseState(run, record));
  const result = completionResult(record, parsed, id, createdS, o.systemFingerprint);
  return parsed.kind === 'chat'
    ? (chatCompletionResponse(result) as unknown as Record<string, unknown>)
    : (completionResponse(result) as unknown as Record<string, unknown>);
}

function responseState(run: Run, record: RequestRecord | null): ResponseState {
  const failed = record !== null && isTerminal(record.state) && record.state !== 'completed';
  return {
    id: run.id,
    messageId: `msg_${run.id.slice(ID_PREFIX.responses.length)}`,
    createdS: run.createdS,
    request: run.parsed,
    status:
      record === null || !isTerminal(record.state)
        ? 'in_progress'
        : failed
          ? 'failed'
          : record.finishReason === 'length'
            ? 'incomplete'
            : 'completed',
    text: record?.pieces.join('') ?? '',
    ...(record?.toolCalls !== undefined && record.toolCalls.length > 0 ? { toolCalls: record.toolCalls } : {}),
    incompleteReason: record?.finishReason === 'length' ? 'max_output_tokens' : null,
    error: failed ? failedRequest(record).toBody().error : null,
    usage: record === null ? null : { input: run.promptTokens, output: record.completionTokens },
    ...(record !== null && isTerminal(record.state) ? { disagg: disaggSummary(record) } : {}),
  };
}

/** The stream's events around the pieces: the opening, one event per piece, and the close for the record. */
interface StreamFraming {
  opening(): string;
  piece(text: string): string;
  closing(record: RequestRecord): string;
}

function framing(run: Run): StreamFraming {
  if (run.parsed.kind === 'responses') {
    const events = new ResponseEvents({ id: run.id, messageId: `msg_${run.id.slice(ID_PREFIX.responses.length)}` });
    const frame = (e: { type: string; data: object }): string => sseEvent(e.type, e.data);
    return {
      opening: () => events.opening(responseState(run, null)).map(frame).join(''),
      piece: (text) => frame(events.delta(text)),
      closing: (record) =>
        isTerminal(record.state)
          ? events.closing(responseState(run, record)).map(frame).join('')
          : stillRunningEvent(run.id),
    };
  }
  const meta: SseMeta = {
    id: run.id,
    model: run.parsed.model,
    createdS: run.createdS,
    endpoint: run.parsed.kind,
    systemFingerprint: run.o.systemFingerprint,
    promptTokens: run.promptTokens,
    includeUsage: run.parsed.includeUsageInStream,
  };
  return {
    opening: () => sseOpening(meta),
    piece: ssePieces(meta),
    closing: (record) => {
      if (record.state === 'completed') {
        const reason: FinishReason = record.finishReason ?? 'stop';
        return (
          sseToolCalls(meta, record.toolCalls ?? []) +
          sseFinish(meta, reason, record.completionTokens, disaggSummary(record))
        );
      }
      // Headers are gone: say in-band, in the API's error format, what happened (or where the result will be).
      const error = isTerminal(record.state) ? failedRequest(record) : stillRunningError(run.id);
      return sseFailure(error.toBody());
    },
  };
}

function bufferedStream(run: Run, record: RequestRecord): string {
  const f = framing(run);
  return f.opening() + record.pieces.map((p) => f.piece(p)).join('') + f.closing(record);
}

/** SSE written as pieces arrive; the stream's end (or the client leaving) ends the watch. */
function streamResponse(c: Context<Env>, run: Run, done: () => void): Response {
  const f = framing(run);
  const encoder = new TextEncoder();
  // Set when the client goes away: nothing more is written (the controller is closed), and that is no error.
  let gone = false;
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      const write = (text: string): void => {
        if (text !== '' && !gone) controller.enqueue(encoder.encode(text));
      };
      try {
        write(f.opening());
        for await (const piece of run.progress.pieces()) write(f.piece(piece));
        write(f.closing(await run.progress.outcome()));
      } catch (err) {
        run.o.log.error('stream failed', { requestId: c.get('requestId'), id: run.id, error: String(err) });
        write(sseData(internalError().toBody()) + sseData('[DONE]'));
      } finally {
        done();
        run.progress.close();
        try {
          controller.close();
        } catch {
          // Already cancelled by the client.
        }
      }
    },
    cancel() {
      gone = true;
      run.progress.close();
    },
  });
  return c.body(body, 200, { ...SSE_HEADERS });
}

/** The Responses API's in-band `error` event, for a stream whose request outlived the response deadline. */
function stillRunningEvent(id: string): string {
  const { message, code, param } = stillRunningError(id).toBody().error;
  return sseEvent('error', { type: 'error', code, message, param });
}
