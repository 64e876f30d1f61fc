/**
 * The one port between the HTTP application and the pipeline: submit a request, watch its record's progress,
 * cancel it, read it. The embedded runtime implements it with in-process events; the API Lambda with the
 * result store that the prefill and decode functions write.
 */
import type { AdmissionDecision } from '../engine/admission';
import type { RequestRecord } from '../engine/record';
import type { SubmitRequest } from '../engine/submission';

export type { SubmitRequest };

/** A submitted request as it runs. */
export interface RequestProgress {
  /** The text pieces, in order, as they are produced; ends when the request is terminal or the deadline passes. */
  pieces(): AsyncIterable<string>;
  /** The terminal record, or the latest one when the deadline passed first (check its state). */
  outcome(): Promise<RequestRecord>;
  /** Stops watching (the request itself runs on). */
  close(): void;
}

export type Submission =
  | { readonly accepted: true; readonly record: RequestRecord; readonly progress: RequestProgress }
  | {
      readonly accepted: false;
      readonly record: RequestRecord;
      readonly decision: Extract<AdmissionDecision, { admitted: false }>;
    };

export interface CompletionPipeline {
  /**
   * Routes, admits and starts a request. `deadlineMs` (epoch ms) bounds how long its progress is watched; the
   * request itself runs to its own timeout.
   */
  submit(request: SubmitRequest, watch: { readonly deadlineMs: number }): Promise<Submission>;
  get(id: string): Promise<RequestRecord | null>;
  /** Marks a request cancelled; null when there is no such request. */
  cancel(id: string): Promise<RequestRecord | null>;
  /** Queue occupancy and the like, for GET /healthz. */
  health(): Promise<Record<string, unknown>>;
}
