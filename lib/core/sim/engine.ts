/**
 * The capacity simulator's mechanism: a discrete-event simulation on a virtual clock. Policies are
 * the live pipeline's own (chooseMode, admit, fillBatch, the queue discipline); device time is the emulator's.
 *
 * Queues (routing.ts), the same discipline for every pool: `shared` (default), one queue per pool that a
 * free replica takes the oldest request from, or `jsq-tokens`, each request bound on arrival to the replica
 * with the fewest pending tokens.
 *
 * Disaggregated: a free prefill replica batches waiting prompts into one pass, up to the pool's token
 * budget; each prompt's KV then crosses the link to a decode replica (concurrent transfers share each
 * replica's link bandwidth fairly), where it waits to join the continuous batch. Colocated: each replica
 * runs chunked prefill (vLLM's scheduling): every step carries the running batch's decode tokens plus
 * prompt chunks up to the token budget; with a budget of 0 a whole prompt is prefilled while the batch
 * stalls (colocatedNextWork).
 *
 * Memory: a request reserves its KV at prompt + max_tokens (the request's output cap, as the live
 * pipeline reserves it; not the answer's true length) when it joins a batch or starts its prefill on a
 * colocated replica; one that cannot fit even alone is rejected as too_large_for_decode_memory.
 */
import {
  DecodeStepTimer,
  DEVICES,
  kvBytesForContext,
  kvTransferTime,
  LINKS,
  PassTimer,
  poolBandwidth,
  stackSpeculation,
  type DevicePool,
} from '../emulator';
import { admit } from '../engine/admission';
import {
  canJoin,
  colocatedNextWork,
  fillBatch,
  fitsAlone,
  kvBudgetBytes,
  kvNeedBytes,
  TOO_LARGE_FOR_DECODE_MEMORY,
  type BatchLimits,
} from '../engine/batching';
import { chooseMode, shortestQueue, type RoutingPolicy } from '../engine/routing';
import { EventQueue } from './event-queue';
import { IntFifo } from './int-fifo';
import { summarise, type SystemMetrics } from './metrics';
import { PrefixCache } from './prefix-cache';
import {
  assertSystemFits,
  formatSystemSpec,
  MAX_DECODE_BATCH,
  resolveSimOptions,
  servingDefaults,
  SystemSpecError,
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
  /** Tokens the answer has: the trace's, at most the request's max_tokens. */
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
  /** Prefill passes on prefill replicas and the prompts they held (mean prefill batch = prompts / passes). */
  readonly prefillPasses: number;
  readonly prefillPassPrompts: number;
  /** Answers cut short at max_tokens. */
  readonly truncatedAnswers: number;
}

/** The limits the run applied, per pool (defaults resolved against the devices and the workload). */
export interface RunLimits {
  /** Largest running decode batch per decode (or colocated) replica, and where it came from. */
  readonly decodeBatchMax: number;
  readonly decodeBatchSource: string;
  /** Tokens per step on decode or colocated replicas (chunked prefill); 0: whole-prompt prefills. */
  readonly chunkTokens: number;
  /** New tokens per prefill pass on prefill replicas (disaggregated); 0: one prompt per pass. */
  readonly prefillBatchTokens: number | null;
  /** The max_tokens every request sends (its KV reservation is prompt + this, within the context). */
  readonly maxTokens: number;
  readonly maxTokensFromWorkload: boolean;
  /** Admission limits for the whole system. */
  readonly maxPrefillQueue: number;
  readonly maxDecodeQueue: number;
}

export interface SimResult {
  readonly spec: string;
  readonly system: SystemSpec;
  readonly options: ResolvedSimOptions;
  readonly fit: SystemFit;
  readonly limits: RunLimits;
  readonly metrics: SystemMetrics;
  readonly requests: RequestTimes;
  readonly counters: RunCounters;
}

const EVENT_ARRIVAL = 1;
const EVENT_PREFILL_DONE = 2;
const EVENT_TRANSFER_DONE = 3;
const EVENT_REPLICA_DONE = 4;
/** A transfer's last byte left; it is delivered one link latency later (stale when its end time moved). */
const EVENT_TRANSFER_BYTES = 5;

const OP_IDLE = 0;
const OP_STEP = 1;
const OP_PREFILL = 2;
/** A chunked step: decode tokens for the running batch plus prompt chunks. */
const OP_MIXED = 3;

/**
 * The step memo has 2^STEP_MEMO_BITS slots of STEP_MEMO_STRIDE doubles (32 bytes: 8 MB at 18 bits), a slot's
 * context sum, batch size and step ms side by side, so a probe reads one cache line.
 */
const STEP_MEMO_BITS = 18;
const STEP_MEMO_STRIDE = 4;
const STEP_MEMO_MASK = (1 << STEP_MEMO_BITS) - 1;

/** A scramble per batch size, xor the context sum: a batch's steps (sum + n, + 2n, ...) probe slots near each other. */
function stepMemoScramble(n: number): number {
  return Math.imul(n, 0x9e3779b1);
}

/** Where in the step memo the step of a batch (its scramble) at a context sum is kept. */
function stepMemoSlot(scramble: number, sum: number): number {
  return ((scramble ^ sum) & STEP_MEMO_MASK) * STEP_MEMO_STRIDE;
}

const SESSION_REJECTED = 'an earlier turn of its session was rejected';

