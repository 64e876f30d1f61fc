/**
 * One thread of `serve --workers` (started by stage-threads.ts): the store thread, hosting the
 * handoff queue (and, without Redis, the KV blobs, records and cancellation markers); or a stage
 * thread, running the prefill or the decode stage over those stores.
 */
import { randomBytes } from 'node:crypto';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { fastestCrc32c } from '../adapters/checksum-native';
import { RealClock } from '../adapters/clock-real';
import { MemoryQueue } from '../adapters/queue-memory';
import { createRedis } from '../adapters/redis-connection';
import { tracingFromEnv } from '../adapters/telemetry';
import { engineConfig, type EngineConfig } from '../core/engine/config';
import type { CancellationMarker } from '../core/engine/decode-stage';
import type { RequestEvent, RequestRecord } from '../core/engine/record';
import { RequestTracker } from '../core/engine/tracker';
import type { EventBus, KvStore, Queue, QueueMessage } from '../core/ports';
import { createGenerationBackend } from './backends';
import {
  KV_METHODS,
  QUEUE_METHODS,
  remoteResultStore,
  type DecodeControl,
  type PrefillControl,
  type StoreHost,
  type ThreadData,
  type ThreadMessage,
} from './stage-threads';
import { DecodeWorker, PrefillWorker, trackerDeps, type RuntimeAdapters } from './stages';
import { pipelineStores } from './stores';
import { RpcClient, serveObjects } from './thread-rpc';

const data = workerData as ThreadData;
const config = engineConfig(data.options.engine);
const toMain = (message: ThreadMessage): void => parentPort!.postMessage(message);

/** One consumer thread's view of the queue: the deliveries it holds are given back when it is gone. */
class ConsumerView {
  private readonly receipts = new Set<string>();
  private gone = false;
  readonly queue: Queue;

  constructor(private readonly shared: MemoryQueue) {
    this.queue = {
      send: (body) => shared.send(body),
      receive: async (max, waitMs) => {
        const messages: QueueMessage[] = await shared.receive(max, waitMs);
        // A long poll that returns after its thread died must not leave the messages with nobody.
        if (this.gone) {
          await Promise.all(messages.map((m) => shared.release(m.receipt)));
          return [];
        }
        for (const m of messages) this.receipts.add(m.receipt);
        return messages;
      },
      ack: (receipt) => (this.receipts.delete(receipt), shared.ack(receipt)),
      release: (receipt, delayMs) => (this.receipts.delete(receipt), shared.release(receipt, delayMs)),
      depth: () => shared.depth(),
      deadLetters: () => shared.deadLetters(),
    };
  }

  /** Gives back every delivery not acknowledged; returns how many. */
  async release(): Promise<number> {
    this.gone = true;
    const receipts = [...this.receipts];
    this.receipts.clear();
    await Promise.all(receipts.map((r) => this.shared.release(r)));
    return receipts.length;
  }
}

/**
 * The KV store as served to the stage threads. A blob is read once (decode frees it right after reading
 * it, loadKv), so reading it here also forgets it and its buffer moves to the reader without a copy.
 */
function servedKv(kv: KvStore): KvStore {
  return {
    put: (key, bytes, ttlMs) => kv.put(key, bytes, ttlMs),
    get: async (key) => {
      const bytes = await kv.get(key);
      if (bytes) await kv.delete(key);
      return bytes;
    },
    delete: (key) => kv.delete(key),
    count: () => kv.count(),
  };
}

function runStore(mainPort: MessagePort): void {
  // Visibility as the one-thread server's: a live decode keeps its delivery; a dead one's is given back on detach.
  const queue = new MemoryQueue({ visibilityTimeoutMs: config.requestTimeoutMs + 60_000, maxReceives: 5 });
  const stores = pipelineStores(null);
  const served = { kv: servedKv(stores.kv), results: stores.results, cancellations: stores.cancellations };
  const consumers = new Map<string, ConsumerView>();
  const host: StoreHost = {
    async attach(port, consumer) {
      const view = new ConsumerView(queue);
      consumers.set(consumer, view);
      serveObjects(port, { ...served, queue: view.queue });
    },
    async detach(consumer) {
      const view = consumers.get(consumer);
      consumers.delete(consumer);
      return view ? view.release() : 0;
    },
    close: () => queue.close(),
  };
  serveObjects(mainPort, { ...served, host });
}

/**
 * The store thread's KV store from a stage thread. A read there hands the blob over and forgets it
 * (servedKv), so the delete decode sends right after its read costs no call.
 */
function remoteKv(rpc: RpcClient): KvStore {
  const remote = rpc.remote<KvStore>('kv', KV_METHODS);
  const taken = new Set<string>();
  return {
    put: (key, bytes, ttlMs) => remote.put(key, bytes, ttlMs),
    get: async (key) => {
      const bytes = await remote.get(key);
      if (bytes) taken.add(key);
      return bytes;
    },
    delete: async (key) => {
      if (!taken.delete(key)) await remote.delete(key);
    },
    count: () => remote.count(),
  };
}

