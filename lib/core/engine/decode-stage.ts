/**
 * The decode stage: take a handoff descriptor, load and verify its KV (then delete the blob),
 * charge the emulated transfer, and run the request in a continuously batched decode loop whose
 * step time the timing model gives for the live batch.
 */
import {
  decodeBatchTokenTime,
  DEVICES,
  formatPool,
  kvBytesForContext,
  kvTransferTime,
  prefillTime,
  USABLE_MEMORY_FRACTION,
  weightBytes,
  stackSpeculation,
  type DevicePool,
  type SpeculativeOptions,
} from '../emulator';
import type { Crc32c } from '../handoff/checksum';
import type {
  ClaimStore,
  Clock,
  DecodeSession,
  FunctionCall,
  GeneratedToken,
  GenerationBackend,
  KvCache,
  KvStore,
  ResultStore,
  SamplingParams,
} from '../ports';
import {
  fillBatch,
  fitsAlone,
  kvBudgetBytes,
  kvNeedBytes,
  TOO_LARGE_FOR_DECODE_MEMORY,
  type BatchLimits,
} from './batching';
import { stageDevices, type EngineConfig } from './config';
import {
  decodeDescriptor,
  DescriptorError,
  inlineKvBytes,
  verifyKvBytes,
  type HandoffDescriptor,
} from '../handoff/descriptor';
import { kvBlobPool } from '../handoff/blob-pool';
import { decodeKvBlob, KvBlobError, kvBlobChecksum } from '../handoff/kv-blob';
import { isTerminal, newRecord, type RequestError, type RequestRecord } from './record';
import { StoreUnavailableError } from './retry';
import type { RequestTracker } from './tracker';

/** A cancellation marker written by the API (DELETE /v1/requests/{id}) and read by the stages. */
export interface CancellationMarker {
  readonly cancelledAtMs: number;
}

export interface DecodeDeps {
  readonly clock: Clock;
  readonly backend: GenerationBackend;
  readonly kv: KvStore;
  readonly cancellations: ResultStore<CancellationMarker>;
  readonly wallClockMs: () => number;
  /** Told about failures the stage survives (a store write that failed); for logging. */
  readonly onError?: (err: unknown, context: string) => void;
  /**
   * Who decodes which request, so a descriptor delivered twice yields its tokens once and a dead
   * worker's request can be taken over when its lease lapses. Without it, no idempotency.
   */
  readonly claims?: { readonly store: ClaimStore; readonly workerId: string; readonly leaseMs: number };
  /** The checksum port for verifying KV blobs; default the JavaScript reference (adapters inject a native one). */
  readonly crc32c?: Crc32c;
}

/** Why the KV could not be used; the KV failure policy decides what happens next. */
export class KvUnavailableError extends Error {
  override readonly name = 'KvUnavailableError';
  constructor(
    readonly code: 'kv_missing' | 'kv_corrupt' | 'kv_version',
    message: string,
  ) {
    super(message);
  }
}

export function parseDescriptor(body: string): HandoffDescriptor {
  return decodeDescriptor(body);
}

/**
 * Fetches, verifies and frees the descriptor's KV. Throws KvUnavailableError with the cause. The bytes
 * are this stage's once fetched (the blob is deleted from the store), so the KV returned views them.
 */
export async function loadKv(
  descriptor: HandoffDescriptor,
  kvStore: KvStore,
  crc32c?: Crc32c,
): Promise<KvCache | null> {
  return (await fetchKv(descriptor, kvStore, crc32c)).kv;
}

