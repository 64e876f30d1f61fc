/**
 * The API function behind API Gateway (REST, proxy integration): the one HTTP application the embedded server
 * runs (lib/core/api/app.ts), here through Hono's Lambda adapter, over the pipeline port implemented with the
 * result store. Completions start the pipeline and read the request's record back until it ends.
 *   handler        buffered: JSON, or the whole SSE body once the request ends (202 + poll URL if it runs long)
 *   streamHandler  API Gateway response streaming: SSE chunks written as the record grows
 */
import './bundle-require';
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { Hono } from 'hono';
import { handle, streamHandle } from 'hono/aws-lambda';
import { loadTokenizer, promptCounter } from '../lib/adapters/tokenizers';
import { systemFingerprint } from '../lib/core/api/api-defaults';
import { createApiApp } from '../lib/core/api/app';
import { parseCorsOrigins } from '../lib/core/api/cors';
import { DEPLOYMENT_ENV } from '../lib/core/engine/deployment-env';
import { BEDROCK_CAPABILITIES } from '../lib/adapters/bedrock-tools';
import { REFERENCE_CAPABILITIES } from '../lib/core/api/capabilities';
import type { Tokenizer } from '../lib/core/ports';
import { isContentTypeBinary, lambdaContextOf, streamIntoSink, type ResponseSink } from './api-gateway';
import { lambdaPipeline } from './api-pipeline';
import { defaultWiring, type Wiring } from './wiring';

export type { ResponseSink };

/** Left unspent of the function's own timeout, to write the last event and close the stream. */
const STREAM_MARGIN_MS = 2000;
/** Left unspent of the function's own timeout by a buffered response. */
const RESPONSE_MARGIN_MS = 1000;

type RemainingTime = Pick<Context, 'getRemainingTimeInMillis'> | undefined;

/** The served family's tokenizer (or the wiring's), loaded on the first request: only this function counts prompts. */
export function loadPromptTokenizer(w: Wiring): Promise<Tokenizer> {
  return w.promptTokenizer ? w.promptTokenizer() : loadTokenizer(w.tokenizerFamily);
}

/** The application for a wiring, in its two transports: buffered (202 past the budget) and streamed. */
interface ApiApps {
  readonly buffered: Hono;
  readonly streaming: Hono;
}

const apps = new WeakMap<Wiring, ApiApps>();

function appsFor(w: Wiring): ApiApps {
  let built = apps.get(w);
  if (built) return built;
  const backendName = w.settings.backend;
  const common = {
    pipeline: lambdaPipeline(w),
    model: { id: w.config.model.id, maxContext: w.config.model.maxContext },
    limits: w.limits,
    maxBodyBytes: w.maxBodyBytes,
    backend: backendName === 'bedrock' ? BEDROCK_CAPABILITIES : REFERENCE_CAPABILITIES,
    systemFingerprint: systemFingerprint(backendName),
    // The vocabulary loads on the first completion, not at cold start.
    countPrompt: async (...args: Parameters<ReturnType<typeof promptCounter>>) =>
      promptCounter(await loadPromptTokenizer(w), w.tokenizerFamily)(...args),
    // API Gateway checks the key (the authorizer reads it as Bearer or x-api-key; the usage plan) first.
    apiKey: null,
    // API Gateway answers preflights; the function adds the allow headers to every response.
    corsOrigins: parseCorsOrigins(w.settings.corsOrigins ?? undefined, DEPLOYMENT_ENV.corsOrigins),
    newId: randomUUID,
    nowMs: () => w.wallClockMs(),
    log: {
      debug: (message: string, attributes?: Record<string, unknown>) => w.logger.debug?.(message, attributes),
      warn: (message: string, attributes?: Record<string, unknown>) => w.logger.warn(message, attributes),
      error: (message: string, attributes?: Record<string, unknown>) => w.logger.error(message, attributes),
    },
  };
  const remaining = (context: RemainingTime, margin: number): number =>
    context ? context.getRemainingTimeInMillis() - margin : Infinity;
  built = {
    buffered: createApiApp({
      ...common,
      bufferStreams: true,
      responseDeadlineMs: (c) =>
        w.wallClockMs() +
        Math.max(0, Math.min(w.responseBudgetMs, remaining(lambdaContextOf(c.env), RESPONSE_MARGIN_MS))),
    }) as unknown as Hono,
    streaming: createApiApp({
      ...common,
      responseDeadlineMs: (c) =>
        w.wallClockMs() +
        Math.max(0, Math.min(w.config.requestTimeoutMs, remaining(lambdaContextOf(c.env), STREAM_MARGIN_MS))),
    }) as unknown as Hono,
  };
  apps.set(w, built);
  return built;
}

export function createApiHandler(
  wiring: () => Promise<Wiring>,
): (event: APIGatewayProxyEvent, context?: Context) => Promise<APIGatewayProxyResult> {
  return async (event, context) => {
    const app = appsFor(await wiring()).buffered;
    const result = (await handle(app, { isContentTypeBinary })(
      event as never,
      context as never,
    )) as APIGatewayProxyResult;
    return singleValueHeaders(result);
  };
}

/** Headers as one value each (what this API sends), in `headers`, whichever form the event came in. */
function singleValueHeaders(result: APIGatewayProxyResult): APIGatewayProxyResult {
  if (result.multiValueHeaders === undefined) return result;
  const { multiValueHeaders, ...rest } = result;
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(multiValueHeaders)) headers[name] = values.map(String).join(', ');
  return { ...rest, headers: { ...headers, ...(rest.headers as Record<string, string> | undefined) } };
}

/**
 * Answers one event into `sink` the way `streamHandler` does: streamed SSE for `stream: true` completions, any
 * other response written whole. Callable without the Lambda runtime.
 */
export async function streamApiEvent(
  event: APIGatewayProxyEvent,
  sink: ResponseSink,
  w: Wiring,
  context?: RemainingTime,
): Promise<void> {
  await streamIntoSink(appsFor(w).streaming, event, sink, context);
}

/** The process's wiring, built on first use; exported so a cold start can be measured without an invocation. */
export const initWiring = defaultWiring('disagg-api');

export const handler = createApiHandler(initWiring);

/**
 * Set by the Lambda Node.js runtime. Tested by its method, not its presence: bundled SDK packages
 * create an empty `globalThis.awslambda` of their own outside Lambda.
 */
const lambdaRuntime = (globalThis as { awslambda?: { streamifyResponse?: unknown } }).awslambda;

/** The wiring is built on the first invocation, so the streamed app is looked up per request. */
const lazyStreamingApp = new Hono().all('*', async (c) =>
  appsFor(await initWiring()).streaming.fetch(c.req.raw, c.env),
);

export const streamHandler =
  typeof lambdaRuntime?.streamifyResponse === 'function' ? streamHandle(lazyStreamingApp) : undefined;