/**
 * Least wall ms between two messages of tokens and timeline stamps only: a decode step is a turn of the event
 * loop, so at timeScale 0 a message per turn would be a message (and a wake of the main thread) per token.
 */
const RELAY_EVERY_MS = 1;

/**
 * Events published in this thread, sent to the main thread in one message per turn of the event loop. Tokens
 * and timeline stamps that follow a message by less than RELAY_EVERY_MS wait for the rest of it, so a burst
 * of steps travels as a few messages; a token after a pause, a state change and a request's end go at once.
 */
class RelayEventBus implements EventBus<RequestEvent> {
  private pending: [string, RequestEvent][] = [];
  private immediate: NodeJS.Immediate | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastSentMs = -Infinity;

  constructor(private readonly port: MessagePort) {}

  publish(requestId: string, event: RequestEvent): void {
    this.pending.push([requestId, event]);
    if (this.immediate) return;
    const sinceMs = performance.now() - this.lastSentMs;
    if ((event.type === 'token' || event.type === 'timeline') && sinceMs < RELAY_EVERY_MS) {
      this.timer ??= setTimeout(() => this.flush(), RELAY_EVERY_MS - sinceMs);
      return;
    }
    this.immediate = setImmediate(() => this.flush());
  }

  /** Nobody listens in a stage thread: the main thread's bus has the listeners. */
  subscribe(): () => void {
    return () => undefined;
  }

  flush(): void {
    if (this.immediate) clearImmediate(this.immediate);
    if (this.timer) clearTimeout(this.timer);
    this.immediate = null;
    this.timer = null;
    if (this.pending.length === 0) return;
    const events = this.pending;
    this.pending = [];
    this.lastSentMs = performance.now();
    this.port.postMessage({ events: JSON.stringify(events) } satisfies ThreadMessage);
  }
}

async function runStage(role: 'prefill' | 'decode', storePort: MessagePort, controlPort: MessagePort): Promise<void> {
  const { options } = data;
  const store = new RpcClient(storePort);
  const redis = options.redisUrl
    ? createRedis({ url: options.redisUrl, connectionName: `disagg-serve-${role}` })
    : null;
  const stores = redis
    ? pipelineStores(redis, options.redisPrefix)
    : {
        kv: remoteKv(store),
        results: remoteResultStore<RequestRecord>(store, 'results'),
        cancellations: remoteResultStore<CancellationMarker>(store, 'cancellations'),
      };
  const events = new RelayEventBus(controlPort);
  // Its own exporter, from the same OTEL_* environment as the main thread: spans join by traceparent, not by process.
  const tracing = tracingFromEnv(process.env, { serviceName: 'disagg' });
  const adapters: RuntimeAdapters = {
    tracing,
    clock: new RealClock({ timeScale: config.timeScale }),
    queue: store.remote<Queue>('queue', QUEUE_METHODS),
    // Claims stay in the decode thread: there is one, and its claims die with it, as a dead worker's lapse.
    ...(options.claimLeaseMs ? { claimLeaseMs: options.claimLeaseMs } : {}),
    ...stores,
    backend: await createGenerationBackend(options.backend),
    events,
    randomKey: () => randomBytes(18).toString('base64url'),
    wallClockMs: () => performance.timeOrigin + performance.now(),
    crc32c: fastestCrc32c().crc32c,
    onError: (err, context) =>
      toMain({ log: `error in the ${role} thread while ${context}: ${(err as Error).message}` }),
  };
  const stopped = async (stop: () => Promise<void>): Promise<void> => {
    await stop();
    events.flush();
    await tracing.shutdown().catch(() => undefined);
    if (redis) await redis.quit().catch(() => redis.disconnect());
  };
  if (role === 'prefill') serveObjects(controlPort, { stage: prefillControl(config, adapters, stopped) });
  else {
    const worker = new DecodeWorker(config, adapters);
    worker.start();
    serveObjects(controlPort, { stage: { stop: () => stopped(() => worker.stop()) } satisfies DecodeControl });
  }
}

function prefillControl(
  config: EngineConfig,
  adapters: RuntimeAdapters,
  stopped: (stop: () => Promise<void>) => Promise<void>,
): PrefillControl {
  const worker = new PrefillWorker(config, adapters, data.options.prefillConcurrency);
  return {
    enqueue: (job, recordJson, emulatedMs) =>
      worker.enqueue({
        job: { ...job, promptIds: Array.from(job.promptIds) },
        tracker: new RequestTracker(JSON.parse(recordJson) as RequestRecord, trackerDeps(adapters), config.resultTtlMs),
        emulatedMs,
      }),
    cancel: (id) => worker.cancel(id),
    stop: () => stopped(() => worker.stop()),
  };
}

// Last, once the classes above exist.
if (data.role === 'store') runStore(data.storePort);
else await runStage(data.role, data.storePort, data.controlPort!);
toMain({ ready: true });