/** loadKv, with the blob the KV views (to give its memory back once decode is done with it). */
async function fetchKv(
  descriptor: HandoffDescriptor,
  kvStore: KvStore,
  crc32c?: Crc32c,
): Promise<{ kv: KvCache | null; blob: Uint8Array | null }> {
  const location = descriptor.kv;
  if (location.kind === 'none') return { kv: null, blob: null };
  let bytes: Uint8Array | null;
  try {
    if (location.kind === 'inline') {
      bytes = inlineKvBytes(location, kvBlobChecksum);
    } else {
      // Consumed: free it now; the TTL lease is only the backstop.
      if (kvStore.take) {
        bytes = await kvStore.take(location.key);
      } else {
        bytes = await kvStore.get(location.key);
        await kvStore.delete(location.key);
      }
      if (bytes === null) {
        throw new KvUnavailableError(
          'kv_missing',
          `KV blob for request ${descriptor.requestId} is missing or expired (key lease ran out or was deleted)`,
        );
      }
      // Size and content checksum against the descriptor in O(1); decodeKvBlob then checks the body.
      verifyKvBytes(location, bytes, kvBlobChecksum);
    }
    // The bytes are this stage's alone now, and the pipeline writes no blob it encoded: if a store handed back the
    // very array prefill encoded (memory, one thread), its checksum holds as computed there.
    const kv = decodeKvBlob(bytes, { copy: false, trustOwnEncoding: true, ...(crc32c ? { crc32c } : {}) });
    return { kv, blob: bytes };
  } catch (err) {
    if (err instanceof KvUnavailableError) throw err;
    if (err instanceof KvBlobError && err.code === 'version_mismatch')
      throw new KvUnavailableError('kv_version', err.message);
    if (err instanceof KvBlobError || err instanceof DescriptorError) {
      throw new KvUnavailableError(
        'kv_corrupt',
        `KV blob for request ${descriptor.requestId} is corrupt: ${err.message}`,
      );
    }
    throw err;
  }
}

/** Emulated time to move the target model's KV for the prompt from the prefill pool to the decode pool. */
export function transferMs(config: EngineConfig, promptTokens: number): number {
  const bytes = kvBytesForContext(config.model, promptTokens, config.compute.kvDtype);
  return kvTransferTime({ bytes, from: config.prefillPool, to: config.decodePool, layers: config.model.layers }).ms;
}

/** A request ready to join a decode batch. */
export interface DecodeJob {
  readonly tracker: RequestTracker;
  readonly session: DecodeSession;
  /**
   * Produced by prefill. When prefill already emitted it (it is the record's first piece), decode takes it up
   * as it joins, without a step; otherwise it is emitted after the first decode step is charged.
   */
  readonly firstToken: GeneratedToken | null;
  readonly promptTokens: number;
  readonly sampling: SamplingParams;
  readonly deadlineMs: number;
  /**
   * Text pieces a previous attempt already delivered. They are regenerated silently and must match,
   * so a client never sees a token twice or a gap; a mismatch ends the request failed.
   */
  readonly delivered?: readonly string[];
  /**
   * The claim owner of this delivery: unique per intake, so a second delivery of the same descriptor
   * to the same worker is refused like one to another worker.
   */
  readonly claimOwner?: string;
  /** Wall ms (deps.wallClockMs) of the last cancellation check before joining; absent: check at the first step. */
  readonly cancelCheckedAtMs?: number;
}

interface Running {
  readonly job: DecodeJob;
  /** Its KV need at its final context, reserved in the batch's budget while it runs. */
  readonly kvBytes: number;
  context: number;
  emitted: number;
  text: string;
  firstStepMs: number;
  pendingFirst: GeneratedToken | null;
  /** The first token left with the prefill: every decode step yields a later one. */
  firstFromPrefill: boolean;
  done: (() => void) | null;
  lastRenewMs: number;
  lastCancelCheckMs: number;
}

/** A job held back by the batching policy until the batch has room and KV memory for it. */
interface Held {
  readonly job: DecodeJob;
  readonly kvBytes: number;
  readonly done: () => void;
  lastRenewMs: number;
}

/**
 * Continuous batching: requests join and leave the running batch between steps, by the shared
 * batching policy (batching.ts): first in first out, up to `maxBatch` and while the batch's KV at
 * final context fits the pool's memory beside the weights. Each step charges the timing model's
 * step time for the batch as it is.
 */
export class DecodeBatcher {
  private readonly running: Running[] = [];
  /** Joined but held back for room or memory, oldest first. */
  private readonly held: Held[] = [];
  private runningKvBytes = 0;
  private readonly limits: BatchLimits;
  private looping = false;
  private roomWaiters: (() => void)[] = [];
  /** The speculative decoding the pool's stack publishes for the model, charged per token (estimate.ts). */
  private readonly speculation: SpeculativeOptions | null;

