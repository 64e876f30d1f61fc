/**
 * The capacity simulator's mechanism: a discrete-event simulation on a virtual clock. Policies are
 * the live pipeline's own (chooseMode, admit, fillBatch); device time is the emulator's.
 * Decode batches are memory-aware (batching.ts): a request joins only while the batch's KV at its
 * final context fits the replica's memory beside the weights; one that cannot fit even alone is
 * rejected as too_large_for_decode_memory.
 *
 * Disaggregated: prefill replicas take prompts first in first out, one at a time each (as the live
 * runtime); the prompt's KV then crosses the link to the least-loaded decode replica, where it waits
 * to join the continuous batch. Colocated: each replica prefills and decodes, prefill first
 * (colocatedNextWork), so prefills stall the running batch.
 */
import {
  DecodeStepTimer,
  stackSpeculation,
  kvBytesForContext,
  kvTransferTime,
  prefillTime,
  type DevicePool,
  type PrefillItem,
} from '../emulator';
import { admit } from '../engine/admission';
import {
  colocatedNextWork,
  fillBatch,
  fitsAlone,
  kvBudgetBytes,
  kvNeedBytes,
  TOO_LARGE_FOR_DECODE_MEMORY,
  type BatchLimits,
} from '../engine/batching';
import { chooseMode, type RoutingPolicy } from '../engine/routing';
import { EventQueue } from './event-queue';
import { IntFifo } from './int-fifo';
import { summarise, type SystemMetrics } from './metrics';
import { PrefixCache } from './prefix-cache';
import {
  assertSystemFits,
  formatSystemSpec,
  resolveSimOptions,
  type ResolvedSimOptions,
  type SimOptions,
  type SystemFit,
  type SystemSpec,
} from './system-spec';
import { BLOCK_TOKENS, contextQuantile, type SimRequest, type Workload } from './workload';

/**
 * Quantile of prompt + output tokens the fit check holds one request of (beside the weights), unless
 * told otherwise: the median, so a system that cannot run most of the workload is refused up front,
 * while one that cannot hold only the longest tail runs and rejects those (too_large_for_decode_memory).
 */
export const FIT_CONTEXT_QUANTILE = 0.5;

export const OUTCOME_PENDING = 0;
export const OUTCOME_COMPLETED = 1;
export const OUTCOME_REJECTED = 2;
export const MODE_DISAGGREGATED = 0;
export const MODE_COLOCATED = 1;

/** Per-request times (ms of virtual time), indexed like the workload's requests; NaN where not reached. */
export interface RequestTimes {
  readonly arrivalMs: Float64Array;
  readonly prefillStartMs: Float64Array;
  readonly prefillEndMs: Float64Array;
  /** KV arrived at the decode replica (disaggregated), or prefill ended (colocated). */
  readonly decodeReadyMs: Float64Array;
  readonly decodeJoinMs: Float64Array;
  readonly firstTokenMs: Float64Array;
  /** Completion, or rejection. */
  readonly endMs: Float64Array;
  readonly cachedTokens: Int32Array;
  readonly promptTokens: Int32Array;
  readonly outputTokens: Int32Array;
  /** OUTCOME_*. */
  readonly outcome: Uint8Array;
  /** MODE_*: where the prompt was prefilled. */
  readonly mode: Uint8Array;
}

/** What the run counted besides per-request times. */
export interface RunCounters {
  readonly rejectedReasons: ReadonlyMap<string, number>;
  /** Busy ms per pool role, summed over its replicas, and the replica count. */
  readonly pools: readonly {
    readonly role: 'prefill' | 'decode' | 'colocated';
    readonly replicas: number;
    readonly busyMs: number;
  }[];
  readonly kvBytesMoved: number;
  readonly promptTokensPrefilled: number;
  readonly cachedPromptTokens: number;
  readonly decodeSteps: number;
  /** Running requests summed over decode steps (mean batch = this / decodeSteps), and the largest batch. */
  readonly decodeBatchSum: number;
  readonly decodeBatchMax: number;
}