/** A replica that runs a continuous decode batch: a disaggregated decode replica, or a colocated one. */
class BatchReplica {
  readonly running: Int32Array;
  runningCount = 0;
  /** Handed-off requests whose KV has arrived, waiting to join (first in first out). */
  readonly joinWaiting = new IntFifo();
  /** Prompts bound to this replica for prefill (jsq-tokens; with `shared` they wait in the pool's queue). */
  readonly prefillWaiting = new IntFifo();
  /** Prompts part-way through a chunked prefill here, oldest first (their KV is reserved). */
  readonly prefilling: number[] = [];
  /** The chunk of each prefilling prompt in the step running now (parallel to `prefilling`'s head). */
  readonly chunks: number[] = [];
  /** KV transfers on their way here. */
  inbound = 0;
  /** jsq-tokens: prompt tokens bound here and not yet prefilled, and KV tokens reserved or on their way. */
  pendingPromptTokens = 0;
  pendingKvTokens = 0;
  op = OP_IDLE;
  opTarget = -1;
  opMs = 0;
  busyMs = 0;
  contextSum = 0;
  /** KV need (at prompt + max_tokens) of the running and prefilling requests: what fillBatch checks. */
  kvBytes = 0;
  /** KV need of the k-th oldest request in joinWaiting, for fillBatch. */
  readonly joinWaitingKv: (k: number) => number;
  /** Transfers arriving here, for the link's fair share. */
  readonly transfers: number[] = [];

  constructor(
    maxBatch: number,
    readonly cache: PrefixCache | null,
    kvNeed: Float64Array,
  ) {
    this.running = new Int32Array(maxBatch);
    this.joinWaitingKv = (k) => kvNeed[this.joinWaiting.at(k)] as number;
  }

