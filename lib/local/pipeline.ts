/**
 * The pipeline behind `disagg serve`: its stores (memory, or Redis for KV, records and cancellation
 * markers), the generation backend and the runtime, in this thread or (workers) in stage threads.
 */
import { randomBytes } from 'node:crypto';
import { fastestCrc32c } from '../adapters/checksum-native';
import { RealClock } from '../adapters/clock-real';
import { MemoryEventBus } from '../adapters/events-memory';
import { bufferedRandomKey } from './random-key';
import { MemoryQueue } from '../adapters/queue-memory';
import type { Tracing } from '../adapters/telemetry';
import { createRedis } from '../adapters/redis-connection';
import type { EngineConfig, EngineConfigInput } from '../core/engine/config';
import type { RequestEvent, RequestRecord } from '../core/engine/record';
import type { GenerationBackend, KvStore, ResultStore } from '../core/ports';
import type { Redis } from 'ioredis';
import type { DependencyHealth } from './embedded-pipeline';
import { createGenerationBackend, type BackendSpec } from './backends';
import { EmbeddedRuntime, type PipelineRuntime } from './runtime';
import { StageThreads } from './stage-threads';
import { Reconciler } from './reconciler';
import { DEFAULT_REDIS_PREFIX, pipelineStores } from './stores';

export interface PipelineOptions {
  readonly config: EngineConfig;
  /** The input `config` was built from: stage threads build their own from it. */
  readonly engine: EngineConfigInput;
  readonly redisUrl: string | null;
  readonly redisPrefix?: string;
  /** A description (threads build their own backend from it), or a backend to use in this thread. */
  readonly backend: BackendSpec | GenerationBackend;
  readonly prefillConcurrency: number;
  /** Run prefill and decode in a worker thread of their own (with a store thread beside it). */
  readonly workers: boolean;
  readonly log: (line: string) => void;
  /** Stage spans in this thread (stage threads build theirs from the same OTEL_* environment). */
  readonly tracing?: Tracing;
}

export interface RunningPipeline {
  readonly runtime: PipelineRuntime;
  /** The generation backend's name (in stage threads: its kind, or `module` for one built by a module). */
  readonly backendName: string;
  readonly kv: KvStore;
  readonly results: ResultStore<RequestRecord>;
  readonly events: MemoryEventBus<RequestEvent>;
  /** Each store the pipeline depends on, checked now (GET /healthz). */
  dependencies(): Promise<Record<string, DependencyHealth>>;
  /** Stops taking work, waits for what runs to end, closes the stores. */
  close(): Promise<void>;
}

/** How long GET /healthz waits for a store's answer before calling it unavailable. */
const HEALTH_CHECK_TIMEOUT_MS = 1000;

/** The stores' health: Redis answering PING within a second, or memory (always there). */
export async function storeHealth(redis: Redis | null): Promise<Record<string, DependencyHealth>> {
  if (!redis) return { store: { status: 'ok', latencyMs: 0 } };
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), HEALTH_CHECK_TIMEOUT_MS);
      }),
    ]);
    return { store: { status: 'ok', latencyMs: round(performance.now() - started) } };
  } catch {
    return {
      store: {
        status: 'unavailable',
        latencyMs: round(performance.now() - started),
        reason: `Redis did not answer PING within ${HEALTH_CHECK_TIMEOUT_MS} ms`,
      },
    };
  } finally {
    clearTimeout(timer);
  }
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

export async function startPipeline(options: PipelineOptions): Promise<RunningPipeline> {
  const prefix = options.redisPrefix ?? DEFAULT_REDIS_PREFIX;
  // Records in a shared store carry this process's id, so a server that finds them after this one died ends them.
  const ownerId = options.redisUrl ? `serve-${randomBytes(9).toString('base64url')}` : undefined;
  const reconcile = async (
    redis: Redis | null,
    results: ResultStore<RequestRecord>,
    events: MemoryEventBus<RequestEvent>,
  ): Promise<Reconciler | null> => {
    if (!redis || !ownerId) return null;
    const reconciler = new Reconciler({
      redis,
      prefix,
      ownerId,
      results,
      events,
      resultTtlMs: options.config.resultTtlMs,
      log: options.log,
    });
    await reconciler.start();
    return reconciler;
  };
  if (options.workers) {
    if (!('kind' in options.backend)) {
      throw new Error('with workers, each stage thread builds its own backend: pass a backend description, not one');
    }
    const threads = await StageThreads.start(
      {
        engine: options.engine,
        redisUrl: options.redisUrl,
        redisPrefix: prefix,
        backend: options.backend,
        prefillConcurrency: options.prefillConcurrency,
        ...(ownerId ? { ownerId } : {}),
      },
      options.log,
    );
    const reconciler = await reconcile(threads.redis, threads.results, threads.events);
    return {
      runtime: threads,
      backendName: options.backend.kind,
      kv: threads.kv,
      results: threads.results,
      events: threads.events,
      dependencies: () => storeHealth(threads.redis),
      async close() {
        await reconciler?.stop();
        await threads.close();
      },
    };
  }
  const { config, log } = options;
  const redis = options.redisUrl ? createRedis({ url: options.redisUrl, connectionName: 'disagg-serve' }) : null;
  const stores = pipelineStores(redis, prefix);
  // The handoff queue stays in memory: one process; Redis and SQS queues serve multi-process deployments.
  const queue = new MemoryQueue({ visibilityTimeoutMs: config.requestTimeoutMs + 60_000, maxReceives: 5 });
  const events = new MemoryEventBus<RequestEvent>();
  const backend = 'kind' in options.backend ? await createGenerationBackend(options.backend) : options.backend;
  const runtime = new EmbeddedRuntime(
    config,
    {
      clock: new RealClock({ timeScale: config.timeScale }),
      queue,
      ...stores,
      backend,
      events,
      randomKey: bufferedRandomKey(),
      wallClockMs: () => performance.timeOrigin + performance.now(),
      crc32c: fastestCrc32c().crc32c,
      onError: (err, context) => log(`error while ${context}: ${describeError(err)}`),
      ...(options.tracing ? { tracing: options.tracing } : {}),
      ...(ownerId ? { ownerId } : {}),
    },
    options.prefillConcurrency,
  );
  runtime.start();
  const reconciler = await reconcile(redis, stores.results, events);
  return {
    runtime,
    backendName: backend.name,
    kv: stores.kv,
    results: stores.results,
    events,
    dependencies: () => storeHealth(redis),
    async close() {
      await runtime.stop();
      await reconciler?.stop();
      await queue.close();
      // A Redis that is down cannot be told goodbye: drop the connection instead.
      if (redis) await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** An error for the operator's log: a store's own text (its cause) included, which clients never see. */
function describeError(err: unknown): string {
  const e = err as Error;
  return e.cause instanceof Error ? `${e.message} (${e.cause.message})` : e.message;
}