export interface SimResult {
  readonly spec: string;
  readonly system: SystemSpec;
  readonly options: ResolvedSimOptions;
  readonly fit: SystemFit;
  readonly metrics: SystemMetrics;
  readonly requests: RequestTimes;
  readonly counters: RunCounters;
}

const EVENT_ARRIVAL = 1;
const EVENT_PREFILL_DONE = 2;
const EVENT_TRANSFER_DONE = 3;
const EVENT_REPLICA_DONE = 4;

const OP_IDLE = 0;
const OP_STEP = 1;
const OP_PREFILL = 2;

const SESSION_REJECTED = 'an earlier turn of its session was rejected';

/** A replica that runs a continuous decode batch: a disaggregated decode replica, or a colocated one. */
class BatchReplica {
  readonly running: Int32Array;
  runningCount = 0;
  /** Handed-off requests whose KV has arrived, waiting to join (first in first out). */
  readonly joinWaiting = new IntFifo();
  /** Prompts this replica prefills itself (colocated, or routed colocated in a disaggregated system). */
  readonly prefillWaiting = new IntFifo();
  /** KV transfers on their way here. */
  inbound = 0;
  op = OP_IDLE;
  opTarget = -1;
  opMs = 0;
  busyMs = 0;
  contextSum = 0;
  /** KV need (at final context) of the running requests: what fillBatch checks against the budget. */
  kvBytes = 0;
  /** KV need of the k-th oldest request in joinWaiting, for fillBatch. */
  readonly joinWaitingKv: (k: number) => number;

  constructor(
    maxBatch: number,
    readonly cache: PrefixCache | null,
    kvNeed: Float64Array,
  ) {
    this.running = new Int32Array(maxBatch);
    this.joinWaitingKv = (k) => kvNeed[this.joinWaiting.at(k)] as number;
  }

  get load(): number {
    return this.runningCount + this.joinWaiting.length + this.prefillWaiting.length + this.inbound;
  }
}

function cacheCapacityBlocks(opts: ResolvedSimOptions, pool: DevicePool): number {
  // KV memory left beside the weights; the running batch shares it, so this is an upper bound.
  const free = kvBudgetBytes(opts.model, pool, opts.compute);
  return Math.floor(free / kvBytesForContext(opts.model, BLOCK_TOKENS, opts.compute.kvDtype));
}

function checkFit(spec: SystemSpec, opts: ResolvedSimOptions, workload: Workload): SystemFit {
  const fromWorkload = opts.fitContextTokens === undefined;
  const context = Math.max(
    1,
    Math.min(opts.model.maxContext, opts.fitContextTokens ?? contextQuantile(workload, FIT_CONTEXT_QUANTILE)),
  );
  return assertSystemFits(spec, opts, context, fromWorkload);
}

/**
 * Runs `workload` through `system` on a virtual clock and summarises it. Deterministic: the same
 * inputs give the same result. `onProgress(terminal, total)` is called every few thousand requests.
 */
export function simulate(
  workload: Workload,
  system: SystemSpec,
  options: SimOptions,
  onProgress?: (terminal: number, total: number) => void,
): SimResult {
  const opts = resolveSimOptions(options);
  const fit = checkFit(system, opts, workload);
  const run = new Simulation(workload, system, opts, onProgress);
  run.run();
  const spec = formatSystemSpec(system);
  const counters = run.counters();
  return {
    spec,
    system,
    options: opts,
    fit,
    metrics: summarise(spec, system, opts, run.times, counters),
    requests: run.times,
    counters,
  };
}

