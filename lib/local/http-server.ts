/**
 * The embedded server: the one HTTP application (lib/core/api/app.ts) on Node's HTTP server through Hono's Node
 * adapter, over the embedded runtime's pipeline port. What only a socket can get wrong (broken framing, headers
 * over the limit, a client too slow to send its request) is answered here, in the same error format.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createAdaptorServer, type HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import { createApiApp, type ApiAppOptions, type ApiLog, type HostRequest } from '../core/api/app';
import { bodyReadError, bodyText, checkDeclaredLength } from '../core/api/http-edge';
import { ApiError, payloadTooLarge } from '../core/api/errors';
import type { RequestEvent } from '../core/engine/record';
import type { EventBus } from '../core/ports';
import { embeddedPipeline, type AdmittedRequests, type DependencyHealth } from './embedded-pipeline';
import type { ServeObservability } from './observability';
import type { PipelineRuntime } from './runtime';

export interface HttpApiOptions extends Pick<
  ApiAppOptions,
  'limits' | 'maxBodyBytes' | 'apiKey' | 'countPrompt' | 'backend' | 'systemFingerprint' | 'corsOrigins'
> {
  readonly runtime: PipelineRuntime;
  readonly events: EventBus<RequestEvent>;
  /** Lines for the operator: unexpected errors. */
  readonly log?: (line: string) => void;
  /** Metrics, request log, spans and the dashboard (lib/local/observability.ts); without it, none of them. */
  readonly observability?: ServeObservability;
  /** The requests admitted and not yet ended (the server drains them on shutdown). */
  readonly admitted?: AdmittedRequests;
  /** The stores' health, for GET /healthz. */
  readonly dependencies?: () => Promise<Record<string, DependencyHealth>>;
}

export function createHttpApi(options: HttpApiOptions): Server {
  const line = options.log ?? (() => undefined);
  const structured = options.observability?.log;
  const log: ApiLog = {
    debug: (message, attributes) => structured?.debug(message, attributes),
    warn: (message, attributes) => structured?.warn(message, attributes),
    error: (message, attributes) => line(`error: ${message} ${JSON.stringify(attributes ?? {})}`),
  };
  const o = options.observability;
  const app = createApiApp({
    ...options,
    pipeline: embeddedPipeline(options.runtime, options.events, {
      ...(o?.spans ? { spans: o.spans } : {}),
      ...(options.admitted ? { admitted: options.admitted } : {}),
      ...(options.dependencies ? { dependencies: options.dependencies } : {}),
    }),
    model: { id: options.runtime.config.model.id, maxContext: options.runtime.config.model.maxContext },
    newId: randomUUID,
    nowMs: Date.now,
    log,
    ...(o ? { observer: o.observer, extraRoutes: o.extraRoutes } : {}),
    hostRequest: nodeRequest,
  });
  // The adapter's own Request and Response (its default): a response built from a string is written straight to the
  // socket from what it was built with, where the platform's Response would be read back through a web stream, and
  // a request's web Request is only built if something asks for it. Both stand in for the platform's classes.
  const server = createAdaptorServer({ fetch: app.fetch, overrideGlobalObjects: true }) as Server;
  // Slow or stuck clients must not hold sockets forever.
  server.requestTimeout = 60_000;
  server.headersTimeout = 30_000;
  // Node's own answer to a request its parser rejects is a bare 400 with no body; answer in the API's format.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => sendClientError(err, socket));
  return server;
}

/**
 * The request as Node's server has it (Hono's Node adapter passes it as c.env): its body read straight from the
 * IncomingMessage, and a client gone noticed on the response's close, as the adapter's own AbortSignal would
 * be (closed before the response finished, or the request errored), without building either per request.
 */
function nodeRequest(c: Context): HostRequest | null {
  const env = c.env as Partial<HttpBindings> | undefined;
  const incoming = env?.incoming;
  const outgoing = env?.outgoing as ServerResponse | undefined;
  if (!incoming || !outgoing) return null;
  return {
    readBody: (limitBytes) => readIncoming(incoming, limitBytes),
    onClientGone(listener) {
      const onClose = (): void => {
        if (incoming.errored || !outgoing.writableFinished) listener();
      };
      outgoing.once('close', onClose);
      return () => void outgoing.off('close', onClose);
    },
  };
}

/**
 * The body of a Node request as text, with readBodyText's limit and errors. Past the limit it stops listening
 * and leaves the rest to the adapter, which drains it after the 413 is written, so the answer reaches the client.
 */
function readIncoming(incoming: IncomingMessage, limitBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    checkDeclaredLength(incoming.headers['content-length'], limitBytes);
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength;
      if (size > limitBytes) {
        stop();
        reject(payloadTooLarge(limitBytes));
      } else chunks.push(chunk);
    };
    const onEnd = (): void => {
      stop();
      resolve(bodyText(chunks, size));
    };
    const onError = (err: Error): void => {
      stop();
      reject(bodyReadError(err));
    };
    const onAborted = (): void => onError(new Error('aborted'));
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('aborted', onAborted);
  });
}

/**
 * A request Node's HTTP parser rejected (broken framing, an invalid method or header, headers over
 * the limit, a timeout) never reaches the application. Answered like Node's default, then closed, since
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
