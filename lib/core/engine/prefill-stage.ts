/**
 * The prefill stage: run the prompt through the backend while charging the emulated prefill time,
 * then hand the KV over: blob to the KV store (or inline when small), descriptor to the queue.
 */
import type { DecodeJob } from './decode-stage';
import { HANDOFF_RETRY, PREFILL_RETRY, StoreUnavailableError, withRetries, type RetryPolicy } from './retry';
import { prefillTime } from '../emulator';
import type {
  ChatMessage,
  Clock,
  GenerationBackend,
  KvStore,
  PrefillOutput,
  Queue,
  SamplingParams,
  ToolOffer,
} from '../ports';
import type { EngineConfig } from './config';
import {
  DESCRIPTOR_VERSION,
  encodeDescriptor,
  fitsInline,
  inlineKv,
  refKv,
  type HandoffDescriptor,
  type KvLocation,
} from '../handoff/descriptor';
import type { Crc32c } from '../handoff/checksum';
import { kvBlobPool } from '../handoff/blob-pool';
import { encodeKvBlob, kvBlobChecksum } from '../handoff/kv-blob';
import type { RoutingMode } from './routing';
import type { RequestTracker } from './tracker';

export interface PrefillJob {
  readonly requestId: string;
  readonly promptIds: readonly number[];
  readonly messages: readonly ChatMessage[];
  readonly sampling: SamplingParams;
  /** Functions the model may call (backends that call tools); they travel on to decode in the descriptor. */
  readonly tools?: ToolOffer;
  readonly mode: RoutingMode;
  /** Epoch ms after which the request ends with a timeout. */
  readonly deadlineMs: number;
  /** W3C traceparent of the span this stage works under; it travels on in the handoff descriptor. */
  readonly traceparent?: string;
}

export interface PrefillDeps {
  readonly clock: Clock;
  readonly backend: GenerationBackend;
  readonly kv: KvStore;
  readonly queue: Queue;
  /** A random, unguessable KV key. */
  readonly randomKey: () => string;
  /** The checksum port for encoding KV blobs; default the JavaScript reference (adapters inject a native one). */
  readonly crc32c?: Crc32c;
  /** Retries of the handoff's store writes; default HANDOFF_RETRY. */
  readonly handoffRetry?: RetryPolicy;
}

/**
 * The handoff's writes (KV blob, record, descriptor) failed on every try of their budget. Its message is for the
 * client: it names the step and the tries, never the store's own error text (that is the cause, for the log).
 */
export class HandoffError extends Error {
  override readonly name = 'HandoffError';
  readonly code = 'handoff_failed';
  constructor(
    readonly step: 'kv_put' | 'descriptor_send',
    readonly tries: number,
    cause: unknown,
  ) {
    const what = step === 'kv_put' ? 'the KV cache could not be stored' : 'the decode stage could not be told';
    const store = cause instanceof StoreUnavailableError ? ` (${cause.message})` : '';
    super(
      `prefill finished but the handoff to decode failed: ${what} after ${tries} ${tries === 1 ? 'try' : 'tries'}${store}; send the request again`,
      { cause },
    );
  }
}

/**
 * Runs one handoff write with its own retry budget. Only a store that did not answer is retried (the AWS SDK's
 * clients retry their own calls); once the budget is spent that becomes a HandoffError naming the step. Any
 * other error (a blob over the store's size limit) is thrown as it is, at once.
 */
