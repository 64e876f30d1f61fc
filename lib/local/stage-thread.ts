/**
 * One thread of `serve --workers` (started by stage-threads.ts): the store thread, hosting the
 * handoff queue and decode claims (and, without Redis, the KV blobs, records and cancellation
 * markers); or a stage thread, running the prefill or the decode stage over those stores.
 */
import { randomBytes } from 'node:crypto';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { fastestCrc32c } from '../adapters/checksum-native';
import { MemoryClaimStore } from '../adapters/claims-memory';
import { RealClock } from '../adapters/clock-real';
import { MemoryQueue } from '../adapters/queue-memory';
import { createRedis } from '../adapters/redis-connection';
import { engineConfig, type EngineConfig } from '../core/engine/config';
import type { CancellationMarker } from '../core/engine/decode-stage';
import type { RequestEvent, RequestRecord } from '../core/engine/record';
import { RequestTracker } from '../core/engine/tracker';
import type { ClaimStore, EventBus, KvStore, Queue, QueueMessage, ResultStore } from '../core/ports';
import { createGenerationBackend } from './backends';
import {
  CLAIM_METHODS,
  KV_METHODS,
  QUEUE_METHODS,
  RESULT_METHODS,
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

/** One consumer thread's view of the queue and claims: what it holds is given back when it is gone. */
class ConsumerView {
  private readonly receipts = new Set<string>();
  private readonly held = new Map<string, string>();
  private gone = false;
  readonly queue: Queue;
  readonly claims: ClaimStore;

  constructor(queue: MemoryQueue, claims: MemoryClaimStore) {
    this.queue = {
      send: (body) => queue.send(body),
      receive: async (max, waitMs) => {
        const messages: QueueMessage[] = await queue.receive(max, waitMs);
        // A long poll that returns after its thread died must not leave the messages with nobody.
        if (this.gone) {
          await Promise.all(messages.map((m) => queue.release(m.receipt)));
          return [];
        }
        for (const m of messages) this.receipts.add(m.receipt);
        return messages;
      },
      ack: (receipt) => (this.receipts.delete(receipt), queue.ack(receipt)),
      release: (receipt, delayMs) => (this.receipts.delete(receipt), queue.release(receipt, delayMs)),
      depth: () => queue.depth(),
      deadLetters: () => queue.deadLetters(),
    };
    this.claims = {
      claim: async (key, owner, leaseMs) => {
        const taken = await claims.claim(key, owner, leaseMs);
        if (taken) this.held.set(key, owner);
        return taken;
      },
      release: (key, owner) => (this.held.delete(key), claims.release(key, owner)),
    };
    this.release = async () => {
      this.gone = true;
      const receipts = [...this.receipts];
      this.receipts.clear();
      await Promise.all(receipts.map((r) => queue.release(r)));
      for (const [key, owner] of this.held) await claims.release(key, owner);
      this.held.clear();
      return receipts.length;
    };
  }

  /** Gives back every delivery not acknowledged and drops every claim held; returns the deliveries given back. */
  readonly release: () => Promise<number>;
}

function runStore(mainPort: MessagePort): void {
  // Visibility as the one-thread server's: a live decode keeps its delivery; a dead one's is given back on detach.
  const queue = new MemoryQueue({ visibilityTimeoutMs: config.requestTimeoutMs + 60_000, maxReceives: 5 });
  const claims = new MemoryClaimStore();
  const stores = pipelineStores(null);
  const consumers = new Map<string, ConsumerView>();
  const host: StoreHost = {
    async attach(port, consumer) {
      const view = new ConsumerView(queue, claims);
      consumers.set(consumer, view);
      serveObjects(port, { ...stores, queue: view.queue, claims: view.claims });
    },
    async detach(consumer) {
      const view = consumers.get(consumer);
      consumers.delete(consumer);
      return view ? view.release() : 0;
    },
    close: () => queue.close(),
  };
  serveObjects(mainPort, { ...stores, host });
}

/** Events published in this thread, sent to the main thread in one message per turn of the event loop. */
class RelayEventBus implements EventBus<RequestEvent> {
  private pending: [string, RequestEvent][] = [];
  private scheduled = false;

  constructor(private readonly port: MessagePort) {}

  publish(requestId: string, event: RequestEvent): void {
    this.pending.push([requestId, event]);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Nobody listens in a stage thread: the main thread's bus has the listeners. */
  subscribe(): () => void {
    return () => undefined;
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const events = this.pending;
    this.pending = [];
    this.port.postMessage({ events } satisfies ThreadMessage);
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
        kv: store.remote<KvStore>('kv', KV_METHODS),
        results: store.remote<ResultStore<RequestRecord>>('results', RESULT_METHODS),
        cancellations: store.remote<ResultStore<CancellationMarker>>('cancellations', RESULT_METHODS),
      };
  const events = new RelayEventBus(controlPort);
  const adapters: RuntimeAdapters = {
    clock: new RealClock({ timeScale: config.timeScale }),
    queue: store.remote<Queue>('queue', QUEUE_METHODS),
    claims: store.remote<ClaimStore>('claims', CLAIM_METHODS),
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
    enqueue: (job, record, emulatedMs) =>
      worker.enqueue({
        job,
        tracker: new RequestTracker(record, trackerDeps(adapters), config.resultTtlMs),
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
