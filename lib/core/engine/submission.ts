/** What the API hands the pipeline, and what admission answers: the same in one process and in Lambda. */
import type { ChatMessage, SamplingParams } from '../ports';
import type { AdmissionDecision } from './admission';
import type { RequestRecord } from './record';
import type { RoutingRequest } from './routing';

export interface SubmitRequest {
  readonly id: string;
  readonly model: string;
  readonly promptIds: readonly number[];
  readonly messages: readonly ChatMessage[];
  readonly sampling: SamplingParams;
  readonly mode: RoutingRequest;
}

export type SubmitResult =
  | { readonly accepted: true; readonly record: RequestRecord }
  | {
      readonly accepted: false;
      readonly record: RequestRecord;
      readonly decision: Extract<AdmissionDecision, { admitted: false }>;
    };
