/**
 * Starts the embedded pipeline: adapters (memory, or Redis for KV and results when REDIS_URL is
 * set), the reference or Bedrock backend, the runtime and the HTTP API.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { awsClientConfig } from '../adapters/aws-clients';
import { fastestCrc32c } from '../adapters/checksum-native';
import { BedrockBackend } from '../adapters/backend-bedrock';
import { ReferenceBackend } from '../adapters/backend-reference';
import { RealClock } from '../adapters/clock-real';
import { MemoryEventBus } from '../adapters/events-memory';
import { MemoryKvStore } from '../adapters/kv-memory';
import { RedisKvStore } from '../adapters/kv-redis';
import { MemoryQueue } from '../adapters/queue-memory';
import { createRedis } from '../adapters/redis-connection';
import { MemoryResultStore } from '../adapters/result-memory';
import { RedisResultStore } from '../adapters/result-redis';
import { llama3Tokenizer } from '../adapters/tokenizer-llama3';
import { loadTokenizer, tokenizerFamily } from '../adapters/tokenizers';
import { engineConfig, type EngineConfig, type EngineConfigInput } from '../core/engine/config';
import type { CancellationMarker } from '../core/engine/decode-stage';
import type { ApiLimits } from '../core/api/openai';
import type { RequestEvent, RequestRecord } from '../core/engine/record';
import type { GenerationBackend, KvStore, ResultStore } from '../core/ports';
import { createHttpApi } from './http-server';
import { EmbeddedRuntime } from './runtime';

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
  readonly prefillConcurrency?: number;
  readonly log?: (line: string) => void;
}

export const API_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxBodyBytes: 1024 * 1024,
  // The reference model runs on this CPU: O(n^2) attention keeps prompts modest.
  limits: { maxPromptTokens: 8192, maxOutputTokens: 4096, defaultMaxTokens: 128 },
} as const;

export interface RunningServer {
  readonly url: string;
  readonly apiKey: string | null;
  readonly config: EngineConfig;
  readonly runtime: EmbeddedRuntime;
  readonly kv: KvStore;
  readonly results: ResultStore<RequestRecord>;
  readonly events: MemoryEventBus<RequestEvent>;
  close(): Promise<void>;
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
  const tokenizer = llama3Tokenizer();
  const redis = options.redisUrl ? createRedis({ url: options.redisUrl, connectionName: 'disagg-serve' }) : null;
  const prefix = options.redisPrefix ?? 'disagg:';
  // The stages never write a blob after putting it, nor after reading it: no need to copy MBs in and out.
  const kv: KvStore = redis
    ? new RedisKvStore({ redis, prefix: `${prefix}kv:` })
    : new MemoryKvStore({ ownership: 'handover' });
  const results: ResultStore<RequestRecord> = redis
    ? new RedisResultStore<RequestRecord>({ redis, prefix: `${prefix}result:` })
    : new MemoryResultStore<RequestRecord>();
  const cancellations: ResultStore<CancellationMarker> = redis
    ? new RedisResultStore<CancellationMarker>({ redis, prefix: `${prefix}cancel:` })
    : new MemoryResultStore<CancellationMarker>();
  // The handoff queue stays in memory: one process; Redis and SQS queues serve multi-process deployments.
  const queue = new MemoryQueue({ visibilityTimeoutMs: config.requestTimeoutMs + 60_000, maxReceives: 5 });
  const events = new MemoryEventBus<RequestEvent>();
  const backend: GenerationBackend =
    options.generationBackend ??
    (options.backend === 'bedrock'
      ? new BedrockBackend({
          client: new BedrockRuntimeClient(awsClientConfig()),
          modelId: requireBedrockModel(options.bedrockModelId),
        })
      : new ReferenceBackend({ tokenizer }));
  const runtime = new EmbeddedRuntime(
    config,
    {
      clock: new RealClock({ timeScale: config.timeScale }),
      queue,
      kv,
      results,
      cancellations,
      backend,
      events,
      randomKey: () => randomBytes(18).toString('base64url'),
      wallClockMs: () => performance.timeOrigin + performance.now(),
      crc32c: fastestCrc32c().crc32c,
      onError: (err, context) => log(`error while ${context}: ${(err as Error).message}`),
    },
    options.prefillConcurrency ?? 1,
  );
  const apiKey = options.apiKey === undefined ? generateApiKey() : options.apiKey;
  const server = createHttpApi({
    runtime,
    events,
    tokenizer: promptTokenizer,
    tokenizerFamily: promptFamily,
    limits: { ...API_DEFAULTS.limits, ...options.limits },
    maxBodyBytes: options.maxBodyBytes ?? API_DEFAULTS.maxBodyBytes,
    apiKey,
    log,
  });
  runtime.start();
  const host = options.host ?? API_DEFAULTS.host;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? API_DEFAULTS.port, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url,
    apiKey,
    config,
    runtime,
    kv,
    results,
    events,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await runtime.stop();
      await queue.close();
      if (redis) await redis.quit();
    },
  };
}

function requireBedrockModel(id: string | undefined): string {
  if (!id) throw new Error('--backend bedrock needs --bedrock-model-id (e.g. meta.llama3-3-70b-instruct-v1:0)');
  return id;
}