class Simulation {
  readonly times: RequestTimes;
  private readonly requests: readonly SimRequest[];
  private readonly n: number;
  private readonly events = new EventQueue();
  private now = 0;
  private terminal = 0;
  private readonly generated: Int32Array;
  private readonly context: Int32Array;
  private readonly replicaOf: Int32Array;
  private readonly nextInSession: Int32Array;
  private readonly openLoop: Int32Array;
  private readonly reasons = new Map<string, number>();
  private readonly routing: RoutingPolicy;

  // Disaggregated prefill pool (empty for a colocated system).
  private readonly prefillPool: DevicePool | null;
  private readonly prefillQueue = new IntFifo();
  private readonly prefillCurrent: Int32Array;
  private readonly prefillOpMs: Float64Array;
  private readonly prefillCaches: (PrefixCache | null)[];
  private prefillBusyMs = 0;
  /** Admitted, not yet through prefill (waiting or running), as the live runtime counts it. */
  private prefillOccupancy = 0;
  /** Handed off (prefill ended), not yet in a running batch. */
  private decodeOccupancy = 0;

  private readonly batchPool: DevicePool;
  private readonly replicas: BatchReplica[];
  /** Each request's KV need at its final context (prompt + output), as the batching policy counts it. */
  private readonly kvNeed: Float64Array;
  private readonly batchLimits: BatchLimits;
  private readonly timer: DecodeStepTimer;
  private readonly maxPrefillQueue: number;
  private readonly maxDecodeQueue: number;
  private readonly prefillItem: { newTokens: number; cachedTokens: number } = { newTokens: 0, cachedTokens: 0 };
  private readonly prefillBatch: PrefillItem[] = [this.prefillItem];

  private kvBytesMoved = 0;
  private promptTokensPrefilled = 0;
  private cachedPromptTokens = 0;
  private decodeSteps = 0;
  private decodeBatchSum = 0;
  private decodeBatchMax = 0;

  constructor(
    workload: Workload,
    private readonly system: SystemSpec,
    private readonly opts: ResolvedSimOptions,
    private readonly onProgress: ((terminal: number, total: number) => void) | undefined,
  ) {
    this.requests = workload.requests;
    const n = (this.n = workload.requests.length);
    const nan = (): Float64Array => new Float64Array(n).fill(NaN);
    this.times = {
      arrivalMs: nan(),
      prefillStartMs: nan(),
      prefillEndMs: nan(),
      decodeReadyMs: nan(),
      decodeJoinMs: nan(),
      firstTokenMs: nan(),
      endMs: nan(),
      cachedTokens: new Int32Array(n),
      promptTokens: new Int32Array(n),
      outputTokens: new Int32Array(n),
      outcome: new Uint8Array(n),
      mode: new Uint8Array(n),
    };
    this.generated = new Int32Array(n);
    this.context = new Int32Array(n);
    this.replicaOf = new Int32Array(n).fill(-1);
    this.nextInSession = new Int32Array(n).fill(-1);

    // Session follow-ups arrive when their previous turn ends; everything else at its arrival time.
    const lastOfSession = new Map<string, number>();
    const isFollower = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const r = this.requests[i] as SimRequest;
      if (!(r.promptTokens >= 1 && r.outputTokens >= 1 && Number.isFinite(r.arrivalMs))) {
        throw new RangeError(`request ${r.id}: prompt and output tokens must be at least 1 and arrivalMs finite`);
      }
      this.times.promptTokens[i] = r.promptTokens;
      this.times.outputTokens[i] = r.outputTokens;
      if (r.sessionId === undefined) continue;
      const previous = lastOfSession.get(r.sessionId);
      if (r.thinkMs !== undefined && previous !== undefined) {
        this.nextInSession[previous] = i;
        isFollower[i] = 1;
      }
      lastOfSession.set(r.sessionId, i);
    }
    const open: number[] = [];
    for (let i = 0; i < n; i++) if (!isFollower[i]) open.push(i);
    open.sort(
      (a, b) => (this.requests[a] as SimRequest).arrivalMs - (this.requests[b] as SimRequest).arrivalMs || a - b,
    );
    this.openLoop = Int32Array.from(open);

