/**
 * The embedded OpenAI-compatible HTTP API over the runtime:
 *   POST /v1/chat/completions, POST /v1/completions (JSON or SSE), GET /v1/models,
 *   GET /v1/requests/{id}, DELETE /v1/requests/{id}, GET /healthz.
 * Errors are `{"error": {"message", "type", "param", "code"}}` with a 4xx; input never crashes it.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  completionId,
  completionResult,
  failedRequest,
  internalError,
  methodNotAllowed,
  overloaded,
  requestNotFound,
  requestView,
} from '../core/api/api-routes';
import {
  ApiError,
  assertPromptFits,
  chatCompletionResponse,
  completionResponse,
  parseChatCompletionRequest,
  parseCompletionRequest,
  parseJsonBody,
  payloadTooLarge,
  unsupportedMediaType,
  type ApiLimits,
  type ParsedCompletionRequest,
} from '../core/api/openai';
import type { RequestEvent, RequestRecord } from '../core/engine/record';
import { sseClosing, sseOpening, ssePiece, type SseMeta } from '../core/api/sse';
import type { EventBus, Tokenizer } from '../core/ports';
import { promptIdsFor, type TokenizerFamily } from '../adapters/tokenizers';
import type { PipelineRuntime } from './runtime';

export interface HttpApiOptions {
  readonly runtime: PipelineRuntime;
  readonly events: EventBus<RequestEvent>;
  /** The served model's family tokenizer: prompts are counted in its vocabulary, under its chat template. */
  readonly tokenizer: Tokenizer;
  readonly tokenizerFamily: TokenizerFamily;
  readonly limits: ApiLimits;
  /** Largest request body accepted, bytes. */
  readonly maxBodyBytes: number;
  /** Bearer token required on /v1 routes; null turns authentication off. */
  readonly apiKey: string | null;
  readonly log?: (line: string) => void;
}

export function createHttpApi(options: HttpApiOptions): Server {
  const server = createServer((req, res) => {
    handle(req, res, options).catch((err: unknown) => {
      if (!(err instanceof ApiError)) options.log?.(`internal error: ${(err as Error).stack ?? String(err)}`);
      if (res.headersSent) res.end();
      else sendError(res, err);
    });
  });
  // Slow or stuck clients must not hold sockets forever.
  server.requestTimeout = 60_000;
  server.headersTimeout = 30_000;
  // Node's own answer to a request its parser rejects is a bare 400 with no body; answer in the API's format.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => sendClientError(err, socket));
  return server;
}

/**
 * A request Node's HTTP parser rejected (broken framing, an invalid method or header, headers over
 * the limit, a timeout) never reaches the handler. Answered like Node's default, then closed, since
 * the position in the byte stream is lost; but with a JSON error body.
 */
function sendClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // As Node's default: nothing to say to a reset socket, and never write into a response already started.
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const error =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new ApiError(
          431,
          'request headers are larger than this server accepts',
          'invalid_request_error',
          null,
          'headers_too_large',
        )
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new ApiError(408, 'the request was not received in time', 'invalid_request_error', null, 'request_timeout')
        : new ApiError(
            400,
            `malformed HTTP request (${err.code ?? 'parse error'})`,
            'invalid_request_error',
            null,
            'malformed_request',
          );
  const body = JSON.stringify(error.toBody());
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

async function handle(req: IncomingMessage, res: ServerResponse, o: HttpApiOptions): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const method = req.method ?? 'GET';

  if (path === '/healthz') {
    if (method !== 'GET') return sendMethodNotAllowed(res, method, path, 'GET');
    return sendJson(res, 200, { status: 'ok', ...o.runtime.occupancy() });
  }
  if (!path.startsWith('/v1/')) {
    return sendError(
      res,
      new ApiError(404, `no route for ${method} ${path}`, 'not_found_error', null, 'route_not_found'),
    );
  }
  authenticate(req, o.apiKey);

  if (path === '/v1/models') {
    // A known route with the wrong method is a 405, not a 404 (the route exists).
    if (method !== 'GET') return sendMethodNotAllowed(res, method, path, 'GET');
    const created = Math.floor(Date.now() / 1000);
    return sendJson(res, 200, {
      object: 'list',
      data: [{ id: o.runtime.config.model.id, object: 'model', created, owned_by: 'disagg' }],
    });
  }
  if (path === '/v1/chat/completions' || path === '/v1/completions') {
    if (method !== 'POST') return sendMethodNotAllowed(res, method, path, 'POST');
    const kind = path === '/v1/chat/completions' ? 'chat' : 'completion';
    return completions(req, res, o, kind);
  }
  const match = /^\/v1\/requests\/([A-Za-z0-9_-]{1,128})$/.exec(path);
  if (match) {
    const id = match[1]!;
    if (method === 'GET') {
      const record = await o.runtime.get(id);
      if (!record) throw requestNotFound(id);
      return sendJson(res, 200, requestView(record));
    }
    if (method === 'DELETE') {
      const record = await o.runtime.cancel(id);
      if (!record) throw requestNotFound(id);
      return sendJson(res, 200, requestView(record));
    }
    return sendMethodNotAllowed(res, method, path, 'GET, DELETE');
  }
  throw new ApiError(404, `no route for ${method} ${path}`, 'not_found_error', null, 'route_not_found');
}

