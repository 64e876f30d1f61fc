/**
 * `disagg serve --workers`: the prefill and decode stages run in a worker thread of their own, the stage
 * thread, so this thread's event loop does HTTP only and the pipeline uses a second core. The stages are
 * connected by the same ports as in one thread: the handoff queue lives in a store thread (with the
 * records and cancellation markers too when there is no Redis), reached over MessagePorts, so it
 * outlives the stage thread; with Redis, every thread opens its own connection. Without Redis the KV
 * blobs stay in the stage thread, where prefill writes them and decode reads them: a 1 MB blob never
 * crosses threads, and its memory goes back to the pool it came from. Decode claims stay there too.
 * Both stages in one thread, not one each: their work per request is less than the API thread's, and
 * two threads of it on the second core cost more than one (the blob's crossing, its checksum verified
 * again, a fresh buffer for each, and more wakes).
 *
 * A stage thread that dies is replaced. Its deliveries are given back at once and its claims die with it,
 * so its requests in decode are taken over as after any decode worker's crash: regenerated silently up to
 * what the client already has, the consumed KV recomputed (and, without Redis, that of descriptors still
 * queued, whose blobs died with it). Requests it held before their handoff are queued again; colocated
 * ones it was decoding end failed (worker_failed).
 */
import { randomUUID } from 'node:crypto';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { createRedis } from '../adapters/redis-connection';
import { MemoryEventBus } from '../adapters/events-memory';
import { admit } from '../core/engine/admission';
import { engineConfig, type EngineConfig, type EngineConfigInput } from '../core/engine/config';
import type { CancellationMarker } from '../core/engine/decode-stage';
import type { PrefillJob } from '../core/engine/prefill-stage';
import { isTerminal, type RequestEvent, type RequestRecord, type RequestState } from '../core/engine/record';
import { markQueued, receiveRequest, type SubmitRequest, type SubmitResult } from '../core/engine/submission';
import { StoreUnavailableError } from '../core/engine/retry';
import { RequestTracker } from '../core/engine/tracker';
import type { KvStore, ResultStore } from '../core/ports';
import type { BackendSpec } from './backends';
import { deleteWhenBack, type Occupancy, type PipelineRuntime } from './runtime';
import { pipelineStores } from './stores';
import { RpcClient } from './thread-rpc';

export interface StageThreadsOptions {
  readonly engine: EngineConfigInput;
  readonly redisUrl: string | null;
  readonly redisPrefix: string;
  readonly backend: BackendSpec;
  readonly prefillConcurrency: number;
  /** How long a decode claim lasts without renewal (default 10 s). */
  readonly claimLeaseMs?: number;
  /** This server's owner id, stamped on the records it creates (lib/local/reconciler.ts). */
  readonly ownerId?: string;
}

export type ThreadRole = 'store' | 'stage';

/** What each thread is started with (its workerData). */
export interface ThreadData {
  readonly role: ThreadRole;
  readonly options: StageThreadsOptions;
  /** The stage thread: its port to the store thread. The store thread: the main thread's port to it. */
  readonly storePort: MessagePort;
  /** The stage thread: the port the main thread calls the stages on, and the stages' events come back by. */
  readonly controlPort?: MessagePort;
}

/** Messages a thread posts to the main thread besides RPC replies. */
export type ThreadMessage =
  | { readonly ready: true }
  | { readonly log: string }
  /**
   * Events the stage published since its last flush (on the control port, ordered with replies), as the JSON of
   * an EventBatch: a string crosses threads as one copy, an object graph field by field.
   */
  | { readonly events: string };

/** One request's events in an EventBatch: a run of consecutive tokens as [index of the first, ...their texts]. */
type WireEvent = RequestEvent | [number, ...string[]];

/**
 * Events gathered for one message to the main thread: grouped by request, each request's in the order they were
 * published (the order between requests is not kept: no listener depends on it), a run of tokens as one array.
 * 100 tokens cross as one id and 100 short strings, not 100 pairs of an id and an object.
 */
export class EventBatch {
  private groups = new Map<string, WireEvent[]>();

  get size(): number {
    return this.groups.size;
  }