  constructor(
    private readonly pool: DevicePool,
    private readonly config: EngineConfig,
    private readonly deps: DecodeDeps,
  ) {
    this.limits = { maxBatch: config.decodeBatchMax, kvBudgetBytes: kvBudgetBytes(config.model, pool, config.compute) };
    this.speculation = stackSpeculation(config.model, pool, config.compute);
  }

  get size(): number {
    return this.running.length;
  }

  /** Jobs that joined but wait for room or KV memory (they count as waiting for decode). */
  get waiting(): number {
    return this.held.length;
  }

  /** KV bytes the pool holds beside the weights: the budget the running batch's KV need must fit. */
  get kvBudgetBytes(): number {
    return this.limits.kvBudgetBytes;
  }

  /** A job's KV need: its KV at its final context, prompt + maxTokens (batching.ts). */
  kvNeedOf(job: Pick<DecodeJob, 'promptTokens' | 'sampling'>): number {
    return kvNeedBytes(this.config.model, job.promptTokens, job.sampling.maxTokens, this.config.compute);
  }

  /** Whether a new job may be taken now: none is held back, and the batch is under its size limit with KV left. */
  hasRoom(): boolean {
    return (
      this.held.length === 0 &&
      this.running.length < this.limits.maxBatch &&
      this.runningKvBytes < this.limits.kvBudgetBytes
    );
  }

  /** How many more jobs to take now: the size limit's room, or 0 while one is held back or memory is full. */
  room(): number {
    return this.hasRoom() ? this.limits.maxBatch - this.running.length : 0;
  }

