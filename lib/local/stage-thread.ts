/**
 * One thread of `serve --workers` (started by stage-threads.ts): the store thread, hosting the
 * handoff queue (and, without Redis, the records and cancellation markers); or the stage thread,
 * running the prefill and decode stages over those stores (and, without Redis, its own KV blobs).
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { fastestCrc32c } from '../adapters/checksum-native';
import { RealClock } from '../adapters/clock-real';
import { MemoryQueue } from '../adapters/queue-memory';
import { createRedis } from '../adapters/redis-connection';
import { tracingFromEnv } from '../adapters/telemetry';
import { engineConfig } from '../core/engine/config';
import type { CancellationMarker } from '../core/engine/decode-stage';
import { isTerminal, type RequestEvent, type RequestRecord } from '../core/engine/record';
import { RequestTracker } from '../core/engine/tracker';
import type { EventBus, Queue, QueueMessage } from '../core/ports';
import { createGenerationBackend } from './backends';
import { bufferedRandomKey } from './random-key';
import {
  EventBatch,
  QUEUE_METHODS,
  remoteResultStore,
  type StageControl,
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

function runStore(mainPort: MessagePort): void {
  // Visibility as the one-thread server's: a live decode keeps its delivery; a dead one's is given back on detach.
  const queue = new MemoryQueue({ visibilityTimeoutMs: config.requestTimeoutMs + 60_000, maxReceives: 5 });
  const { results, cancellations } = pipelineStores(null);
  const served = { results, cancellations };
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
  private readonly pending = new EventBatch();
  private immediate: NodeJS.Immediate | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastSentMs = -Infinity;

  constructor(private readonly port: MessagePort) {}

  publish(requestId: string, event: RequestEvent): void {
    this.pending.add(requestId, event);
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
    if (this.pending.size === 0) return;
    this.lastSentMs = performance.now();
    this.port.postMessage({ events: this.pending.take() } satisfies ThreadMessage);
  }
}

async function runStage(storePort: MessagePort, controlPort: MessagePort): Promise<void> {
  const { options } = data;
  const store = new RpcClient(storePort);
  const redis = options.redisUrl ? createRedis({ url: options.redisUrl, connectionName: 'disagg-serve-stage' }) : null;
  const stores = redis
    ? pipelineStores(redis, options.redisPrefix)
    : {
        // The blobs stay here, where both stages run: handed over as in one thread, never copied nor cloned.
        kv: pipelineStores(null).kv,
        // The record of a request this thread runs is read back from here until it ends (remoteResultStore).
        results: remoteResultStore<RequestRecord>(store, 'results', (record) => !isTerminal(record.state)),
        cancellations: remoteResultStore<CancellationMarker>(store, 'cancellations'),
      };
  const events = new RelayEventBus(controlPort);
  // Its own exporter, from the same OTEL_* environment as the main thread: spans join by traceparent, not by process.
  const tracing = tracingFromEnv(process.env, { serviceName: 'disagg' });
  const adapters: RuntimeAdapters = {
    tracing,
    clock: new RealClock({ timeScale: config.timeScale }),
    queue: store.remote<Queue>('queue', QUEUE_METHODS),
    // Claims stay in this thread: there is one, and its claims die with it, as a dead worker's lapse.
    ...(options.claimLeaseMs ? { claimLeaseMs: options.claimLeaseMs } : {}),
    ...stores,
    backend: await createGenerationBackend(options.backend),
    events,
    randomKey: bufferedRandomKey(),
    wallClockMs: () => performance.timeOrigin + performance.now(),
    crc32c: fastestCrc32c().crc32c,
    onError: (err, context) => toMain({ log: `error in the stage thread while ${context}: ${(err as Error).message}` }),
  };
  const prefill = new PrefillWorker(config, adapters, options.prefillConcurrency);
  const decode = new DecodeWorker(config, adapters);
  decode.start();
  const stage: StageControl = {
    enqueue: (job, recordJson, emulatedMs) =>
      prefill.enqueue({
        job: { ...job, promptIds: Array.from(job.promptIds) },
        tracker: new RequestTracker(JSON.parse(recordJson) as RequestRecord, trackerDeps(adapters), config.resultTtlMs),
        emulatedMs,
      }),
    cancel: (id) => prefill.cancel(id),
    async stop() {
      // Prefill first: what it hands off until it ends still reaches decode.
      await prefill.stop();
      await decode.stop();
      events.flush();
      await tracing.shutdown().catch(() => undefined);
      if (redis) await redis.quit().catch(() => redis.disconnect());
    },
  };
  serveObjects(controlPort, redis ? { stage } : { stage, kv: stores.kv });
}

// Last, once the classes above exist.
if (data.role === 'store') runStore(data.storePort);
else await runStage(data.storePort, data.controlPort!);
toMain({ ready: true });