    const maxBatch = opts.decodeBatchMax;
    const admission = opts.admissionPerReplica;
    const kvNeed = (this.kvNeed = new Float64Array(n));
    for (let i = 0; i < n; i++) {
      kvNeed[i] = kvNeedBytes(
        opts.model,
        this.times.promptTokens[i] as number,
        this.times.outputTokens[i] as number,
        opts.compute,
      );
    }
    if (system.kind === 'disaggregated') {
      const r = system.prefill.replicas;
      this.prefillPool = system.prefill.pool;
      this.prefillCurrent = new Int32Array(r).fill(-1);
      this.prefillOpMs = new Float64Array(r);
      const capacity = cacheCapacityBlocks(opts, system.prefill.pool);
      this.prefillCaches = Array.from({ length: r }, () => (opts.prefixCache ? new PrefixCache(capacity) : null));
      this.batchPool = system.decode.pool;
      // Decode replicas keep no prefix cache: their memory holds the running batch's KV.
      this.replicas = Array.from({ length: system.decode.replicas }, () => new BatchReplica(maxBatch, null, kvNeed));
      this.maxPrefillQueue = admission.maxPrefillQueue * r;
      this.maxDecodeQueue = admission.maxDecodeQueue * system.decode.replicas;
      this.routing = { colocateAtOrBelowTokens: opts.colocateAtOrBelowTokens, colocatedAvailable: true };
    } else {
      this.prefillPool = null;
      this.prefillCurrent = new Int32Array(0);
      this.prefillOpMs = new Float64Array(0);
      this.prefillCaches = [];
      this.batchPool = system.colocated.pool;
      const capacity = cacheCapacityBlocks(opts, system.colocated.pool);
      this.replicas = Array.from(
        { length: system.colocated.replicas },
        () => new BatchReplica(maxBatch, opts.prefixCache ? new PrefixCache(capacity) : null, kvNeed),
      );
      this.maxPrefillQueue = admission.maxPrefillQueue * system.colocated.replicas;
      this.maxDecodeQueue = admission.maxDecodeQueue * system.colocated.replicas;
      this.routing = { colocateAtOrBelowTokens: 0, colocatedAvailable: true };
    }
    this.timer = new DecodeStepTimer(
      opts.model,
      this.batchPool,
      opts.compute,
      stackSpeculation(opts.model, this.batchPool, opts.compute),
    );
    this.batchLimits = { maxBatch, kvBudgetBytes: kvBudgetBytes(opts.model, this.batchPool, opts.compute) };
  }

  counters(): RunCounters {
    const replicaBusy = this.replicas.reduce((sum, r) => sum + r.busyMs, 0);
    const pools: RunCounters['pools'] =
      this.system.kind === 'disaggregated'
        ? [
            { role: 'prefill', replicas: this.system.prefill.replicas, busyMs: this.prefillBusyMs },
            { role: 'decode', replicas: this.system.decode.replicas, busyMs: replicaBusy },
          ]
        : [{ role: 'colocated', replicas: this.system.colocated.replicas, busyMs: replicaBusy }];
    return {
      rejectedReasons: this.reasons,
      pools,
      kvBytesMoved: this.kvBytesMoved,
      promptTokensPrefilled: this.promptTokensPrefilled,
      cachedPromptTokens: this.cachedPromptTokens,
      decodeSteps: this.decodeSteps,
      decodeBatchSum: this.decodeBatchSum,
      decodeBatchMax: this.decodeBatchMax,
    };
  }

  run(): void {
    const events = this.events;
    const open = this.openLoop;
    let nextOpen = 0;
    for (;;) {
      const eventTime = events.peekTime();
      const arrivalTime =
        nextOpen < open.length ? (this.requests[open[nextOpen] as number] as SimRequest).arrivalMs : Infinity;
      if (eventTime === Infinity && arrivalTime === Infinity) break;
      // Completions at the same instant go first: they free the resources an arrival may take.
      if (eventTime <= arrivalTime) {
        events.pop();
        this.now = events.time;
        switch (events.kind) {
          case EVENT_ARRIVAL:
            this.arrive(events.target);
            break;
          case EVENT_PREFILL_DONE:
            this.prefillDone(events.target);
            break;
          case EVENT_TRANSFER_DONE:
            this.transferDone(events.target);
            break;
          default:
            this.replicaDone(events.target);
        }
      } else {
        this.now = arrivalTime;
        this.arrive(open[nextOpen++] as number);
      }
    }
    if (this.terminal !== this.n) {
      throw new Error(`simulation ended with ${this.n - this.terminal} requests neither completed nor rejected`);
    }
  }

  private arrive(i: number): void {
    const t = this.times;
    t.arrivalMs[i] = this.now;
    const prompt = t.promptTokens[i] as number;
    if (prompt + (t.outputTokens[i] as number) > this.opts.model.maxContext) {
      return this.reject(i, `prompt + output tokens exceed the model's ${this.opts.model.maxContext}-token context`);
    }
    // Every request decodes on a batch replica (decode or colocated): one that cannot fit there even
    // alone would block its replica's line for ever, so it is turned away before any prefill.
    if (!fitsAlone(this.kvNeed[i] as number, this.batchLimits)) return this.reject(i, TOO_LARGE_FOR_DECODE_MEMORY);
    const decision = admit(
      { prefillQueue: this.prefillOccupancy, decodeQueue: this.decodeOccupancy },
      { maxPrefillQueue: this.maxPrefillQueue, maxDecodeQueue: this.maxDecodeQueue },
      // Retry-After is not modelled: a rejected request is not retried.
      0,
    );
    if (!decision.admitted) return this.reject(i, decision.reason);
    this.prefillOccupancy += 1;
    if (this.system.kind === 'colocated') {
      t.mode[i] = MODE_COLOCATED;
      const replica = this.leastLoaded();
      this.replicaOf[i] = replica;
      (this.replicas[replica] as BatchReplica).prefillWaiting.push(i);
      return this.kick(replica);
    }
    // Same call as the live runtime: decode replicas keep no prefix cache, so the whole prompt counts.
    const mode = chooseMode('auto', prompt, this.routing);
    if (mode === 'colocated') {
      t.mode[i] = MODE_COLOCATED;
      const replica = this.leastLoaded();
      this.replicaOf[i] = replica;
      (this.replicas[replica] as BatchReplica).prefillWaiting.push(i);
      return this.kick(replica);
    }
    t.mode[i] = MODE_DISAGGREGATED;
    this.prefillQueue.push(i);
    this.startPrefills();
  }

  private reject(i: number, reason: string): void {
    for (let j = i; j !== -1; j = this.nextInSession[j] as number) {
      this.times.outcome[j] = OUTCOME_REJECTED;
      this.times.endMs[j] = this.now;
      const why = j === i ? reason : SESSION_REJECTED;
      this.reasons.set(why, (this.reasons.get(why) ?? 0) + 1);
      this.terminated();
    }
  }

  private terminated(): void {
    this.terminal += 1;
    if (this.onProgress && (this.terminal & 2047) === 0) this.onProgress(this.terminal, this.n);
  }

  private leastLoaded(): number {
    let best = 0;
    let bestLoad = Infinity;
    for (let r = 0; r < this.replicas.length; r++) {
      const load = (this.replicas[r] as BatchReplica).load;
      if (load < bestLoad) {
        best = r;
        bestLoad = load;
      }
    }
    return best;
  }

  private prefillMs(pool: DevicePool, i: number, cache: PrefixCache | null): number {
    const t = this.times;
    const prompt = t.promptTokens[i] as number;
    const hashes = (this.requests[i] as SimRequest).blockHashes;
    const cached = cache && hashes ? cache.lookup(hashes, prompt) : 0;
    t.cachedTokens[i] = cached;
    this.cachedPromptTokens += cached;
    this.promptTokensPrefilled += prompt;
    this.prefillItem.newTokens = prompt - cached;
    this.prefillItem.cachedTokens = cached;
    return prefillTime(this.opts.model, pool, this.prefillBatch, this.opts.compute).ms;
  }

  /** Idle prefill replicas take the oldest waiting prompts (lowest replica index first). */
  private startPrefills(): void {
    const pool = this.prefillPool as DevicePool;
    for (let r = 0; r < this.prefillCurrent.length && this.prefillQueue.length > 0; r++) {
      if (this.prefillCurrent[r] !== -1) continue;
      const i = this.prefillQueue.shift();
      this.prefillCurrent[r] = i;
      this.times.prefillStartMs[i] = this.now;
      const ms = this.prefillMs(pool, i, this.prefillCaches[r] ?? null);
      this.prefillOpMs[r] = ms;
      this.events.push(this.now + ms, EVENT_PREFILL_DONE, r);
    }
  }

  private prefillDone(r: number): void {
    const i = this.prefillCurrent[r] as number;
    this.prefillCurrent[r] = -1;
    this.prefillBusyMs += this.prefillOpMs[r] as number;
    this.times.prefillEndMs[i] = this.now;
    this.firstTokenAtPrefill(i);
    this.prefillOccupancy -= 1;
    const hashes = (this.requests[i] as SimRequest).blockHashes;
    const cache = this.prefillCaches[r];
    if (cache && hashes) cache.insert(hashes);
    // Hand off: the whole prompt's KV crosses to the least-loaded decode replica.
    const d = this.leastLoaded();
    this.replicaOf[i] = d;
    (this.replicas[d] as BatchReplica).inbound += 1;
    this.decodeOccupancy += 1;
    const bytes = kvBytesForContext(this.opts.model, this.times.promptTokens[i] as number, this.opts.compute.kvDtype);
    this.kvBytesMoved += bytes;
    const transfer = kvTransferTime({
      bytes,
      from: this.prefillPool as DevicePool,
      to: this.batchPool,
      layers: this.opts.model.layers,
      ...(this.opts.link ? { link: this.opts.link } : {}),
    }).ms;
    this.events.push(this.now + transfer, EVENT_TRANSFER_DONE, i);
    this.startPrefills();
  }

  private transferDone(i: number): void {
    this.times.decodeReadyMs[i] = this.now;
    const d = this.replicaOf[i] as number;
    const replica = this.replicas[d] as BatchReplica;
    replica.inbound -= 1;
    replica.joinWaiting.push(i);
    this.kick(d);
  }

  /** An idle replica starts its next work; a busy one picks it up between steps. */
  private kick(d: number): void {
    if ((this.replicas[d] as BatchReplica).op === OP_IDLE) this.startWork(d);
  }

  /** The prefill pass computes the first token: it leaves with the prefill (TTFT = queueing + prefill). */
  private firstTokenAtPrefill(i: number): void {
    this.times.firstTokenMs[i] = this.now;
    this.generated[i] = 1;
  }

  private join(replica: BatchReplica, i: number): void {
    this.times.decodeJoinMs[i] = this.now;
    // A one-token answer is done with its prefill: it takes no decode step.
    if ((this.generated[i] as number) >= (this.times.outputTokens[i] as number)) {
      this.complete(i);
      return;
    }
    replica.running[replica.runningCount++] = i;
    // The context after the first token, which decode steps extend.
    const context = (this.times.promptTokens[i] as number) + 1;
    this.context[i] = context;
    replica.contextSum += context;
    replica.kvBytes += this.kvNeed[i] as number;
  }

  /** Between steps: joiners first (fillBatch), then a waiting prefill if there is room, else a step. */
  private startWork(d: number): void {
    const replica = this.replicas[d] as BatchReplica;
    const limits = this.batchLimits;
    const waiting = replica.joinWaiting;
    const joining = fillBatch(replica.runningCount, replica.kvBytes, waiting.length, replica.joinWaitingKv, limits);
    for (let k = 0; k < joining; k++) this.join(replica, waiting.shift());
    this.decodeOccupancy -= joining;
    const prefills = replica.prefillWaiting;
    // A handoff held back for memory keeps its place: no prompt prefilled here takes that memory first.
    const prefillable = waiting.length > 0 ? 0 : prefills.length;
    const nextPrefillKv = prefillable > 0 ? (this.kvNeed[prefills.peek()] as number) : 0;
    const work = colocatedNextWork(prefillable, nextPrefillKv, replica.runningCount, replica.kvBytes, limits);
    if (work === 'idle') {
      replica.op = OP_IDLE;
      return;
    }
    let ms: number;
    if (work === 'prefill') {
      const i = replica.prefillWaiting.shift();
      this.times.prefillStartMs[i] = this.now;
      ms = this.prefillMs(this.batchPool, i, replica.cache);
      replica.op = OP_PREFILL;
      replica.opTarget = i;
    } else {
      ms = this.stepMs(replica);
      replica.op = OP_STEP;
    }
    replica.opMs = ms;
    this.events.push(this.now + ms, EVENT_REPLICA_DONE, d);
  }

  private stepMs(replica: BatchReplica): number {
    const n = replica.runningCount;
    const window = this.timer.window;
    if (window === Infinity) return this.timer.stepMs(n, replica.contextSum);
    let windowedContext = 0;
    let windowedKeys = 0;
    for (let k = 0; k < n; k++) {
      const c = this.context[replica.running[k] as number] as number;
      windowedContext += Math.min(c, window);
      windowedKeys += Math.min(c + 1, window);
    }
    return this.timer.stepMs(n, replica.contextSum, windowedContext, windowedKeys);
  }

  private replicaDone(d: number): void {
    const replica = this.replicas[d] as BatchReplica;
    replica.busyMs += replica.opMs;
    const t = this.times;
    if (replica.op === OP_PREFILL) {
      const i = replica.opTarget;
      t.prefillEndMs[i] = this.now;
      t.decodeReadyMs[i] = this.now;
      this.firstTokenAtPrefill(i);
      this.prefillOccupancy -= 1;
      const hashes = (this.requests[i] as SimRequest).blockHashes;
      if (replica.cache && hashes) replica.cache.insert(hashes);
      // The KV is already here: the request joins the running batch at once.
      this.join(replica, i);
    } else {
      this.decodeSteps += 1;
      this.decodeBatchSum += replica.runningCount;
      if (replica.runningCount > this.decodeBatchMax) this.decodeBatchMax = replica.runningCount;
      const running = replica.running;
      replica.contextSum += replica.runningCount;
      for (let k = 0; k < replica.runningCount; k++) {
        const i = running[k] as number;
        const generated = (this.generated[i] = (this.generated[i] as number) + 1);
        this.context[i] = (this.context[i] as number) + 1;
        if (generated < (t.outputTokens[i] as number)) continue;
        // Done: leave the batch (order within a batch does not matter to the step time).
        replica.contextSum -= this.context[i] as number;
        replica.kvBytes -= this.kvNeed[i] as number;
        running[k] = running[--replica.runningCount] as number;
        k -= 1;
        this.complete(i);
      }
    }
    replica.op = OP_IDLE;
    this.startWork(d);
  }

  private complete(i: number): void {
    this.times.outcome[i] = OUTCOME_COMPLETED;
    this.times.endMs[i] = this.now;
    this.terminated();
    const next = this.nextInSession[i] as number;
    if (next !== -1) {
      const think = (this.requests[next] as SimRequest).thinkMs ?? 0;
      this.events.push(this.now + think, EVENT_ARRIVAL, next);
    }
  }
}
