/**
 * Starts `disagg serve`: the pipeline (lib/local/pipeline.ts: stores, backend, runtime, in this thread
 * or in stage threads) and the HTTP API in front of it.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { MemoryEventBus } from '../adapters/events-memory';
import { loadTokenizer, promptCounter, tokenizerFamily } from '../adapters/tokenizers';
import { systemFingerprint } from '../core/api/api-defaults';
import { BEDROCK_CAPABILITIES } from '../adapters/bedrock-tools';
import { REFERENCE_CAPABILITIES, type BackendCapabilities } from '../core/api/capabilities';
import { engineConfig, type EngineConfig, type EngineConfigInput } from '../core/engine/config';
import type { ApiLimits } from '../core/api/limits';
import type { RequestEvent, RequestRecord } from '../core/engine/record';
import type { GenerationBackend, KvStore, ResultStore } from '../core/ports';
import type { Logger } from 'pino';
import { tracingFromEnv, type Tracing } from '../adapters/telemetry';
import { formatPool } from '../core/emulator';
import { DASHBOARD_PATH } from './dashboard';
import { RequestTracker } from '../core/engine/tracker';
import { AdmittedRequests } from './embedded-pipeline';
import { createHttpApi } from './http-server';
import { ServeObservability } from './observability';
import { createLogger, type LogLevel } from './request-log';
import { startPipeline } from './pipeline';
import type { PipelineRuntime } from './runtime';

export interface ServeOptions {
  readonly engine?: EngineConfigInput;
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  /** Put KV blobs, results and cancellation markers in Redis at this URL. */
  readonly redisUrl?: string | null;
  /** Key prefix in Redis, so several servers (or test runs) can share one. */
  readonly redisPrefix?: string;
  /** null turns authentication off; undefined generates a key. */
  readonly apiKey?: string | null;
  readonly backend?: 'reference' | 'bedrock';
  readonly bedrockModelId?: string;
  /** A backend to use instead of `backend` (benchmarks inject one that does no model compute). */
  readonly generationBackend?: GenerationBackend;
  readonly limits?: Partial<ApiLimits>;
  readonly maxBodyBytes?: number;
  /** With `workers`: a module (file URL) whose default export builds the backend in each stage thread. */
  readonly backendModule?: string;
  readonly prefillConcurrency?: number;
  /** Run the prefill and decode stages in a worker thread of their own (`disagg serve --workers`). */
  readonly workers?: boolean;
  /** Origins a browser page may call the API from (`*` for any); none by default. */
  readonly corsOrigins?: readonly string[];
  /** Same as logLevel 'debug' (when logLevel is not given). */
  readonly debug?: boolean;
  /** Operator lines: unexpected errors in the API and the stages. */
  readonly log?: (line: string) => void;
  /**
   * The structured log (a JSON line per request, warnings for ignored request fields) at this level and above,
   * to standard output; default none, unless `logger` is given.
   */
  readonly logLevel?: LogLevel;
  /** A pino logger for the structured log instead (tests pass one over a stream). */
  readonly logger?: Logger;
  /** Spans of each request and stage; default what the OTEL_* environment asks for (off when it asks nothing). */
  readonly tracing?: Tracing;
}

export const API_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxBodyBytes: 1024 * 1024,
  // The reference model runs on this CPU: O(n^2) attention keeps prompts modest.
  limits: { maxPromptTokens: 8192, maxOutputTokens: 4096, defaultMaxTokens: 128 },
} as const;

/** Wall ms a shutdown waits for admitted requests to end before it ends the rest itself, telling each why. */
export const DEFAULT_DRAIN_MS = 10_000;

export interface CloseOptions {
  /** How long to let admitted requests finish (default DEFAULT_DRAIN_MS); those left then end failed, in-band. */
  readonly drainMs?: number;
}

/** What a shutdown did with the requests it found admitted. */
export interface DrainReport {
  /** Admitted when the shutdown began. */
  readonly inFlight: number;
  /** Still running at the drain deadline: ended failed (code `shutting_down`), each client told why. */
  readonly endedAtDeadline: number;
}

export interface RunningServer {
  readonly url: string;
  /** The live dashboard's address (the key goes in its `#key=` fragment, which never reaches a server). */
  readonly dashboardUrl: string;
  readonly observability: ServeObservability;
  readonly apiKey: string | null;
  readonly config: EngineConfig;
  readonly runtime: PipelineRuntime;
  readonly kv: KvStore;
  readonly results: ResultStore<RequestRecord>;
  readonly events: MemoryEventBus<RequestEvent>;
  /** Requests admitted and not yet ended. */
  inFlight(): number;
  /**
   * Shuts down in order: stops accepting connections and requests (new ones get 503 `shutting_down`), lets every
   * admitted request finish until the drain deadline, ends those left failed with the reason in-band, closes the
   * connections once their responses are written, then the pipeline and its stores.
   */
  close(options?: CloseOptions): Promise<DrainReport>;
}

