/** What the API hands the pipeline, and what admission answers: the same in one process and in Lambda. */
import type { ChatMessage, SamplingParams, ToolOffer } from '../ports';
import type { AdmissionDecision } from './admission';
import { prefillTime } from '../emulator';
import { stageDevices, type EngineConfig } from './config';
import type { PrefillJob } from './prefill-stage';
import { newRecord, type RequestRecord } from './record';
import { chooseMode, type RoutingRequest } from './routing';
import { RequestTracker, type TrackerDeps } from './tracker';

export interface SubmitRequest {
  readonly id: string;
  readonly model: string;
  readonly promptIds: readonly number[];
  readonly messages: readonly ChatMessage[];
  readonly sampling: SamplingParams;
  /** Functions the model may call, where the backend calls tools. */
  readonly tools?: ToolOffer;
  readonly mode: RoutingRequest;
  /** W3C traceparent the request's stages trace under (the API's span, or the client's header). */
  readonly traceparent?: string;
}

export type SubmitResult =
  | { readonly accepted: true; readonly record: RequestRecord }
  | {
      readonly accepted: false;
      readonly record: RequestRecord;
      readonly decision: Extract<AdmissionDecision, { admitted: false }>;
    };

export interface ReceivedRequest {
  readonly tracker: RequestTracker;
  readonly job: PrefillJob;
  /** Emulated device time its prefill will take, for Retry-After estimates. */
  readonly emulatedPrefillMs: number;
}

/**
 * A request as it arrives, before admission: routed, its record started (stamp `received`), its
 * prefill job and emulated prefill time worked out. Synchronous, so a caller can check admission and
 * reserve its place without an await in between.
 */
export function receiveRequest(
  req: SubmitRequest,
  config: EngineConfig,
  trackerDeps: TrackerDeps,
  createdAtMs: number,
  /** The server process that will run it, where several share a store (RequestRecord.owner). */
  owner?: string,
): ReceivedRequest {
  const mode = chooseMode(req.mode, req.promptIds.length, config.routing);
  const record = newRecord({
    id: req.id,
    model: req.model,
    mode,
    devices: stageDevices(config, mode),
    promptTokens: req.promptIds.length,
    createdAtMs,
    ...(owner ? { owner } : {}),
  });
  const tracker = new RequestTracker(record, trackerDeps, config.resultTtlMs);
  tracker.stamp('received', { promptTokens: req.promptIds.length });
  const pool = mode === 'colocated' && config.colocatedPool ? config.colocatedPool : config.prefillPool;
  const emulatedPrefillMs = prefillTime(
    config.model,
    pool,
    [{ newTokens: req.promptIds.length, cachedTokens: 0 }],
    config.compute,
  ).ms;
  const job: PrefillJob = {
    requestId: req.id,
    promptIds: req.promptIds,
    messages: req.messages,
    sampling: req.sampling,
    ...(req.tools ? { tools: req.tools } : {}),
    mode,
    deadlineMs: createdAtMs + config.requestTimeoutMs,
    ...(req.traceparent ? { traceparent: req.traceparent } : {}),
  };
  return { tracker, job, emulatedPrefillMs };
}

/** Stamps an admitted request queued for prefill at `position`. */
export function markQueued(tracker: RequestTracker, position: number): void {
  tracker.stamp('admitted');
  tracker.stamp('prefill_queued', { position });
}