  get load(): number {
    return (
      this.runningCount + this.joinWaiting.length + this.prefillWaiting.length + this.prefilling.length + this.inbound
    );
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

/** The workload's median prompt tokens (nearest rank), for the memory-based batch cap. */
function medianPrompt(workload: Workload): number {
  const n = workload.requests.length;
  if (n === 0) return 1;
  const prompts = new Float64Array(n);
  for (let i = 0; i < n; i++) prompts[i] = (workload.requests[i] as SimRequest).promptTokens;
  prompts.sort();
  return prompts[Math.min(n - 1, Math.max(0, Math.ceil(0.5 * n) - 1))] as number;
}

/**
 * The limits a run applies: the decode batch cap is the override, else the serving stack's max_num_seqs,
 * at most the requests the pool's KV memory holds at the workload's median prompt + max_tokens (at least 1).
 */
export function runLimits(workload: Workload, system: SystemSpec, opts: ResolvedSimOptions): RunLimits {
  let longest = 1;
  for (const r of workload.requests) if (r.outputTokens > longest) longest = r.outputTokens;
  const maxTokens = Math.min(opts.maxTokens ?? longest, opts.model.maxContext - 1);
  const batchPool = system.kind === 'colocated' ? system.colocated.pool : system.decode.pool;
  const stack = servingDefaults(batchPool);
  let decodeBatchMax = opts.decodeBatchMax ?? 0;
  let decodeBatchSource = 'the --decode-batch override';
  if (opts.decodeBatchMax === undefined) {
    const median = medianPrompt(workload);
    const need = kvNeedBytes(opts.model, median, Math.min(maxTokens, opts.model.maxContext - median), opts.compute);
    const byMemory = Math.max(1, Math.floor(kvBudgetBytes(opts.model, batchPool, opts.compute) / need));
    decodeBatchMax = Math.min(stack.maxSeqs, byMemory, MAX_DECODE_BATCH);
    decodeBatchSource =
      byMemory < stack.maxSeqs
        ? `KV memory at the median prompt (${median}) + max_tokens (${maxTokens})`
        : `max_num_seqs of ${stack.source}`;
  }
  // As vLLM requires max_num_batched_tokens >= max_num_seqs: every running request's token fits in a step.
  const chunkTokens = opts.chunkTokens ?? stack.chunkTokens;
  if (chunkTokens > 0 && chunkTokens < decodeBatchMax) {
    if (opts.decodeBatchMax !== undefined) {
      throw new SystemSpecError(
        `--chunk-tokens ${chunkTokens} is below the decode batch cap ${decodeBatchMax}: a step must hold one token of every running request (or use --chunk-tokens 0)`,
      );
    }
    decodeBatchMax = chunkTokens;
    decodeBatchSource = `the ${chunkTokens} tokens per step (one per running request)`;
  }
  const replicasOf = (role: 'prefill' | 'batch'): number =>
    system.kind === 'colocated'
      ? system.colocated.replicas
      : system[role === 'prefill' ? 'prefill' : 'decode'].replicas;
  const scale = opts.admission.perReplica;
  return {
    decodeBatchMax,
    decodeBatchSource,
    chunkTokens,
    prefillBatchTokens:
      system.kind === 'disaggregated' ? (opts.chunkTokens ?? servingDefaults(system.prefill.pool).chunkTokens) : null,
    maxTokens,
    maxTokensFromWorkload: opts.maxTokens === undefined,
    maxPrefillQueue: opts.admission.maxPrefillQueue * (scale ? replicasOf('prefill') : 1),
    maxDecodeQueue: opts.admission.maxDecodeQueue * (scale ? replicasOf('batch') : 1),
  };
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
  const limits = runLimits(workload, system, opts);
  const run = new Simulation(workload, system, opts, limits, onProgress);
  run.run();
  const spec = formatSystemSpec(system);
  const counters = run.counters();
  return {
    spec,
    system,
    options: opts,
    fit,
    limits,
    metrics: summarise(spec, system, opts, run.times, counters, limits),
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
  /** The next open-loop arrival's time (Infinity when none is left). */
  private nextArrivalMs = Infinity;
  private terminal = 0;
  private readonly generated: Int32Array;
  private readonly context: Int32Array;
  /** Prompt tokens with KV so far (cached or prefilled) of a prompt in a chunked prefill. */
  private readonly prefilled: Int32Array;
  private readonly replicaOf: Int32Array;
  private readonly nextInSession: Int32Array;
  private readonly openLoop: Int32Array;
  private readonly reasons = new Map<string, number>();
  private readonly routing: RoutingPolicy;
  private readonly jsq: boolean;

  // Disaggregated prefill pool (empty for a colocated system).
  private readonly prefillPool: DevicePool | null;
  /** `shared`: the pool's one queue; `jsq-tokens`: one per replica. */
  private readonly prefillQueues: IntFifo[];
  private readonly prefillPending: Float64Array;
  /** The prompts of each prefill replica's pass in progress (empty: idle). */
  private readonly prefillBatches: number[][];
  private readonly prefillOpMs: Float64Array;
  private readonly prefillCaches: (PrefixCache | null)[];
  private readonly prefillBudget: number;
  private prefillBusyMs = 0;
  /** Admitted, not yet through prefill (waiting or running), as the live runtime counts it. */
  private prefillOccupancy = 0;
  /** Handed off (prefill ended), not yet in a running batch. */
  private decodeOccupancy = 0;

  // Batch replicas: decode (disaggregated) or colocated.
  private readonly batchPool: DevicePool;
  private readonly replicas: BatchReplica[];
  /** `shared`: prompts waiting for a batch replica to prefill them (colocated, or routed colocated). */
  private readonly colocatedQueue = new IntFifo();
  /** Each request's KV need at prompt + max_tokens, as the batching policy counts it. */
  private readonly kvNeed: Float64Array;
  /** Each request's reserved KV tokens (prompt + max_tokens), for jsq-tokens. */
  private readonly kvTokens: Int32Array;
  private readonly batchLimits: BatchLimits;
  private readonly chunkTokens: number;
  private readonly timer: DecodeStepTimer;
  private readonly maxPrefillQueue: number;
  private readonly maxDecodeQueue: number;
  /** Prefill passes on prefill replicas (null: colocated), and passes on batch replicas (prefills, chunked steps). */
  private readonly prefillTimer: PassTimer | null;
  private readonly batchPassTimer: PassTimer;
  /** Single-prompt prefill ms by (new, cached) tokens: most prompts repeat a shape. */
  private readonly prefillMemo = new Map<number, number>();
  private readonly batchPrefillMemo = new Map<number, number>();
  /** Decode step ms by (context sum, batch size), for models without windowed attention. */
  /** (sum, batch, ms) per slot; a slot whose batch is 0 is empty (a step has at least one request). */
  private readonly stepMemo = new Float64Array(STEP_MEMO_STRIDE << STEP_MEMO_BITS);
  /** Step ms of a batch of one, by its context (0: not yet computed); up to the model's context. */
  private readonly loneStepMs: Float64Array;

  // KV transfers: each prefill replica's send link and each decode replica's receive link are shared
  // fairly among the transfers on them; a transfer moves at the smaller of its two shares.
  private readonly sendBandwidth: number;
  private readonly receiveBandwidth: number;
  private readonly linkLatencyMs: number;
  private readonly sending: number[][];
  private readonly transferSource: Int32Array;
  private readonly bytesLeft: Float64Array;
  private readonly rate: Float64Array;
  private readonly rateSince: Float64Array;
  private readonly bytesEndMs: Float64Array;

  /** Bytes outgrow a small integer at once: a double from the start (zeroed in the constructor), so the object's shape holds. */
  private kvBytesMoved = Number.NaN;
  private promptTokensPrefilled = 0;
  private cachedPromptTokens = 0;
  private decodeSteps = 0;
  private decodeBatchSum = 0;
  private decodeBatchMax = 0;
  private prefillPasses = 0;
  private prefillPassPrompts = 0;
  private truncatedAnswers = 0;

  constructor(
    workload: Workload,
    private readonly system: SystemSpec,
    private readonly opts: ResolvedSimOptions,
    limits: RunLimits,
    private readonly onProgress: ((terminal: number, total: number) => void) | undefined,
  ) {
    this.kvBytesMoved = 0;
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
    this.prefilled = new Int32Array(n);
    this.replicaOf = new Int32Array(n).fill(-1);
    this.nextInSession = new Int32Array(n).fill(-1);
    this.jsq = opts.routing === 'jsq-tokens';
    this.loneStepMs = new Float64Array(opts.model.maxContext + 1);

    const kvNeed = (this.kvNeed = new Float64Array(n));
    this.kvTokens = new Int32Array(n);
    const { truncated, open } = prepareRequests(this.requests, limits.maxTokens, opts, {
      times: this.times,
      kvNeed,
      kvTokens: this.kvTokens,
      nextInSession: this.nextInSession,
    });
    this.truncatedAnswers += truncated;
    this.openLoop = Int32Array.from(open);

    const maxBatch = limits.decodeBatchMax;
    this.chunkTokens = limits.chunkTokens;
    this.maxPrefillQueue = limits.maxPrefillQueue;
    this.maxDecodeQueue = limits.maxDecodeQueue;
    if (system.kind === 'disaggregated') {
      const r = system.prefill.replicas;
      this.prefillPool = system.prefill.pool;
      this.prefillQueues = Array.from({ length: this.jsq ? r : 1 }, () => new IntFifo());
      this.prefillPending = new Float64Array(r);
      this.prefillBatches = Array.from({ length: r }, () => []);
      this.prefillOpMs = new Float64Array(r);
      this.prefillBudget = limits.prefillBatchTokens ?? 0;
      const capacity = cacheCapacityBlocks(opts, system.prefill.pool);
      this.prefillCaches = Array.from({ length: r }, () => (opts.prefixCache ? new PrefixCache(capacity) : null));
      this.batchPool = system.decode.pool;
      // Decode replicas keep no prefix cache: their memory holds the running batch's KV.
      this.replicas = Array.from({ length: system.decode.replicas }, () => new BatchReplica(maxBatch, null, kvNeed));
      this.routing = { colocateAtOrBelowTokens: opts.colocateAtOrBelowTokens, colocatedAvailable: true };
    } else {
      this.prefillPool = null;
      this.prefillQueues = [];
      this.prefillPending = new Float64Array(0);
      this.prefillBatches = [];
      this.prefillOpMs = new Float64Array(0);
      this.prefillBudget = 0;
      this.prefillCaches = [];
      this.batchPool = system.colocated.pool;
      const capacity = cacheCapacityBlocks(opts, system.colocated.pool);
      this.replicas = Array.from(
        { length: system.colocated.replicas },
        () => new BatchReplica(maxBatch, opts.prefixCache ? new PrefixCache(capacity) : null, kvNeed),
      );
      this.routing = { colocateAtOrBelowTokens: 0, colocatedAvailable: true };
    }
    this.timer = new DecodeStepTimer(
      opts.model,
      this.batchPool,
      opts.compute,
      stackSpeculation(opts.model, this.batchPool, opts.compute),
    );
    this.batchLimits = { maxBatch, kvBudgetBytes: kvBudgetBytes(opts.model, this.batchPool, opts.compute) };
    this.prefillTimer = this.prefillPool && new PassTimer(opts.model, this.prefillPool, 'prefill', opts.compute);
    this.batchPassTimer = new PassTimer(opts.model, this.batchPool, 'prefill', opts.compute);

    // The same links and latency as kvTransferTime, so a transfer alone on its links takes what it says.
    const from = this.prefillPool ?? this.batchPool;
    const senderLink = opts.link ?? LINKS[DEVICES[from.device].interLink];
    const receiverLink = opts.link ?? LINKS[DEVICES[this.batchPool.device].interLink];
    this.sendBandwidth = poolBandwidth(from, senderLink);
    this.receiveBandwidth = poolBandwidth(this.batchPool, receiverLink);
    this.linkLatencyMs = kvTransferTime({
      bytes: 0,
      from,
      to: this.batchPool,
      layers: 1,
      ...(opts.link ? { link: opts.link } : {}),
    }).ms;
    this.sending = this.prefillBatches.map(() => []);
    this.transferSource = new Int32Array(n).fill(-1);
    this.bytesLeft = new Float64Array(n);
    this.rate = new Float64Array(n);
    this.rateSince = new Float64Array(n);
    this.bytesEndMs = new Float64Array(n);
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
      prefillPasses: this.prefillPasses,
      prefillPassPrompts: this.prefillPassPrompts,
      truncatedAnswers: this.truncatedAnswers,
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
      this.nextArrivalMs = arrivalTime;
      // Both comparisons at once (no branch left without type feedback until the end).
      if (Math.min(eventTime, arrivalTime) === Infinity) break;
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
          case EVENT_TRANSFER_BYTES:
            this.transferBytesDone(events.target);
            break;
          case EVENT_TRANSFER_DONE:
            this.transferDone(events.target);
            break;
          default:
            this.replicaDone(events.target);
        }
      } else {
        this.now = arrivalTime;
        nextOpen += 1;
        this.nextArrivalMs =
          nextOpen < open.length ? (this.requests[open[nextOpen] as number] as SimRequest).arrivalMs : Infinity;
        this.arrive(open[nextOpen - 1] as number);
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
    // Same call as the live runtime: decode replicas keep no prefix cache, so the whole prompt counts.
    const mode = this.system.kind === 'colocated' ? 'colocated' : chooseMode('auto', prompt, this.routing);
    if (mode === 'colocated') {
      t.mode[i] = MODE_COLOCATED;
      return this.queueColocated(i);
    }
    t.mode[i] = MODE_DISAGGREGATED;
    if (this.jsq) {
      const r = shortestQueue(this.prefillBatches.length, (k) => this.prefillPending[k] as number);
      this.prefillPending[r] = (this.prefillPending[r] as number) + prompt;
      this.replicaOf[i] = r;
      (this.prefillQueues[r] as IntFifo).push(i);
    } else {
      (this.prefillQueues[0] as IntFifo).push(i);
    }
    this.startPrefills();
  }

  /** A prompt a batch replica prefills itself: bound to one (jsq-tokens), or into the shared queue. */
  private queueColocated(i: number): void {
    if (this.jsq) {
      const d = shortestQueue(this.replicas.length, (k) => (this.replicas[k] as BatchReplica).pendingPromptTokens);
      const replica = this.replicas[d] as BatchReplica;
      replica.pendingPromptTokens += this.times.promptTokens[i] as number;
      this.replicaOf[i] = d;
      replica.prefillWaiting.push(i);
      return this.kick(d);
    }
    this.colocatedQueue.push(i);
    // Idle replicas look at the shared queue, lowest index first; busy ones take from it between steps.
    for (let d = 0; d < this.replicas.length && this.colocatedQueue.length > 0; d++) this.kick(d);
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

  /** Where a handoff decodes: the fewest requests (shared), or the fewest reserved KV tokens (jsq-tokens). */
  private decodeReplicaFor(): number {
    if (this.jsq) return shortestQueue(this.replicas.length, (k) => (this.replicas[k] as BatchReplica).pendingKvTokens);
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

  /** Looks up the prompt's cached prefix (counted), and returns the cached tokens. */
  private lookupCache(i: number, cache: PrefixCache | null): number {
    const t = this.times;
    const prompt = t.promptTokens[i] as number;
    const hashes = (this.requests[i] as SimRequest).blockHashes;
    const cached = cache && hashes ? cache.lookup(hashes, prompt) : 0;
    t.cachedTokens[i] = cached;
    this.cachedPromptTokens += cached;
    this.promptTokensPrefilled += prompt;
    return cached;
  }

  /** One prompt's whole prefill on a pool, memoised by its shape (pool, new tokens, cached tokens). */
  private prefillMs(timer: PassTimer, memo: Map<number, number>, newTokens: number, cached: number): number {
    const key = newTokens * 4_194_304 + cached;
    let ms = memo.get(key);
    if (ms === undefined) {
      ms = timer.start().add(newTokens, cached).ms();
      memo.set(key, ms);
    }
    return ms;
  }

  /**
   * Free prefill replicas (lowest index first) take waiting prompts, oldest first, into one pass while
   * its new tokens stay within the budget (a prompt over the budget runs alone; budget 0: one prompt).
   */
  private startPrefills(): void {
    const timer = this.prefillTimer as PassTimer;
    for (let r = 0; r < this.prefillBatches.length; r++) {
      const batch = this.prefillBatches[r] as number[];
      if (batch.length > 0) continue;
      const queue = this.prefillQueues[this.jsq ? r : 0] as IntFifo;
      if (queue.length === 0) {
        if (!this.jsq) break;
        continue;
      }
      const cache = this.prefillCaches[r] ?? null;
      let tokens = 0;
      // The first prompt's shape: a pass of one prompt is memoised by it.
      let firstNew = 0;
      let firstCached = 0;
      while (queue.length > 0) {
        const i = queue.peek();
        const prompt = this.times.promptTokens[i] as number;
        // The pass's new tokens are only known after the cache lookup; the budget counts whole prompts.
        if (batch.length > 0 && tokens + prompt > this.prefillBudget) break;
        queue.shift();
        tokens += prompt;
        batch.push(i);
        this.times.prefillStartMs[i] = this.now;
        const cached = this.lookupCache(i, cache);
        if (batch.length === 1) {
          firstNew = prompt - cached;
          firstCached = cached;
          timer.start();
        }
        timer.add(prompt - cached, cached);
      }
      const ms = batch.length === 1 ? this.prefillMs(timer, this.batchPrefillMemo, firstNew, firstCached) : timer.ms();
      this.prefillPasses += 1;
      this.prefillPassPrompts += batch.length;
      this.prefillOpMs[r] = ms;
      this.events.push(this.now + ms, EVENT_PREFILL_DONE, r);
    }
  }

  private prefillDone(r: number): void {
    const batch = this.prefillBatches[r] as number[];
    this.prefillBusyMs += this.prefillOpMs[r] as number;
    const cache = this.prefillCaches[r];
    for (const i of batch) {
      this.times.prefillEndMs[i] = this.now;
      this.firstTokenAtPrefill(i);
      this.prefillOccupancy -= 1;
      if (this.jsq)
        this.prefillPending[r] = (this.prefillPending[r] as number) - (this.times.promptTokens[i] as number);
      const hashes = (this.requests[i] as SimRequest).blockHashes;
      if (cache && hashes) cache.insert(hashes);
      this.handOff(i, r);
    }
    batch.length = 0;
    this.startPrefills();
  }

  /** The whole prompt's KV crosses from prefill replica `r` to a decode replica. */
  private handOff(i: number, r: number): void {
    const d = this.decodeReplicaFor();
    const replica = this.replicas[d] as BatchReplica;
    this.replicaOf[i] = d;
    replica.inbound += 1;
    replica.pendingKvTokens += this.kvTokens[i] as number;
    this.decodeOccupancy += 1;
    const bytes = kvBytesForContext(this.opts.model, this.times.promptTokens[i] as number, this.opts.compute.kvDtype);
    this.kvBytesMoved += bytes;
    this.transferSource[i] = r;
    this.bytesLeft[i] = bytes;
    this.rate[i] = 0;
    this.rateSince[i] = this.now;
    (this.sending[r] as number[]).push(i);
    replica.transfers.push(i);
    this.reshare(r, d);
  }

  /**
   * Transfers on prefill replica `r`'s send link or decode replica `d`'s receive link get their new fair
   * share: bytes sent so far are counted at the old rate, and the end is rescheduled where the rate changed.
   */
  private reshare(r: number, d: number): void {
    const sending = this.sending[r] as number[];
    const receiving = (this.replicas[d] as BatchReplica).transfers;
    // Each transfer once, in the order of a set of both lists: the sender's, then the receiver's others.
    for (let k = 0; k < sending.length; k++) this.rerate(sending[k] as number);
    for (let k = 0; k < receiving.length; k++) {
      const i = receiving[k] as number;
      if (this.transferSource[i] !== r) this.rerate(i);
    }
  }

  /** Transfer `i`'s rate is its share now: bytes sent so far count at the old rate, and its end moves. */
  private rerate(i: number): void {
    const src = this.transferSource[i] as number;
    const dst = this.replicaOf[i] as number;
    const rate = Math.min(
      this.sendBandwidth / (this.sending[src] as number[]).length,
      this.receiveBandwidth / (this.replicas[dst] as BatchReplica).transfers.length,
    );
    if (rate === this.rate[i]) return;
    const old = this.rate[i] as number;
    if (old > 0)
      this.bytesLeft[i] = Math.max(
        0,
        (this.bytesLeft[i] as number) - (old * (this.now - (this.rateSince[i] as number))) / 1000,
      );
    this.rate[i] = rate;
    this.rateSince[i] = this.now;
    const end = this.now + ((this.bytesLeft[i] as number) / rate) * 1000;
    this.bytesEndMs[i] = end;
    this.events.push(end, EVENT_TRANSFER_BYTES, i);
  }

  private transferBytesDone(i: number): void {
    // A rate change rescheduled this transfer: the earlier event is stale.
    if (this.events.time !== this.bytesEndMs[i] || this.transferSource[i] === -1) return;
    const r = this.transferSource[i] as number;
    const d = this.replicaOf[i] as number;
    this.transferSource[i] = -1;
    removeItem(this.sending[r] as number[], i);
    removeItem((this.replicas[d] as BatchReplica).transfers, i);
    this.reshare(r, d);
    this.events.push(this.now + this.linkLatencyMs, EVENT_TRANSFER_DONE, i);
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
    const replica = this.replicas[d] as BatchReplica;
    if (replica.op !== OP_IDLE) return;
    this.startWork(d);
    if (replica.op !== OP_IDLE) this.events.push(this.now + replica.opMs, EVENT_REPLICA_DONE, d);
  }

  /** The prefill pass computes the first token: it leaves with the prefill (TTFT = queueing + prefill). */
  private firstTokenAtPrefill(i: number): void {
    this.times.firstTokenMs[i] = this.now;
    this.generated[i] = 1;
  }

  /** A request starts decoding here; `reserved`: its KV was reserved when its prefill began here. */
  private join(replica: BatchReplica, i: number, reserved: boolean): void {
    this.times.decodeJoinMs[i] = this.now;
    if (!reserved) replica.kvBytes += this.kvNeed[i] as number;
    // A one-token answer is done with its prefill: it takes no decode step.
    if ((this.generated[i] as number) >= (this.times.outputTokens[i] as number)) {
      this.leave(replica, i);
      this.complete(i);
      return;
    }
    replica.running[replica.runningCount++] = i;
    // The context after the first token, which decode steps extend.
    const context = (this.times.promptTokens[i] as number) + 1;
    this.context[i] = context;
    replica.contextSum += context;
  }

  /** Frees a request's reservation on its replica. */
  private leave(replica: BatchReplica, i: number): void {
    replica.kvBytes -= this.kvNeed[i] as number;
    if (this.jsq) replica.pendingKvTokens -= this.kvTokens[i] as number;
  }

  /** The next prompt this replica may prefill (its own, or the shared queue's), or null. */
  private nextPrompt(replica: BatchReplica): IntFifo | null {
    // A handoff held back for memory keeps its place: no prompt prefilled here takes that memory first.
    if (replica.joinWaiting.length > 0) return null;
    const queue = this.jsq ? replica.prefillWaiting : this.colocatedQueue;
    return queue.length > 0 ? queue : null;
  }

  /** Between steps: joiners first (fillBatch), then prefill work (chunked or whole), else a decode step. */
  private startWork(d: number): void {
    const replica = this.replicas[d] as BatchReplica;
    const limits = this.batchLimits;
    const waiting = replica.joinWaiting;
    const joining = fillBatch(
      replica.runningCount + replica.prefilling.length,
      replica.kvBytes,
      waiting.length,
      replica.joinWaitingKv,
      limits,
    );
    for (let k = 0; k < joining; k++) this.join(replica, waiting.shift(), false);
    this.decodeOccupancy -= joining;
    if (this.chunkTokens > 0) return this.startChunkedStep(d, replica);
    const queue = this.nextPrompt(replica);
    const nextPrefillKv = queue ? (this.kvNeed[queue.peek()] as number) : 0;
    const work = colocatedNextWork(
      queue ? queue.length : 0,
      nextPrefillKv,
      replica.runningCount,
      replica.kvBytes,
      limits,
    );
    if (work === 'idle') {
      replica.op = OP_IDLE;
      return;
    }
    let ms: number;
    if (work === 'prefill') {
      const i = (queue as IntFifo).shift();
      this.times.prefillStartMs[i] = this.now;
      this.replicaOf[i] = d;
      const cached = this.lookupCache(i, replica.cache);
      ms = this.prefillMs(
        this.batchPassTimer,
        this.prefillMemo,
        (this.times.promptTokens[i] as number) - cached,
        cached,
      );
      replica.kvBytes += this.kvNeed[i] as number;
      if (this.jsq) replica.pendingKvTokens += this.kvTokens[i] as number;
      replica.op = OP_PREFILL;
      replica.opTarget = i;
    } else {
      ms = this.stepMs(replica);
      replica.op = OP_STEP;
    }
    replica.opMs = ms;
  }

  /**
   * vLLM's chunked-prefill step: one token for each running request, then the rest of the budget to the
   * prompts being prefilled (oldest first), then new prompts while the batch has room and their KV fits.
   */
  private startChunkedStep(d: number, replica: BatchReplica): void {
    const prefilling = replica.prefilling;
    // The common case on a decode replica: nothing to prefill, a plain decode step.
    if (prefilling.length === 0 && this.nextPrompt(replica) === null) {
      if (replica.runningCount === 0) {
        replica.op = OP_IDLE;
        return;
      }
      replica.opMs = this.stepMs(replica);
      replica.op = OP_STEP;
      return;
    }
    let budget = this.chunkTokens - replica.runningCount;
    const chunks = replica.chunks;
    if (chunks.length > 0) chunks.length = 0;
    const t = this.times;
    for (let k = 0; k < prefilling.length && budget > 0; k++) {
      const i = prefilling[k] as number;
      const chunk = Math.min(budget, (t.promptTokens[i] as number) - (this.prefilled[i] as number));
      chunks.push(chunk);
      budget -= chunk;
    }
    for (let queue = this.nextPrompt(replica); queue && budget > 0; queue = this.nextPrompt(replica)) {
      const i = queue.peek();
      if (
        !canJoin(replica.runningCount + prefilling.length, replica.kvBytes, this.kvNeed[i] as number, this.batchLimits)
      )
        break;
      queue.shift();
      this.replicaOf[i] = d;
      t.prefillStartMs[i] = this.now;
      const cached = this.lookupCache(i, replica.cache);
      this.prefilled[i] = cached;
      replica.kvBytes += this.kvNeed[i] as number;
      if (this.jsq) replica.pendingKvTokens += this.kvTokens[i] as number;
      prefilling.push(i);
      const chunk = Math.min(budget, (t.promptTokens[i] as number) - cached);
      chunks.push(chunk);
      budget -= chunk;
    }
    if (chunks.length === 0) {
      if (replica.runningCount === 0) {
        replica.op = OP_IDLE;
        return;
      }
      replica.opMs = this.stepMs(replica);
      replica.op = OP_STEP;
    } else {
      replica.opMs = this.mixedStepMs(replica);
      replica.op = OP_MIXED;
    }
  }

  /** One pass over the running batch's next tokens and the step's prompt chunks (a whole-prompt chunk alone is memoised). */
  private mixedStepMs(replica: BatchReplica): number {
    const chunks = replica.chunks;
    if (replica.runningCount === 0 && chunks.length === 1) {
      const i = replica.prefilling[0] as number;
      const done = this.prefilled[i] as number;
      return this.prefillMs(this.batchPassTimer, this.prefillMemo, chunks[0] as number, done);
    }
    const timer = this.batchPassTimer.start();
    for (let k = 0; k < replica.runningCount; k++) timer.add(1, this.context[replica.running[k] as number] as number);
    for (let k = 0; k < chunks.length; k++) {
      timer.add(chunks[k] as number, this.prefilled[replica.prefilling[k] as number] as number);
    }
    return timer.ms();
  }

  private stepMs(replica: BatchReplica): number {
    const n = replica.runningCount;
    const window = this.timer.window;
    if (window === Infinity) return this.plainStepMs(n, replica.contextSum);
    let windowedContext = 0;
    let windowedKeys = 0;
    for (let k = 0; k < n; k++) {
      const c = this.context[replica.running[k] as number] as number;
      windowedContext += Math.min(c, window);
      windowedKeys += Math.min(c + 1, window);
    }
    return this.timer.stepMs(n, replica.contextSum, windowedContext, windowedKeys);
  }

  /**
   * A decode step of `n` requests whose contexts sum to `sum` (no windowed attention). The time depends only
   * on that shape, and steps repeat shapes: a direct-mapped memo over typed arrays (a colliding shape is
   * recomputed, so the result is always exact).
   */
  private plainStepMs(n: number, sum: number): number {
    // A lone request (the common case when steps are short): indexed by its context, no hashing.
    if (n === 1 && sum < this.loneStepMs.length) {
      const known = this.loneStepMs[sum] as number;
      // A step takes time (its fixed costs); were one to take 0 ms, it would only be recomputed each time.
      if (known > 0) return known;
      const ms = this.timer.stepMs(1, sum);
      this.loneStepMs[sum] = ms;
      return ms;
    }
    const at = stepMemoSlot(stepMemoScramble(n), sum);
    const memo = this.stepMemo;
    // All three read on every call, so a first hit seen in optimized code finds their type feedback.
    const knownSum = memo[at] as number;
    const knownBatch = memo[at + 1] as number;
    const knownMs = memo[at + 2] as number;
    if (Number(knownSum === sum) * Number(knownBatch === n) === 1) return knownMs;
    const ms = this.timer.stepMs(n, sum);
    memo[at] = sum;
    memo[at + 1] = n;
    memo[at + 2] = ms;
    return ms;
  }

  /** A prompt's prefill on replica `replica` ended: its first token leaves, and it joins the running batch. */
  private colocatedPrefillEnded(replica: BatchReplica, i: number): void {
    const t = this.times;
    t.prefillEndMs[i] = this.now;
    t.decodeReadyMs[i] = this.now;
    this.firstTokenAtPrefill(i);
    this.prefillOccupancy -= 1;
    if (this.jsq) replica.pendingPromptTokens -= t.promptTokens[i] as number;
    const hashes = (this.requests[i] as SimRequest).blockHashes;
    if (replica.cache && hashes) replica.cache.insert(hashes);
    // The KV is already here, and reserved: the request joins the running batch at once.
    this.join(replica, i, true);
  }

  /**
   * The replica's operation ended: account for it and start the next. While the next one would end before
   * any other event (or arrival) is due, nothing else can touch this replica meanwhile, so it runs at once
   * on the virtual clock instead of through the event queue (the same result, far fewer events: a lone
   * decode batch runs its steps back to back).
   */
  private replicaDone(d: number): void {
    const replica = this.replicas[d] as BatchReplica;
    for (;;) {
      this.finishOp(replica);
      replica.op = OP_IDLE;
      this.startWork(d);
      if (replica.op === OP_IDLE) return;
      const horizon = Math.min(this.events.peekTime(), this.nextArrivalMs);
      if (this.now + replica.opMs < horizon) {
        if (replica.op === OP_STEP) this.fastForward(replica, horizon);
        // The step after the fast-forwarded ones may end past the horizon: then it goes through the queue.
        if (this.now + replica.opMs < horizon) {
          this.now += replica.opMs;
          continue;
        }
      }
      const end = this.now + replica.opMs;
      this.events.push(end, EVENT_REPLICA_DONE, d);
      return;
    }
  }

  /**
   * Runs plain decode steps back to back, without the per-step bookkeeping, while nothing can change the
   * batch: nobody waits to join or to be prefilled here, every step ends before `horizon` (the next event
   * or arrival), and no running request reaches its last token. Leaves the replica at the start of its next
   * step (opMs set), with exactly the times, counters and floating-point sums step-by-step running gives.
   */
  private fastForward(replica: BatchReplica, horizon: number): void {
    const n = replica.runningCount;
    if (this.timer.window !== Infinity || replica.joinWaiting.length > 0 || replica.prefilling.length > 0) return;
    if (this.nextPrompt(replica) !== null || (!this.jsq && this.colocatedQueue.length > 0)) return;
    let left = Infinity;
    for (let k = 0; k < n; k++) {
      const i = replica.running[k] as number;
      left = Math.min(left, (this.times.outputTokens[i] as number) - (this.generated[i] as number));
    }
    // The step that finishes the first request goes the ordinary way.
    let steps = 0;
    let now = this.now;
    let ms = replica.opMs;
    let sum = replica.contextSum;
    let busy = replica.busyMs;
    // plainStepMs's memo probed in the loop itself, which calls it only on a miss: the loop runs millions of
    // times, and runs them fastest this way also before it is optimized (a call a step costs most then).
    const lone = this.loneStepMs;
    const memo = this.stepMemo;
    const scramble = stepMemoScramble(n);
    while (steps < left - 1 && now + ms < horizon) {
      now += ms;
      busy += ms;
      steps += 1;
      sum += n;
      if (n === 1 && sum < lone.length) {
        const known = lone[sum] as number;
        ms = known > 0 ? known : this.plainStepMs(n, sum);
      } else {
        const at = stepMemoSlot(scramble, sum);
        const knownSum = memo[at] as number;
        const knownBatch = memo[at + 1] as number;
        const knownMs = memo[at + 2] as number;
        ms = Number(knownSum === sum) * Number(knownBatch === n) === 1 ? knownMs : this.plainStepMs(n, sum);
      }
    }
    if (steps === 0) return;
    for (let k = 0; k < n; k++) {
      const i = replica.running[k] as number;
      this.generated[i] = (this.generated[i] as number) + steps;
      this.context[i] = (this.context[i] as number) + steps;
    }
    this.now = now;
    replica.busyMs = busy;
    replica.contextSum = sum;
    replica.opMs = ms;
    this.decodeSteps += steps;
    this.decodeBatchSum += steps * n;
    this.decodeBatchMax = Math.max(this.decodeBatchMax, n);
  }

  private finishOp(replica: BatchReplica): void {
    replica.busyMs += replica.opMs;
    if (replica.op === OP_PREFILL) {
      this.colocatedPrefillEnded(replica, replica.opTarget);
      return;
    }
    // Prompts whose last chunk ran this step finish after the running batch's tokens are counted, so a
    // request's first decode step is the step after its prefill.
    let finished: number[] | null = null;
    if (replica.op === OP_MIXED) {
      const chunks = replica.chunks;
      for (let k = 0; k < chunks.length; k++) {
        const i = replica.prefilling[k] as number;
        this.prefilled[i] = (this.prefilled[i] as number) + (chunks[k] as number);
        if (this.prefilled[i] === this.times.promptTokens[i]) (finished ??= []).push(i);
      }
      if (finished) {
        const done = finished;
        const rest = replica.prefilling.filter((i) => !done.includes(i));
        replica.prefilling.length = 0;
        replica.prefilling.push(...rest);
      }
      chunks.length = 0;
    }
    if (replica.runningCount > 0) this.advanceRunning(replica);
    if (finished) for (const i of finished) this.colocatedPrefillEnded(replica, i);
  }

  /** Every running request gained a token; those at their last leave the batch. */
  private advanceRunning(replica: BatchReplica): void {
    const t = this.times;
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
      this.leave(replica, i);
      running[k] = running[--replica.runningCount] as number;
      k -= 1;
      this.complete(i);
    }
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

/**
 * The per-request set-up of a run, a function of its own so that the optimizing compiler, entering its loops,
 * compiles them and not the whole constructor: each request's prompt, answer (at most max_tokens), KV need and
 * reservation, and session links into `into`; returns the answers cut short and the open-loop arrivals in
 * order. Session follow-ups arrive when their previous turn ends; everything else at its arrival time.
 */
function prepareRequests(
  requests: readonly SimRequest[],
  maxTokens: number,
  opts: ResolvedSimOptions,
  into: {
    readonly times: RequestTimes;
    readonly kvNeed: Float64Array;
    readonly kvTokens: Int32Array;
    readonly nextInSession: Int32Array;
  },
): { truncated: number; open: number[] } {
  const n = requests.length;
  const { times, kvNeed, kvTokens, nextInSession } = into;
  const lastOfSession = new Map<string, number>();
  const isFollower = new Uint8Array(n);
  const maxContext = opts.model.maxContext;
  let truncated = 0;
  for (let i = 0; i < n; i++) {
    const r = requests[i] as SimRequest;
    if (!(r.promptTokens >= 1 && r.outputTokens >= 1 && Number.isFinite(r.arrivalMs))) {
      throw new RangeError(`request ${r.id}: prompt and output tokens must be at least 1 and arrivalMs finite`);
    }
    times.promptTokens[i] = r.promptTokens;
    const output = Math.min(r.outputTokens, maxTokens);
    if (output < r.outputTokens) truncated += 1;
    times.outputTokens[i] = output;
    // The client's max_tokens fits the context after its prompt (the live API refuses more), and is at
    // least the answer it got.
    const cap = Math.max(output, Math.min(maxTokens, maxContext - r.promptTokens));
    kvTokens[i] = r.promptTokens + cap;
    kvNeed[i] = kvNeedBytes(opts.model, r.promptTokens, cap, opts.compute);
    if (r.sessionId === undefined) continue;
    const previous = lastOfSession.get(r.sessionId);
    if (r.thinkMs !== undefined && previous !== undefined) {
      nextInSession[previous] = i;
      isFollower[i] = 1;
    }
    lastOfSession.set(r.sessionId, i);
  }
  const open: number[] = [];
  for (let i = 0; i < n; i++) if (!isFollower[i]) open.push(i);
  // By arrival, ties by index: a total order, so a trace already in order (most are) needs no sort.
  let sorted = true;
  for (let k = 1; k < open.length && sorted; k++) {
    sorted =
      (requests[open[k - 1] as number] as SimRequest).arrivalMs <=
      (requests[open[k] as number] as SimRequest).arrivalMs;
  }
  if (!sorted) {
    open.sort((a, b) => (requests[a] as SimRequest).arrivalMs - (requests[b] as SimRequest).arrivalMs || a - b);
  }
  return { truncated, open };
}

function removeItem(list: number[], value: number): void {
  const k = list.indexOf(value);
  if (k !== -1) {
    list[k] = list[list.length - 1] as number;
    list.pop();
  }
}
