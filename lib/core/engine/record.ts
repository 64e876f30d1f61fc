/**
 * A request's record: its state, its output so far and its timeline. The stages write it to the
 * ResultStore; the API reads it (GET /v1/requests/{id}, polling streams in Lambda).
 */
import type { FunctionCall } from '../ports';
import type { RoutingMode } from './routing';

export type RequestState =
  'queued' | 'prefilling' | 'handoff' | 'decoding' | 'completed' | 'failed' | 'cancelled' | 'rejected';

export const TERMINAL_STATES: readonly RequestState[] = ['completed', 'failed', 'cancelled', 'rejected'];

export const isTerminal = (state: RequestState): boolean => TERMINAL_STATES.includes(state);

export type TimelineEventName =
  | 'received'
  | 'admitted'
  | 'rejected'
  | 'prefill_queued'
  | 'prefill_start'
  | 'prefill_end'
  | 'kv_put'
  | 'kv_get'
  | 'decode_start'
  | 'first_token'
  | 'tokens'
  | 'completed'
  | 'failed'
  | 'cancelled';

/**
 * One point on the timeline. `measuredMs` is wall time since the request was received (what this
 * software took); `emulatedMs` is the modelled device time charged to the request up to that point.
 */
export interface TimelineEvent {
  readonly event: TimelineEventName;
  readonly measuredMs: number;
  readonly emulatedMs: number;
  readonly detail?: Readonly<Record<string, string | number | boolean>>;
}

/** Emulated device time, per phase (what the modelled hardware would take). */
export interface EmulatedTimes {
  prefillMs: number;
  transferMs: number;
  /** prefill + transfer + first decode step. */
  ttftMs: number;
  /** Mean of the decode steps after the first token. */
  tpotMs: number;
  e2eMs: number;
}

/** Measured wall time, per stage (what this software took, sleeps for emulated time included). */
export interface MeasuredTimes {
  queueMs: number;
  prefillMs: number;
  handoffMs: number;
  decodeMs: number;
  totalMs: number;
}

/** `tool_calls`: the model stopped to call the functions in `toolCalls` (backends that call tools). */
export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface RequestError {
  /** Stable machine-readable cause: 'timeout', 'kv_missing', 'kv_corrupt', 'prefill_failed', 'backend_error', ... */
  readonly code: string;
  readonly message: string;
}

export interface RequestRecord {
  readonly id: string;
  readonly model: string;
  state: RequestState;
  mode: RoutingMode;
  attempt: number;
  /** Epoch ms when received. */
  readonly createdAtMs: number;
  devices: Readonly<Record<string, string>>;
  promptTokens: number;
  completionTokens: number;
  /** Text pieces in order; the API streams them and joins them for the final text. */
  pieces: string[];
  /** Function calls the model made (backends that call tools); the API sends them when the request ends. */
  toolCalls?: FunctionCall[];
  finishReason: FinishReason | null;
  error: RequestError | null;
  timeline: TimelineEvent[];
  emulated: EmulatedTimes;
  measured: MeasuredTimes;
  /**
   * The server process that runs it, where several share a store (`disagg serve` with Redis): when that
   * process's lease lapses, the request is ended failed (lib/local/reconciler.ts). Absent elsewhere.
   */
  owner?: string;
}

export function newRecord(args: {
  id: string;
  model: string;
  mode: RoutingMode;
  devices: Record<string, string>;
  promptTokens: number;
  createdAtMs: number;
  owner?: string;
}): RequestRecord {
  return {
    ...args,
    state: 'queued',
    attempt: 1,
    completionTokens: 0,
    pieces: [],
    finishReason: null,
    error: null,
    timeline: [],
    emulated: { prefillMs: 0, transferMs: 0, ttftMs: 0, tpotMs: 0, e2eMs: 0 },
    measured: { queueMs: 0, prefillMs: 0, handoffMs: 0, decodeMs: 0, totalMs: 0 },
  };
}

/** Events the stages publish while a request runs. */
export type RequestEvent =
  | { readonly type: 'token'; readonly index: number; readonly text: string }
  | { readonly type: 'state'; readonly state: RequestState }
  /** A timeline stamp as it is made, for watchers of every request (metrics, the live dashboard). */
  | {
      readonly type: 'timeline';
      readonly stamp: TimelineEvent;
      /** The record's createdAtMs: the stamp's epoch time is createdAtMs + stamp.measuredMs. */
      readonly createdAtMs: number;
      readonly mode: RoutingMode;
    }
  | { readonly type: 'done'; readonly record: RequestRecord };