function authenticate(req: IncomingMessage, apiKey: string | null): void {
  if (apiKey === null) return;
  const header = req.headers.authorization ?? '';
  const token = header.startsWith('Bearer ') ? header.slice(7) : '';
  const a = Buffer.from(token);
  const b = Buffer.from(apiKey);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new ApiError(
      401,
      'missing or wrong API key: send "Authorization: Bearer <key>"',
      'authentication_error',
      null,
      'invalid_api_key',
    );
  }
}

async function completions(
  req: IncomingMessage,
  res: ServerResponse,
  o: HttpApiOptions,
  kind: 'chat' | 'completion',
): Promise<void> {
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (contentType !== 'application/json') {
    req.resume();
    throw unsupportedMediaType(contentType || '(none)');
  }
  const body = parseJsonBody(await readBody(req, o.maxBodyBytes));
  const served = [o.runtime.config.model.id];
  const parsed =
    kind === 'chat'
      ? parseChatCompletionRequest(body, o.limits, served)
      : parseCompletionRequest(body, o.limits, served);
  const promptIds =
    parsed.kind === 'chat'
      ? promptIdsFor(o.tokenizer, o.tokenizerFamily, 'chat', parsed.messages)
      : promptIdsFor(o.tokenizer, o.tokenizerFamily, 'completion', parsed.prompt ?? '');
  assertPromptFits(
    promptIds.length,
    o.limits,
    o.runtime.config.model.maxContext,
    parsed.sampling.maxTokens,
    kind === 'chat' ? 'messages' : 'prompt',
  );

  const id = completionId(kind, randomUUID());
  const createdS = Math.floor(Date.now() / 1000);
  // Subscribe before submitting so no event is missed.
  const stream = new EventStream(o.events, id);
  const submitted = await o.runtime.submit({
    id,
    model: parsed.model,
    promptIds,
    messages: parsed.messages,
    sampling: parsed.sampling,
    mode: parsed.mode,
  });
  if (!submitted.accepted) {
    stream.close();
    res.setHeader('Retry-After', String(submitted.decision.retryAfterSeconds));
    throw overloaded(submitted.decision);
  }
  // A client that goes away cancels its request: decode stops and the KV is freed.
  res.on('close', () => {
    if (!stream.finished) void o.runtime.cancel(id);
    stream.close();
  });
  if (parsed.stream) return streamResponse(res, parsed, stream, { id, createdS, kind, promptTokens: promptIds.length });
  const record = await stream.done();
  if (record.state !== 'completed') throw failedRequest(record);
  const result = completionResult(record, parsed, id, createdS);
  sendJson(res, 200, kind === 'chat' ? chatCompletionResponse(result) : completionResponse(result));
}

async function streamResponse(
  res: ServerResponse,
  parsed: ParsedCompletionRequest,
  stream: EventStream,
  meta: { id: string; createdS: number; kind: 'chat' | 'completion'; promptTokens: number },
): Promise<void> {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  const sse: SseMeta = {
    id: meta.id,
    model: parsed.model,
    createdS: meta.createdS,
    endpoint: meta.kind,
    promptTokens: meta.promptTokens,
    includeUsage: parsed.includeUsageInStream,
  };
  const opening = sseOpening(sse);
  if (opening !== '') res.write(opening);
  for await (const piece of stream.tokens()) res.write(ssePiece(sse, piece));
  const record = await stream.done();
  // Headers are gone: a failure is reported in-band, in the API's error format.
  res.end(sseClosing(sse, record));
}

/** Tokens and the terminal record of one request, from the event bus, as async iteration. */
class EventStream {
  finished = false;
  private readonly pieces: string[] = [];
  private record: RequestRecord | null = null;
  private wake: (() => void) | null = null;
  private readonly unsubscribe: () => void;

  constructor(events: EventBus<RequestEvent>, id: string) {
    this.unsubscribe = events.subscribe(id, (event) => {
      if (event.type === 'token') this.pieces.push(event.text);
      else if (event.type === 'done') {
        this.record = event.record;
        this.finished = true;
      } else return;
      this.wake?.();
    });
  }

  async *tokens(): AsyncGenerator<string> {
    for (;;) {
      while (this.pieces.length > 0) yield this.pieces.shift()!;
      if (this.record) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }

  async done(): Promise<RequestRecord> {
    while (!this.record) {
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
    this.close();
    return this.record;
  }

  close(): void {
    this.unsubscribe();
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(payloadTooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(payloadTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', (err) => {
      if (!failed)
        reject(
          new ApiError(
            400,
            `could not read the request body: ${err.message}`,
            'invalid_request_error',
            null,
            'body_read_error',
          ),
        );
    });
  });
}

/** RFC 9110 (15.5.6): a 405 must carry an Allow header listing the methods the route supports. */
function sendMethodNotAllowed(res: ServerResponse, method: string, path: string, allowed: string): void {
  res.setHeader('Allow', allowed);
  sendError(res, methodNotAllowed(method, path, allowed));
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: unknown): void {
  const apiError = err instanceof ApiError ? err : internalError();
  if (apiError.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(apiError.retryAfterSeconds));
  sendJson(res, apiError.status, apiError.toBody());
}
