/**
 * The HTTP application behind API Gateway (REST, proxy integration) through Hono's Lambda adapter: the buffered
 * handler, and response streaming, where the function writes API Gateway's prelude (status and headers) and then
 * the body as it is produced.
 */
import { StringDecoder } from 'node:string_decoder';
import { Writable } from 'node:stream';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import type { Hono } from 'hono';
import { streamHandle } from 'hono/aws-lambda';

/** Where a streamed response goes: Lambda's response stream, or a test's recorder. */
export interface ResponseSink {
  start(statusCode: number, headers: Record<string, string>): void;
  write(chunk: string): void;
  end(): void;
}

/**
 * Which responses API Gateway must pass through as bytes. JSON and SSE are text: marking them binary would make
 * API Gateway (without binary media types) return the base64 text itself.
 */
export function isContentTypeBinary(contentType: string): boolean {
  return !/^(text\/|application\/(json|problem\+json)\b)/i.test(contentType);
}

/** The Lambda context in a Hono context's env, from either adapter (`lambdaContext` buffered, `context` streamed). */
export function lambdaContextOf(env: unknown): Pick<Context, 'getRemainingTimeInMillis'> | undefined {
  const e = env as { lambdaContext?: Context; context?: Context } | undefined;
  const context = e?.lambdaContext ?? e?.context;
  return typeof context?.getRemainingTimeInMillis === 'function' ? context : undefined;
}

/** The slice of the Lambda Node.js runtime's `awslambda` global that response streaming uses. */
interface StreamingRuntime {
  streamifyResponse(
    handler: (event: APIGatewayProxyEvent, stream: Writable, context: Context) => Promise<void>,
  ): unknown;
  HttpResponseStream: {
    from(stream: Writable, prelude: { statusCode?: number; headers?: Record<string, string> }): Writable;
  };
}

/** Where each response stream's prelude goes, for the runtime stand-in below. */
const preludes = new WeakMap<Writable, ResponseSink>();

const runtimeStandIn: StreamingRuntime = {
  streamifyResponse: (handler) => handler,
  HttpResponseStream: {
    from(stream, prelude) {
      preludes.get(stream)?.start(prelude.statusCode ?? 200, prelude.headers ?? {});
      return stream;
    },
  },
};
let standInUsers = 0;
let replacedGlobal: unknown;

/**
 * The streaming handler through Hono's `streamHandle`, written into `sink`. Outside Lambda the runtime's
 * `awslambda` global is stood in for while calls run, as the Lambda Node.js runtime defines it, so the path
 * tested is the deployed one.
 */
export async function streamIntoSink(
  app: Hono,
  event: APIGatewayProxyEvent,
  sink: ResponseSink,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<void> {
  const decoder = new StringDecoder('utf8');
  const responseStream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const text = decoder.write(chunk);
      if (text !== '') sink.write(text);
      callback();
    },
    final(callback) {
      const rest = decoder.end();
      if (rest !== '') sink.write(rest);
      callback();
    },
  });
  preludes.set(responseStream, sink);
  const global = globalThis as { awslambda?: unknown };
  if (standInUsers++ === 0) {
    replacedGlobal = global.awslambda;
    global.awslambda = runtimeStandIn;
  }
  try {
    const handler = streamHandle(app) as unknown as (
      event: APIGatewayProxyEvent,
      stream: Writable,
      context: unknown,
    ) => Promise<void>;
    await handler(event, responseStream, context ?? {});
  } finally {
    if (--standInUsers === 0) global.awslambda = replacedGlobal;
  }
  if (!responseStream.writableFinished) await new Promise((resolve) => responseStream.once('finish', resolve));
  sink.end();
}