async function handoffStep<T>(step: HandoffError['step'], policy: RetryPolicy, work: () => Promise<T>): Promise<T> {
  let tries = 0;
  try {
    return await withRetries(
      () => {
        tries += 1;
        return work();
      },
      policy,
      (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      (err) => err instanceof StoreUnavailableError,
    );
  } catch (err) {
    throw err instanceof StoreUnavailableError ? new HandoffError(step, tries, err) : err;
  }
}

/** Runs the prompt and charges its emulated time; returns the backend's output (KV and first token). */
export async function prefillPrompt(
  tracker: RequestTracker,
  job: PrefillJob,
  config: EngineConfig,
  deps: Pick<PrefillDeps, 'clock' | 'backend'>,
): Promise<PrefillOutput> {
  const pool = job.mode === 'colocated' && config.colocatedPool ? config.colocatedPool : config.prefillPool;
  tracker.setState('prefilling');
  const start = tracker.stamp('prefill_start');
  if (tracker.record.attempt === 1) tracker.record.measured.queueMs = start;
  const emulated = prefillTime(
    config.model,
    pool,
    [{ newTokens: job.promptIds.length, cachedTokens: 0 }],
    config.compute,
  ).ms;
  // Model compute and the emulated device time overlap: wall time is the longer of the two.
  const [output] = await Promise.all([deps.backend.prefill(job.promptIds, job.sampling), deps.clock.charge(emulated)]);
  tracker.record.emulated.prefillMs += emulated;
  const end = tracker.stamp('prefill_end', {
    emulatedPrefillMs: round(emulated),
    pool: `${pool.device}x${pool.count}`,
  });
  tracker.record.measured.prefillMs += end - start;
  emitFirstToken(tracker, output, job);
  return output;
}

/**
 * The prefill pass computes the first token, so it leaves with the prefill (as Splitwise, DistServe and NxD
 * Inference emit it): TTFT is queueing + prefill, and the KV transfer delays the second token, not the first.
 * Decode later regenerates this token silently and carries on from the second. A backend that gives no first
 * token at prefill (a hosted model) leaves it to decode.
 */
export function emitFirstToken(
  tracker: RequestTracker,
  output: PrefillOutput,
  job: Pick<PrefillJob, 'sampling'>,
): void {
  const record = tracker.record;
  if (!output.firstToken || record.pieces.length > 0) return;
  const stop = job.sampling.stop ?? [];
  let piece = output.firstToken.text;
  for (const s of stop) {
    const at = s === '' ? -1 : piece.indexOf(s);
    if (at !== -1) piece = piece.slice(0, at);
  }
  record.pieces.push(piece);
  record.completionTokens = 1;
  record.emulated.ttftMs = record.emulated.prefillMs;
  tracker.stamp('first_token');
  tracker.publish({ type: 'token', index: 0, text: piece });
}

/**
 * Disaggregated handoff (claim check): the KV blob goes to the KV store under a random key with a
 * TTL lease, or inline when small; the descriptor goes to the queue. A failed send deletes the blob.
 */
export async function handOff(
  tracker: RequestTracker,
  job: PrefillJob,
  output: PrefillOutput,
  config: EngineConfig,
  deps: PrefillDeps,
): Promise<HandoffDescriptor> {
  let kv: KvLocation = { kind: 'none' };
  let storedKey: string | null = null;
  if (output.kv) {
    const blob = encodeKvBlob(output.kv, { pool: kvBlobPool, ...(deps.crc32c ? { crc32c: deps.crc32c } : {}) });
    const checksum = kvBlobChecksum(blob);
    const bytes = blob.length;
    if (fitsInline(bytes)) {
      kv = inlineKv(blob, checksum);
      kvBlobPool.release(blob);
    } else {
      storedKey = deps.randomKey();
      kv = refKv(storedKey, blob, checksum);
      // The blob is handed over: a store in another thread takes its buffer without a copy, so it is not read after.
      const key = storedKey;
      await handoffStep('kv_put', deps.handoffRetry ?? HANDOFF_RETRY, () => deps.kv.put(key, blob, config.kvTtlMs));
      // A store that copied or sent the bytes is done with them; one that keeps them, decode gives them back.
      // After a failed put they are not given back: a command still queued in the client may yet read them.
      if (deps.kv.copiesOnPut === true) kvBlobPool.release(blob);
    }
    tracker.stamp('kv_put', { bytes, inline: storedKey === null });
  }
  const record = tracker.record;
  const descriptor: HandoffDescriptor = {
    v: DESCRIPTOR_VERSION,
    requestId: job.requestId,
    attempt: record.attempt,
    model: config.model.id,
    promptTokens: job.promptIds.length,
    promptIds: job.promptIds,
    messages: job.messages,
    sampling: job.sampling,
    ...(job.tools ? { tools: job.tools } : {}),
    deadlineMs: job.deadlineMs,
    createdAtMs: record.createdAtMs,
    kv,
    firstToken: output.firstToken,
    stamps: { prefill: { emulatedMs: record.emulated.prefillMs, measuredMs: record.measured.prefillMs } },
    mode: 'disaggregated',
    ...(job.traceparent ? { traceparent: job.traceparent } : {}),
  };
  try {
    const body = encodeDescriptor(descriptor);
    tracker.setState('handoff');
    // The record's save is progress (the terminal save is the one that counts): a failed one does not stop the handoff.
    await tracker.save().catch(() => undefined);
    await handoffStep('descriptor_send', deps.handoffRetry ?? HANDOFF_RETRY, () => deps.queue.send(body));
  } catch (err) {
    // Best effort: the blob's TTL lease frees it when the store cannot be reached now.
    if (storedKey !== null) await deps.kv.delete(storedKey).catch(() => undefined);
    throw err;
  }
  return descriptor;
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/**
 * Prefill retried with backoff (PREFILL_RETRY) while `stillWanted` says the request is neither cancelled
 * nor past its deadline; the last error is rethrown. Shared by the embedded runtime and the prefill function.
 */
export function prefillWithRetries(
  tracker: RequestTracker,
  job: PrefillJob,
  config: EngineConfig,
  deps: Pick<PrefillDeps, 'clock' | 'backend'>,
  stillWanted: () => Promise<boolean>,
  onTryFailed: (err: unknown, attempt: number) => void = () => undefined,
): Promise<PrefillOutput> {
  let tries = 0;
  return withRetries(
    () => {
      tries += 1;
      return prefillPrompt(tracker, job, config, deps);
    },
    PREFILL_RETRY,
    (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    async (err, attempt) => {
      onTryFailed(err, attempt);
      return stillWanted();
    },
  ).catch((err: unknown): never => {
    throw new PrefillError(tries, err);
  });
}

/** Prefill failed on its last try: how many were made, and the last error (the message is the last error's). */
export class PrefillError extends Error {
  override readonly name = 'PrefillError';
  constructor(
    readonly tries: number,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }

  /** The client's sentence: the tries really made, and why the last failed (a store by name, never its text). */
  describe(): string {
    return `prefill failed after ${this.tries} ${this.tries === 1 ? 'try' : 'tries'}: ${this.message}`;
  }
}

/** The decode job of a colocated request: one device does both phases, so its KV never leaves it. */
export function colocatedDecodeJob(
  tracker: RequestTracker,
  job: PrefillJob,
  output: PrefillOutput,
  backend: GenerationBackend,
): DecodeJob {
  const session = backend.startDecode({
    promptIds: job.promptIds,
    messages: job.messages,
    kv: output.kv,
    firstToken: output.firstToken,
    sampling: job.sampling,
    ...(job.tools ? { tools: job.tools } : {}),
  });
  return {
    tracker,
    session,
    firstToken: output.firstToken,
    promptTokens: job.promptIds.length,
    sampling: job.sampling,
    deadlineMs: job.deadlineMs,
  };
}