  add(requestId: string, event: RequestEvent): void {
    let group = this.groups.get(requestId);
    if (!group) {
      group = [];
      this.groups.set(requestId, group);
    }
    if (event.type === 'token') {
      const last = group[group.length - 1];
      if (Array.isArray(last) && last[0] + last.length - 1 === event.index) last.push(event.text);
      else group.push([event.index, event.text]);
      return;
    }
    group.push(event);
  }

  /** The batch's JSON; the batch is empty afterwards. */
  take(): string {
    const json = JSON.stringify(Array.from(this.groups, ([id, group]) => [id, group]));
    this.groups = new Map();
    return json;
  }

  /** Calls `each` with every event of a batch's JSON, each request's in order. */
  static forEach(json: string, each: (requestId: string, event: RequestEvent) => void): void {
    for (const [id, group] of JSON.parse(json) as [string, WireEvent[]][]) {
      for (const entry of group) {
        if (!Array.isArray(entry)) {
          each(id, entry);
          continue;
        }
        const first = entry[0];
        for (let k = 1; k < entry.length; k++)
          each(id, { type: 'token', index: first + k - 1, text: entry[k] as string });
      }
    }
  }
}

/** A prefill job as it crosses to the stage thread: the prompt ids as one typed array, not 1,000 numbers. */
export type WirePrefillJob = Omit<PrefillJob, 'promptIds'> & { readonly promptIds: Uint32Array };

/** The stage thread's control surface. The record travels as JSON, as records are stored. */
export interface StageControl {
  enqueue(job: WirePrefillJob, recordJson: string, emulatedMs: number): Promise<void>;
  cancel(id: string): Promise<RequestRecord | null>;
  stop(): Promise<void>;
}

/** The store thread's own surface. */
export interface StoreHost {
  /** Serves the stores on `port` to a consumer thread named `consumer`. */
  attach(port: MessagePort, consumer: string): Promise<void>;
  /** The consumer's thread is gone: its unacknowledged deliveries go back to the queue at once. */
  detach(consumer: string): Promise<number>;
  close(): Promise<void>;
}

export const KV_METHODS = ['put', 'get', 'delete', 'count'] as const;
const STAGE_METHODS = ['enqueue', 'cancel', 'stop'] as const;
export const QUEUE_METHODS = ['send', 'receive', 'ack', 'release', 'depth', 'deadLetters'] as const;

/**
 * A result store served by the store thread, its records crossing as JSON strings (as they are stored):
 * one copy across, instead of a structured clone of every field.
 *
 * With `keepWritten`, the JSON of each record this thread last wrote and `keepWritten` says to keep is kept here
 * too (every write still goes to the store thread), and a read of it is answered from here, without a round trip.
 * For the records of a thread that is their only writer while it holds them: the stage thread's, whose decode
 * reads the record its own prefill saved just before the handoff (the main thread writes a record only once the
 * stage thread that held it is gone, and a new stage thread starts with nothing kept). At most
 * KEPT_RECORDS_MAX are kept, the oldest written dropped first.
 */
export function remoteResultStore<T>(
  rpc: RpcClient,
  service: string,
  keepWritten?: (record: T) => boolean,
): ResultStore<T> {
  const kept = new Map<string, string>();
  return {
    put: async (id, record, ttlMs) => {
      const json = JSON.stringify(record);
      // The copy is dropped while the write is in flight and kept only once the store has it: a write that
      // fails leaves nothing here the store does not hold.
      kept.delete(id);
      await rpc.call(service, 'putJson', [id, json, ttlMs]);
      if (keepWritten?.(record)) {
        kept.set(id, json);
        if (kept.size > KEPT_RECORDS_MAX) kept.delete(kept.keys().next().value!);
      }
    },
    get: async (id) => {
      const json = kept.get(id) ?? ((await rpc.call(service, 'getJson', [id])) as string | null);
      return json === null ? null : (JSON.parse(json) as T);
    },
    delete: async (id) => {
      kept.delete(id);
      await rpc.call(service, 'delete', [id]);
    },
  };
}

/** Records a thread keeps of its own writes at most (remoteResultStore): past it, reads of the oldest go to the store. */
const KEPT_RECORDS_MAX = 20_000;

function wireJob(job: PrefillJob): WirePrefillJob {
  return { ...job, promptIds: Uint32Array.from(job.promptIds) };
}

/** A thread that does not report ready in this long failed to start. */
const START_TIMEOUT_MS = 120_000;