  /** Resolves when a request leaves the batch (or at once if there is room). */
  waitForRoom(): Promise<void> {
    if (this.hasRoom()) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /**
   * Runs the request to a terminal state; resolves when it has one. It joins the running batch at
   * once when the policy allows, else waits its turn; one whose KV could never fit ends failed
   * with code too_large_for_decode_memory.
   */
  join(job: DecodeJob): Promise<void> {
    const kvBytes = this.kvNeedOf(job);
    if (!fitsAlone(kvBytes, this.limits)) return this.refuse(job, kvBytes);
    return new Promise<void>((resolve) => {
      this.held.push({ job, kvBytes, done: resolve, lastRenewMs: this.deps.wallClockMs() });
      this.admitHeld();
    });
  }

  /** Moves held jobs into the running batch, as many as fillBatch allows (a prefix: head of line). */
  private admitHeld(): void {
    const joining = fillBatch(
      this.running.length,
      this.runningKvBytes,
      this.held.length,
      (k) => (this.held[k] as Held).kvBytes,
      this.limits,
    );
    for (const h of this.held.splice(0, joining)) this.start(h);
  }

  private start({ job, kvBytes, done, lastRenewMs }: Held): void {
    job.tracker.setState('decoding');
    job.tracker.stamp('decode_start', { batch: this.running.length + 1 });
    // Calls an earlier attempt made were never sent (they go out at the end): this attempt makes them again.
    if (job.tracker.record.toolCalls !== undefined) job.tracker.record.toolCalls = [];
    this.runningKvBytes += kvBytes;
    const firstPiece = job.firstToken ? job.tracker.record.pieces[0] : undefined;
    const r: Running = {
      job,
      kvBytes,
      context: job.promptTokens,
      emitted: 0,
      text: '',
      firstStepMs: 0,
      pendingFirst: job.firstToken,
      firstFromPrefill: firstPiece !== undefined,
      done,
      lastRenewMs,
      lastCancelCheckMs: job.cancelCheckedAtMs ?? -Infinity,
    };
    this.running.push(r);
    if (firstPiece !== undefined && job.firstToken) {
      // Prefill emitted the first token: take it up here, no decode step is charged for it.
      r.pendingFirst = null;
      r.text = firstPiece;
      r.emitted = 1;
      r.context += 1;
      const stopped = firstStop(job.firstToken.text, job.sampling.stop) !== -1;
      if (stopped || job.sampling.maxTokens <= 1) {
        void this.end(r, 'completed', undefined, stopped ? 'stop' : 'length');
        return;
      }
    }
    if (!this.looping) {
      this.looping = true;
      // Start on the next microtask, so requests that join together share the first step.
      queueMicrotask(() => void this.loop());
    }
  }

  /** Ends a job that can never fit this pool, with the numbers, instead of holding it for ever. */
  private async refuse(job: DecodeJob, kvBytes: number): Promise<void> {
    const { model, compute } = this.config;
    const device = DEVICES[this.pool.device];
    const gb = (bytes: number): string => `${(bytes / 1e9).toFixed(1)} GB`;
    const tokens = job.promptTokens + job.sampling.maxTokens;
    const message =
      `request ${job.tracker.record.id} needs ${gb(kvBytes)} of KV at its final context ` +
      `(${job.promptTokens} prompt + ${job.sampling.maxTokens} max tokens = ${tokens} tokens), but the decode pool ` +
      `${formatPool(this.pool)} holds only ${gb(this.limits.kvBudgetBytes)} of KV: ` +
      `${this.pool.count} x ${gb(device.memoryBytes)} x ${Math.round(USABLE_MEMORY_FRACTION * 100)}% usable ` +
      `minus ${gb(weightBytes(model, compute.weightDtype))} of ${model.id} weights; lower max_tokens or the prompt`;
    job.session.close();
    try {
      await job.tracker.finish('failed', { code: TOO_LARGE_FOR_DECODE_MEMORY, message });
    } catch (err) {
      this.deps.onError?.(err, `saving the end of ${job.tracker.record.id}`);
    }
    await this.releaseClaim(job);
  }

  private async loop(): Promise<void> {
    try {
      while (this.running.length > 0) {
        try {
          await this.step();
          // A turn of the event loop between steps: with no emulated time slept (timeScale 0) the steps would
          // otherwise chain as microtasks, and no HTTP request, admission check or health probe would be served.
          await new Promise((resolve) => setImmediate(resolve));
        } catch (err) {
          // A step that throws (a store outage mid-step) must not strand the batch: end it, failed.
          this.deps.onError?.(err, 'running a decode step');
          const message = `decode step failed: ${(err as Error).message}`;
          await Promise.all([...this.running].map((r) => this.end(r, 'failed', { code: 'decode_failed', message })));
        }
      }
    } finally {
      this.looping = false;
    }
  }

  // Runs once per output token of the whole batch: with one request in it (the common case at low load), it
  // allocates no arrays of its own and awaits only what can be pending (the token, the clock, a due claim renewal).
  private async step(): Promise<void> {
    const batch = this.running.slice();
    const contexts = new Array<number>(batch.length);
    for (let i = 0; i < batch.length; i++) contexts[i] = batch[i]!.context;
    // Per output token, with the speculative decoding the decode stack publishes for the model (if any).
    const stepMs = decodeBatchTokenTime(this.config.model, this.pool, contexts, this.config.compute, this.speculation);
    const next = batch.length === 1 ? this.nextToken(batch[0]!) : Promise.all(batch.map((r) => this.nextToken(r)));
    const charged = this.deps.clock.charge(stepMs);
    const renewed = this.deps.claims && this.held.length > 0 ? this.renewHeldClaims() : null;
    // The tokens never reject (a backend failure is an error token), so they are awaited last, each promise awaited
    // without a Promise.all of its own where nothing else can fail meanwhile.
    if (renewed) await Promise.all([charged, renewed]);
    else await charged;
    const got = await next;
    const tokens: readonly TokenOrError[] = batch.length === 1 ? [got as TokenOrError] : (got as TokenOrError[]);
    // By time, not per step: a cancellation is seen within cancelCheckEveryMs (plus one step) of being marked.
    const now = this.deps.wallClockMs();
    const advanced: Promise<void>[] = [];
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]!;
      const checkCancel = now - r.lastCancelCheckMs >= this.config.cancelCheckEveryMs;
      if (checkCancel) r.lastCancelCheckMs = now;
      const done = this.advance(r, tokens[i]!, stepMs, checkCancel);
      if (done) advanced.push(done);
    }
    if (advanced.length === 1) await advanced[0];
    else if (advanced.length > 1) await Promise.all(advanced);
  }

  /** The request's next token: the one prefill left, or the session's (a backend failure as an error, not a throw). */
  private nextToken(r: Running): TokenOrError | Promise<TokenOrError> {
    if (r.pendingFirst) {
      const first = r.pendingFirst;
      r.pendingFirst = null;
      return first;
    }
    try {
      return r.job.session.next().catch(backendError);
    } catch (err) {
      return backendError(err);
    }
  }

  /**
   * Takes the request one token on. Synchronous (undefined) when there is nothing to wait for, the usual step of a
   * request that goes on; otherwise the promise of its store calls and, at its end, of its terminal save.
   */
  private advance(r: Running, token: TokenOrError, stepMs: number, checkCancel: boolean): Promise<void> | undefined {
    const { tracker } = r.job;
    tracker.decodeEmulatedMs += stepMs;
    if (r.emitted === 0 && !r.firstFromPrefill) r.firstStepMs = stepMs;
    if (token !== null && 'error' in token) return this.end(r, 'failed', token.error);
    if (checkCancel || this.claimRenewalDue(r)) return this.advanceChecked(r, token, checkCancel);
    return this.advanceToken(r, token);
  }

  /** advance's store calls first: the cancellation marker (when due) and the claim (when due). */
  private async advanceChecked(r: Running, token: GeneratedToken | null, checkCancel: boolean): Promise<void> {
    if (checkCancel && (await this.cancelMarked(r.job.tracker.record.id))) return this.end(r, 'cancelled');
    if (!(await this.renewClaim(r))) return this.abandon(r);
    return this.advanceToken(r, token);
  }

  private advanceToken(r: Running, token: GeneratedToken | null): Promise<void> | undefined {
    const { tracker, sampling, deadlineMs } = r.job;
    if (this.deps.wallClockMs() > deadlineMs) {
      return this.end(r, 'failed', {
        code: 'timeout',
        message: `request ${tracker.record.id} passed its deadline after ${r.emitted} tokens`,
      });
    }
    if (token === null) return this.end(r, 'completed', undefined, 'stop');
    if (token.toolCall) {
      this.emitToolCall(r, token.toolCall);
      if (r.emitted >= sampling.maxTokens) return this.end(r, 'completed', undefined, 'length');
      return undefined;
    }
    const stopAt = sampling.stop && sampling.stop.length > 0 ? firstStop(r.text + token.text, sampling.stop) : -1;
    const piece = stopAt === -1 ? token.text : (r.text + token.text).slice(r.text.length, stopAt);
    const delivered = r.job.delivered;
    if (delivered && r.emitted < delivered.length) {
      // Catching up after a takeover: the client already has this piece.
      if (piece !== delivered[r.emitted]) {
        return this.end(r, 'failed', {
          code: 'resume_mismatch',
          message: `request ${tracker.record.id} was restarted after a worker failure, but token ${r.emitted} came out differently (the backend is not deterministic); ending it rather than sending inconsistent text`,
        });
      }
      r.text += piece;
      r.emitted += 1;
      r.context += 1;
    } else if (piece.length > 0 || stopAt === -1) this.emit(r, piece);
    if (stopAt !== -1) return this.end(r, 'completed', undefined, 'stop');
    if (r.emitted >= sampling.maxTokens) return this.end(r, 'completed', undefined, 'length');
    return undefined;
  }

  /**
   * Whether the request's cancellation marker is set. A store that does not answer is no reason to stop a request
   * mid-generation: it decodes on, and the marker is read again at the next check.
   */
  private async cancelMarked(id: string): Promise<boolean> {
    try {
      return (await this.deps.cancellations.get(id)) !== null;
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      this.deps.onError?.(err, `checking whether ${id} was cancelled`);
      return false;
    }
  }

  /** Held jobs keep their claims while they wait; one taken over by another worker leaves the line. */
  private async renewHeldClaims(): Promise<void> {
    if (!this.deps.claims || this.held.length === 0) return;
    const lost = (await Promise.all(this.held.map(async (h) => ((await this.renewClaim(h)) ? null : h)))).filter(
      (h): h is Held => h !== null,
    );
    for (const h of lost) {
      const index = this.held.indexOf(h);
      if (index === -1) continue;
      this.held.splice(index, 1);
      h.job.session.close();
      h.done();
    }
    if (lost.length === 0) return;
    // The head may have left: those behind it may fit now.
    this.admitHeld();
    this.wakeRoomWaiters();
  }

  /** Whether the job's decode claim is due for renewal: about three times per lease, and only for a delivery that took one. */
  private claimRenewalDue(r: { readonly job: DecodeJob; lastRenewMs: number }): boolean {
    const claims = this.deps.claims;
    // Only a delivery that took a claim renews one (a colocated job never crossed the queue).
    if (!claims || !r.job.claimOwner) return false;
    return this.deps.wallClockMs() - r.lastRenewMs >= claims.leaseMs / 3;
  }

  /** Renews the decode claim when due (claimRenewalDue); false when another worker has taken it over. */
  private async renewClaim(r: { readonly job: DecodeJob; lastRenewMs: number }): Promise<boolean> {
    const claims = this.deps.claims;
    if (!claims || !r.job.claimOwner || !this.claimRenewalDue(r)) return true;
    r.lastRenewMs = this.deps.wallClockMs();
    return claims.store.claim(r.job.tracker.record.id, r.job.claimOwner, claims.leaseMs);
  }

  private async releaseClaim(job: DecodeJob): Promise<void> {
    const claims = this.deps.claims;
    if (!claims || !job.claimOwner) return;
    const requestId = job.tracker.record.id;
    await claims.store
      .release(requestId, job.claimOwner)
      .catch((err: unknown) => this.deps.onError?.(err, `releasing the claim on ${requestId}`));
  }

  /** Leaves a request to the worker that took it over: no more tokens, no record writes from here. */
  private abandon(r: Running): void {
    if (!this.leave(r)) return;
    r.job.session.close();
    r.done?.();
    this.wakeRoomWaiters();
  }

  /** Drops every running and held request without ending it, as a crashed process would (tests of takeover). */
  abandonAll(): void {
    for (const h of this.held.splice(0)) {
      h.job.session.close();
      h.done();
    }
    for (const r of [...this.running]) this.abandon(r);
  }

  /** Takes a request out of the running batch, freeing its KV reservation for the held jobs. */
  private leave(r: Running): boolean {
    const index = this.running.indexOf(r);
    if (index === -1) return false;
    this.running.splice(index, 1);
    this.runningKvBytes -= r.kvBytes;
    this.admitHeld();
    return true;
  }

  private wakeRoomWaiters(): void {
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * A function call the model made: kept on the record (the API sends calls when the request ends, as one delta
   * each), counted as one output step, and published to watchers as an empty piece would not be.
   */
  private emitToolCall(r: Running, call: FunctionCall): void {
    const { tracker } = r.job;
    const record = tracker.record;
    (record.toolCalls ??= []).push(call);
    r.emitted += 1;
    r.context += 1;
    record.completionTokens = r.emitted;
    if (r.emitted === 1) {
      record.emulated.ttftMs = record.emulated.prefillMs + record.emulated.transferMs + r.firstStepMs;
      tracker.stamp('first_token');
    }
  }

  private emit(r: Running, piece: string): void {
    const { tracker } = r.job;
    const record = tracker.record;
    r.text += piece;
    r.emitted += 1;
    r.context += 1;
    record.pieces.push(piece);
    record.completionTokens = r.emitted;
    if (r.emitted === 1) {
      record.emulated.ttftMs = record.emulated.prefillMs + record.emulated.transferMs + r.firstStepMs;
      tracker.stamp('first_token');
    } else if (r.emitted % this.config.tokenEventEvery === 0) {
      tracker.stamp('tokens', { count: r.emitted });
    }
    // Progress saves are best effort (pollers see them) and by time: the first token at once, then at most
    // one per progressSaveEveryMs. The terminal save is the one that counts.
    tracker
      .saveProgress(this.config.progressSaveEveryMs)
      ?.catch((err: unknown) => this.deps.onError?.(err, `saving progress of ${record.id}`));
    tracker.publish({ type: 'token', index: r.emitted - 1, text: piece });
  }

  private async end(
    r: Running,
    state: 'completed' | 'failed' | 'cancelled',
    error?: RequestError,
    finish?: 'stop' | 'length',
  ): Promise<void> {
    if (!this.leave(r)) return;
    r.job.session.close();
    const { tracker } = r.job;
    const record = tracker.record;
    // A generation that ended by itself after calling functions stopped to have them called.
    if (finish) record.finishReason = finish === 'stop' && (record.toolCalls?.length ?? 0) > 0 ? 'tool_calls' : finish;
    record.emulated.tpotMs = r.emitted > 1 ? (tracker.decodeEmulatedMs - r.firstStepMs) / (r.emitted - 1) : 0;
    const decodeStart = tracker.stampedAt('decode_start') ?? 0;
    record.measured.decodeMs = tracker.elapsedMs() - decodeStart;
    try {
      await tracker.finish(state, error);
    } catch (err) {
      this.deps.onError?.(err, `saving the end of ${record.id}`);
    }
    await this.releaseClaim(r.job);
    r.done?.();
    this.wakeRoomWaiters();
  }
}