export function generateApiKey(): string {
  return `sk-disagg-${randomBytes(24).toString('base64url')}`;
}

export async function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const config = engineConfig(options.engine);
  const log = options.log ?? (() => undefined);
  // Prompts are counted in the served model's vocabulary; the reference backend's words are Llama 3 tokens whatever it is.
  const promptFamily = tokenizerFamily(config.model.id);
  const promptTokenizer = await loadTokenizer(promptFamily);
  const tracing = options.tracing ?? tracingFromEnv(process.env, { serviceName: 'disagg' });
  const pipeline = await startPipeline({
    tracing,
    config,
    engine: options.engine ?? {},
    redisUrl: options.redisUrl ?? null,
    ...(options.redisPrefix !== undefined ? { redisPrefix: options.redisPrefix } : {}),
    backend:
      options.generationBackend ??
      (options.backendModule
        ? { kind: 'module', url: options.backendModule }
        : options.backend === 'bedrock'
          ? { kind: 'bedrock', modelId: options.bedrockModelId }
          : { kind: 'reference' }),
    prefillConcurrency: options.prefillConcurrency ?? 1,
    workers: options.workers ?? false,
    log,
  });
  const { runtime, kv, results, events, backendName } = pipeline;
  const apiKey = options.apiKey === undefined ? generateApiKey() : options.apiKey;
  const backendCapabilities: BackendCapabilities =
    backendName === 'bedrock' ? BEDROCK_CAPABILITIES : { ...REFERENCE_CAPABILITIES, name: backendName };
  const logLevel = options.logLevel ?? (options.debug ? 'debug' : undefined);
  const observability = new ServeObservability({
    runtime,
    events,
    prefillReplicas: options.prefillConcurrency ?? 1,
    logger: options.logger ?? (logLevel && logLevel !== 'silent' ? createLogger(logLevel) : null),
    tracing,
    setup: `${config.model.id}: prefill ${formatPool(config.prefillPool)}, decode ${formatPool(config.decodePool)}, timeScale ${config.timeScale}`,
  });
  const admitted = new AdmittedRequests(events);
  const server = createHttpApi({
    runtime,
    events,
    admitted,
    dependencies: () => pipeline.dependencies(),
    observability,
    countPrompt: promptCounter(promptTokenizer, promptFamily),
    backend: backendCapabilities,
    systemFingerprint: systemFingerprint(backendName),
    limits: { ...API_DEFAULTS.limits, ...options.limits },
    maxBodyBytes: options.maxBodyBytes ?? API_DEFAULTS.maxBodyBytes,
    apiKey,
    corsOrigins: options.corsOrigins ?? [],
    log,
  });
  const host = options.host ?? API_DEFAULTS.host;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? API_DEFAULTS.port, host, () => resolve());
    });
  } catch (err) {
    await observability.close();
    await pipeline.close();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url,
    dashboardUrl: `${url}${DASHBOARD_PATH}${apiKey ? `#key=${encodeURIComponent(apiKey)}` : ''}`,
    observability,
    apiKey,
    config,
    runtime,
    kv,
    results,
    events,
    inFlight: () => admitted.size,
    async close(closeOptions: CloseOptions = {}): Promise<DrainReport> {
      const drainMs = closeOptions.drainMs ?? DEFAULT_DRAIN_MS;
      const inFlight = admitted.size;
      admitted.stopAdmitting(
        'the server is shutting down and takes no new requests; send the request again (to another replica)',
      );
      // Stop accepting first: no new connection from here; idle keep-alive ones are closed as they go idle.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const idle = setInterval(() => server.closeIdleConnections(), 50);
      server.closeIdleConnections();
      const left = await admitted.drained(Date.now() + drainMs);
      if (left.length > 0) {
        await runtime.halt?.();
        const message = `the server shut down before this request finished (its ${drainMs / 1000} s drain deadline passed); send it again`;
        await Promise.all(
          left.map(async (record) => {
            const latest = (await results.get(record.id).catch(() => null)) ?? record;
            const tracker = new RequestTracker(
              latest,
              { results, events, wallClockMs: () => performance.timeOrigin + performance.now() },
              config.resultTtlMs,
            );
            await tracker
              .finish('failed', { code: 'shutting_down', message })
              .catch((err: unknown) => log(`error while ending ${record.id} at shutdown: ${(err as Error).message}`));
          }),
        );
      }
      // The last events are written: give responses a moment to flush, then close what is still open.
      const force = setTimeout(() => server.closeAllConnections(), 1000);
      await closed;
      clearInterval(idle);
      clearTimeout(force);
      await pipeline.close();
      await observability.close();
      return { inFlight, endedAtDeadline: left.length };
    },
  };
}