/** This module's sibling thread entry, .ts under tsx and .js once compiled. */
const ENTRY = new URL(`./stage-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url).href;

/**
 * Runs in a fresh thread: TypeScript sources need tsx's loader, which threads do not inherit from a
 * programmatic registration, so it is registered there first.
 */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.tsx) (await import(workerData.tsx)).register();
  await import(workerData.entry);
})();
`;

interface Thread<TControl> {
  readonly worker: Worker;
  readonly rpc: RpcClient;
  readonly control: TControl;
  readonly name: string;
}

/** What the main thread knows of a request it submitted, from the events the stages send back. */
interface Tracked {
  state: RequestState;
  readonly mode: RequestRecord['mode'];
  readonly emulatedMs: number;
  /** Index of the next token to pass on: a takeover's re-sent tokens are dropped here, never shown twice. */
  nextToken: number;
  /**
   * The record as submitted, as JSON (what the stage thread is sent; parsed only if the pipeline breaks with the
   * request in it, to end it failed).
   */
  readonly recordJson: string;
  /** Kept until the handoff, to queue the request again if the stage thread dies with it. */
  job: PrefillJob | null;
}

export class StageThreads implements PipelineRuntime {
  readonly events = new MemoryEventBus<RequestEvent>();
  readonly kv: KvStore;
  readonly results: ResultStore<RequestRecord>;
  private readonly cancellations: ResultStore<CancellationMarker>;
  private readonly tracked = new Map<string, Tracked>();
  private readonly counts = { prefill: 0, handoff: 0, decoding: 0, queuedEmulatedMs: 0 };
  private stage!: Thread<StageControl>;
  private closing = false;
  private halted = false;
  private broken: string | null = null;

  private constructor(
    readonly config: EngineConfig,
    private readonly options: StageThreadsOptions,
    private readonly store: Thread<StoreHost>,
    /** The API side's own client of the stores' Redis (GET /healthz pings it), when they are in Redis. */
    readonly redis: ReturnType<typeof createRedis> | null,
    private readonly log: (line: string) => void,
  ) {
    if (redis) {
      const stores = pipelineStores(redis, options.redisPrefix);
      this.kv = stores.kv;
      this.results = stores.results;
      this.cancellations = stores.cancellations;
    } else {
      // The blobs are the stage thread's, whichever thread that is now.
      this.kv = Object.fromEntries(
        KV_METHODS.map((method) => [method, (...args: unknown[]) => this.stage.rpc.call('kv', method, args)]),
      ) as unknown as KvStore;
      this.results = remoteResultStore<RequestRecord>(store.rpc, 'results');
      this.cancellations = remoteResultStore<CancellationMarker>(store.rpc, 'cancellations');
    }
  }

  /** Starts the store thread, then the stage thread; resolves when both are ready. */
  static async start(options: StageThreadsOptions, log: (line: string) => void): Promise<StageThreads> {
    const config = engineConfig(options.engine);
    const { port1, port2 } = new MessageChannel();
    const worker = spawn({ role: 'store', options, storePort: port2 }, [port2]);
    const rpc = new RpcClient(port1);
    const store: Thread<StoreHost> = {
      worker,
      rpc,
      control: rpc.remote<StoreHost>('host', ['attach', 'detach', 'close']),
      name: 'store',
    };
    const redis = options.redisUrl ? createRedis({ url: options.redisUrl, connectionName: 'disagg-serve-api' }) : null;
    const threads = new StageThreads(config, options, store, redis, log);
    try {
      await ready(worker, 'store');
      worker.on('exit', (code) => threads.storeExited(code));
      threads.stage = await threads.startStage();
    } catch (err) {
      await threads.close();
      throw err;
    }
    return threads;
  }

  occupancy(): Occupancy {
    const c = this.counts;
    return { prefillQueue: c.prefill, decodeQueue: c.handoff, decodeBatch: c.decoding };
  }

  async submit(req: SubmitRequest): Promise<SubmitResult> {
    if (this.broken) throw new Error(this.broken);
    const { tracker, job, emulatedPrefillMs } = receiveRequest(
      req,
      this.config,
      { results: this.results, events: this.events, wallClockMs },
      wallClockMs(),
      this.options.ownerId,
    );
    const record = tracker.record;
    const occupancy = this.occupancy();
    const decision = admit(
      occupancy,
      this.config.admission,
      (this.counts.queuedEmulatedMs + emulatedPrefillMs) * this.config.timeScale,
    );
    if (!decision.admitted) {
      tracker.reject({ code: 'overloaded', message: decision.reason });
      return { accepted: false, record, decision };
    }
    markQueued(tracker, occupancy.prefillQueue + 1);
    const entry: Tracked = {
      state: 'queued',
      mode: record.mode,
      emulatedMs: emulatedPrefillMs,
      nextToken: 0,
      recordJson: JSON.stringify(record),
      job,
    };
    this.tracked.set(req.id, entry);
    this.count(entry, +1);
    try {
      await this.stage.control.enqueue(wireJob(job), entry.recordJson, emulatedPrefillMs);
    } catch (err) {
      if ((err as Error).name === 'StoreUnavailableError') {
        // Its record could not be saved: the stage thread never starts it, and the client is told so.
        this.count(entry, -1);
        this.tracked.delete(req.id);
        deleteWhenBack(this.results, req.id, (e, context) =>
          this.log(`error while ${context}: ${(e as Error).message}`),
        );
        throw new StoreUnavailableError('results', err);
      }
      // The stage thread died with it: its replacement queues the request again (stageExited).
      this.log(`error while queueing ${req.id} for prefill: ${(err as Error).message}`);
    }
    return { accepted: true, record };
  }

  get(id: string): Promise<RequestRecord | null> {
    return this.results.get(id);
  }

  async cancel(id: string): Promise<RequestRecord | null> {
    const record = await this.results.get(id);
    if (!record) return null;
    await this.cancellations.put(id, { cancelledAtMs: wallClockMs() }, this.config.resultTtlMs);
    const fromQueue = await this.stage.control.cancel(id).catch(() => null);
    return fromQueue ?? record;
  }

  /**
   * Terminates the stage thread (prefill and decode both) as a crash would (no goodbye, no acks, no record
   * writes); it is replaced as after any unexpected exit. For fault-injection tests.
   */
  async kill(): Promise<void> {
    await this.stage.worker.terminate();
  }

  /** Ends the stage thread at once, as after a drain deadline (the store thread stays, for the server's last writes). */
  async halt(): Promise<void> {
    this.closing = true;
    this.halted = true;
    await this.stage?.worker.terminate();
  }

  /** Stops taking work, lets what is running finish, then ends the threads. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.stage) {
      if (!this.halted) await this.stage.control.stop().catch(() => undefined);
      await this.stage.worker.terminate();
    }
    await this.store.control.close().catch(() => undefined);
    await this.store.worker.terminate();
    if (this.redis) await this.redis.quit().catch(() => this.redis?.disconnect());
  }

  private async startStage(): Promise<Thread<StageControl>> {
    const role: ThreadRole = 'stage';
    const name = `${role}-${randomUUID().slice(0, 8)}`;
    const toStore = new MessageChannel();
    await this.store.control.attach(toStore.port1, name);
    const control = new MessageChannel();
    const worker = spawn({ role, options: this.options, storePort: toStore.port2, controlPort: control.port2 }, [
      toStore.port2,
      control.port2,
    ]);
    const rpc = new RpcClient(control.port1);
    control.port1.on('message', (message: ThreadMessage) => {
      if ('events' in message) EventBatch.forEach(message.events, this.relayOne);
    });
    worker.on('message', (message: ThreadMessage) => {
      if ('log' in message) this.log(message.log);
    });
    worker.on('error', (err) => this.log(`the ${role} thread failed: ${err.stack ?? err.message}`));
    await ready(worker, role);
    worker.on('exit', (code) => void this.stageExited(name, code));
    return { worker, rpc, control: rpc.remote<StageControl>('stage', STAGE_METHODS), name };
  }

  /** An event from a stage thread, passed on to this thread's listeners (the HTTP API); each request's in order. */
  private readonly relayOne = (id: string, event: RequestEvent): void => {
    const entry = this.tracked.get(id);
    if (entry) {
      if (event.type === 'token') {
        if (event.index < entry.nextToken) return;
        entry.nextToken = event.index + 1;
      } else if (event.type === 'state') {
        this.count(entry, -1);
        entry.state = event.state;
        if (event.state === 'handoff') entry.job = null;
        this.count(entry, +1);
      } else if (event.type === 'done') {
        this.count(entry, -1);
        this.tracked.delete(id);
      }
    }
    this.events.publish(id, event);
  };

  /** Keeps the occupancy counts in step with the states the stages report. */
  private count(entry: Tracked, sign: 1 | -1): void {
    const c = this.counts;
    if (entry.state === 'queued') c.queuedEmulatedMs += sign * entry.emulatedMs;
    if (entry.state === 'queued' || entry.state === 'prefilling') c.prefill += sign;
    else if (entry.state === 'handoff') c.handoff += sign;
    else if (entry.state === 'decoding') c.decoding += sign;
  }

  private async stageExited(name: string, code: number): Promise<void> {
    if (this.closing || this.broken) return;
    this.log(`the stage thread exited (code ${code}); starting another`);
    try {
      const returned = await this.store.control.detach(name);
      this.stage = await this.startStage();
      this.log(`stage thread replaced; ${returned} delivery(ies) of the dead one given back for takeover`);
      await this.requeueAfterStageDied();
    } catch (err) {
      this.fatal(`could not replace the stage thread: ${(err as Error).message}`);
    }
  }

  /** Requests the dead stage thread held: before their handoff, queued again; colocated ones decoding, failed. */
  private async requeueAfterStageDied(): Promise<void> {
    for (const [id, entry] of this.tracked) {
      if (entry.job) {
        this.count(entry, -1);
        entry.state = 'queued';
        this.count(entry, +1);
        await this.stage.control
          .enqueue(wireJob(entry.job), entry.recordJson, entry.emulatedMs)
          .catch((err: unknown) => {
            this.log(`error while queueing ${id} for prefill again: ${(err as Error).message}`);
          });
      } else if (entry.mode === 'colocated' && !isTerminal(entry.state)) {
        await this.failTracked(id, 'the stage thread decoding this colocated request exited');
      }
    }
  }

  /** Ends a request no stage holds any more, failed, through this thread's stores and listeners. */
  private async failTracked(id: string, message: string): Promise<void> {
    const entry = this.tracked.get(id);
    const record =
      (await this.results.get(id).catch(() => null)) ??
      (entry ? (JSON.parse(entry.recordJson) as RequestRecord) : null);
    if (!record) return;
    const tracker = new RequestTracker(
      record,
      { results: this.results, events: this.events, wallClockMs },
      this.config.resultTtlMs,
    );
    if (entry) {
      this.count(entry, -1);
      this.tracked.delete(id);
    }
    await tracker.finish('failed', { code: 'worker_failed', message }).catch(() => undefined);
  }

  private storeExited(code: number): void {
    if (this.closing) return;
    this.fatal(`the store thread exited (code ${code})`);
  }

  /**
   * The pipeline cannot go on (its store is gone): every request in flight ends failed for its client,
   * and new ones are refused with the reason, rather than left waiting.
   */
  private fatal(reason: string): void {
    this.broken = `the pipeline stopped: ${reason}; restart disagg serve`;
    this.log(this.broken);
    for (const [id, entry] of this.tracked) {
      this.tracked.delete(id);
      const failed = {
        ...(JSON.parse(entry.recordJson) as RequestRecord),
        state: 'failed' as const,
        error: { code: 'worker_failed', message: this.broken },
      };
      this.events.publish(id, { type: 'state', state: 'failed' });
      this.events.publish(id, { type: 'done', record: failed });
    }
  }
}

function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

function spawn(data: ThreadData, transferList: MessagePort[]): Worker {
  const tsx = ENTRY.endsWith('.ts') ? import.meta.resolve('tsx/esm/api') : null;
  return new Worker(BOOTSTRAP, {
    eval: true,
    name: `disagg-${data.role}`,
    workerData: { ...data, entry: ENTRY, tsx },
    transferList,
  });
}

/** Resolves when the thread reports ready; rejects with its error if it fails or exits first. */
function ready(worker: Worker, role: ThreadRole): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the ${role} thread did not start in ${START_TIMEOUT_MS / 1000} s`)),
      START_TIMEOUT_MS,
    );
    const done = (err?: Error): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    const onMessage = (m: ThreadMessage): void => {
      if ('ready' in m) done();
    };
    const onError = (err: Error): void => done(new Error(`the ${role} thread failed to start: ${err.message}`));
    const onExit = (code: number): void => done(new Error(`the ${role} thread exited (code ${code}) while starting`));
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}