type TokenOrError = GeneratedToken | null | { error: RequestError };

function backendError(err: unknown): TokenOrError {
  return { error: { code: 'backend_error', message: `generation backend failed: ${(err as Error).message}` } };
}

/** Index where the earliest stop sequence starts in `text`, or -1. */
function firstStop(text: string, stop: readonly string[] | undefined): number {
  if (!stop || stop.length === 0) return -1;
  let best = -1;
  for (const s of stop) {
    if (s.length === 0) continue;
    const at = text.indexOf(s);
    if (at !== -1 && (best === -1 || at < best)) best = at;
  }
  return best;
}

/** Opens the backend's decode session for a descriptor whose KV was loaded. */
export function startSession(
  backend: GenerationBackend,
  descriptor: HandoffDescriptor,
  kv: KvCache | null,
  firstToken: GeneratedToken | null,
): DecodeSession {
  return backend.startDecode({
    promptIds: descriptor.promptIds,
    messages: descriptor.messages ?? [],
    kv,
    firstToken,
    sampling: descriptor.sampling,
    ...(descriptor.tools ? { tools: descriptor.tools } : {}),
  });
}

/** Numbers each intake in this process, to make claim owners unique per delivery. */
let deliverySeq = 0;

export type IntakeResult =
  | { readonly kind: 'decode'; readonly job: DecodeJob }
  /** The request reached a terminal state here (cancelled, timed out, KV failure under policy fail). */
  | { readonly kind: 'ended' }
  /** Delivered again after it had finished: nothing to do, acknowledge it. */
  | { readonly kind: 'duplicate' }
  /** Another worker holds it: give the message back, to retry after the holder's lease. */
  | { readonly kind: 'busy'; readonly retryAfterMs: number };

/**
 * Everything between receiving a descriptor and joining the batch: cancellation and deadline
 * checks, KV load (freeing the blob) under the KV failure policy, and the emulated transfer.
 */
export async function intakeHandoff(
  descriptor: HandoffDescriptor,
  tracker: RequestTracker,
  config: EngineConfig,
  deps: DecodeDeps,
): Promise<IntakeResult> {
  const discardKv = async (): Promise<void> => {
    if (descriptor.kv.kind === 'ref') await deps.kv.delete(descriptor.kv.key);
  };
  if (isTerminal(tracker.record.state)) {
    await discardKv();
    return { kind: 'duplicate' };
  }
  const claimOwner = deps.claims ? `${deps.claims.workerId}/${(deliverySeq += 1)}` : undefined;
  if (
    deps.claims &&
    claimOwner &&
    !(await deps.claims.store.claim(descriptor.requestId, claimOwner, deps.claims.leaseMs))
  ) {
    return { kind: 'busy', retryAfterMs: deps.claims.leaseMs };
  }
  // Pieces an earlier attempt delivered (a worker died mid-generation): regenerate, don't resend.
  const delivered = tracker.record.pieces.length > 0 ? [...tracker.record.pieces] : undefined;
  const ended = async (): Promise<IntakeResult> => {
    if (deps.claims && claimOwner) await deps.claims.store.release(descriptor.requestId, claimOwner);
    return { kind: 'ended' };
  };
  if ((await deps.cancellations.get(descriptor.requestId)) !== null) {
    await discardKv();
    await tracker.finish('cancelled');
    return ended();
  }
  const cancelCheckedAtMs = deps.wallClockMs();
  if (deps.wallClockMs() > descriptor.deadlineMs) {
    await discardKv();
    await tracker.finish('failed', {
      code: 'timeout',
      message: `request ${descriptor.requestId} passed its deadline before decode started`,
    });
    return ended();
  }
  let kv: KvCache | null;
  let blob: Uint8Array | null = null;
  let firstToken = descriptor.firstToken;
  try {
    ({ kv, blob } = await fetchKv(descriptor, deps.kv, deps.crc32c));
    const at = tracker.stamp('kv_get', { bytes: descriptor.kv.kind === 'none' ? 0 : descriptor.kv.bytes });
    tracker.record.measured.handoffMs = at - (tracker.stampedAt('prefill_end') ?? at);
    const transfer = transferMs(config, descriptor.promptTokens);
    await deps.clock.charge(transfer);
    tracker.record.emulated.transferMs = transfer;
  } catch (err) {
    if (!(err instanceof KvUnavailableError)) throw err;
    if (config.kvFailurePolicy === 'fail') {
      await tracker.finish('failed', { code: err.code, message: err.message });
      return ended();
    }
    // Recompute: prefill again where decode runs, as attempt + 1.
    tracker.record.attempt += 1;
    tracker.stamp('prefill_start', { recompute: true, cause: err.code });
    const emulated = prefillTime(
      config.model,
      config.decodePool,
      [{ newTokens: descriptor.promptTokens, cachedTokens: 0 }],
      config.compute,
    ).ms;
    const [output] = await Promise.all([
      deps.backend.prefill(descriptor.promptIds, descriptor.sampling),
      deps.clock.charge(emulated),
    ]);
    tracker.record.emulated.prefillMs += emulated;
    tracker.stamp('prefill_end', { recompute: true });
    kv = output.kv;
    firstToken = output.firstToken;
  }
  const opened = startSession(deps.backend, descriptor, kv, firstToken);
  const session = blob ? givingBackOnClose(opened, blob) : opened;
  return {
    kind: 'decode',
    job: {
      tracker,
      session,
      firstToken,
      promptTokens: descriptor.promptTokens,
      sampling: descriptor.sampling,
      deadlineMs: descriptor.deadlineMs,
      ...(delivered ? { delivered } : {}),
      ...(claimOwner ? { claimOwner } : {}),
      cancelCheckedAtMs,
    },
  };
}

/**
 * The session, closing which also gives the memory of the blob its KV views back to the pool (a blob prefill
 * wrote into pooled memory in this thread; any other blob is left to the collector). The backend reads its
 * KV no more once closed (DecodeInput.kv).
 */
function givingBackOnClose(session: DecodeSession, blob: Uint8Array): DecodeSession {
  let open = true;
  return {
    next: () => session.next(),
    close: () => {
      session.close();
      if (open) {
        open = false;
        kvBlobPool.release(blob);
      }
    },
  };
}

/** A request's record for decode: the stored one, or one rebuilt from the descriptor when it expired or was never readable. */
export async function recordForDescriptor(
  descriptor: HandoffDescriptor,
  results: ResultStore<RequestRecord>,
  config: EngineConfig,
): Promise<RequestRecord> {
  const stored = await results.get(descriptor.requestId);
  if (stored) return stored;
  return newRecord({
    id: descriptor.requestId,
    model: descriptor.model,
    mode: 'disaggregated',
    devices: stageDevices(config, 'disaggregated'),
    promptTokens: descriptor.promptTokens,
    createdAtMs: descriptor.createdAtMs,
  });
}
