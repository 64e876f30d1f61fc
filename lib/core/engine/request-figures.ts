/**
 * A finished request's latencies, read off its record: the emulated ones (device time the timing model charged)
 * and the measured ones (wall time this software took), never mixed. Metrics (Prometheus in the embedded
 * server, CloudWatch EMF in Lambda) and request logs all take their figures from here, so they agree.
 *
 * TTFT is read from the `first_token` stamp (measured) and `emulated.ttftMs` (emulated), whichever stage
 * emitted the first token; TPOT is the mean gap after the first token.
 */
import type { RequestRecord, TimelineEventName } from './record';

/** Milliseconds; a field is absent where the request has no such phase (no first token, colocated transfer). */
export interface PhaseFigures {
  readonly ttftMs?: number;
  readonly tpotMs?: number;
  readonly e2eMs?: number;
  readonly queueMs?: number;
  readonly prefillMs?: number;
  /** The KV handoff: emulated link time, measured prefill end to KV loaded. */
  readonly transferMs?: number;
  readonly decodeMs?: number;
}

export interface RequestFigures {
  readonly emulated: PhaseFigures;
  readonly measured: PhaseFigures;
}

const TERMINAL_EVENTS: readonly TimelineEventName[] = ['completed', 'failed', 'cancelled', 'rejected'];

/**
 * The figures of a request in its terminal state (a running one gives what it has so far). Read at the end of
 * every request (metrics, the dashboard feed, the request log), so the timeline is read in one pass and each
 * figure set as it applies, in the order the fields are listed in PhaseFigures.
 */
export function requestFigures(record: RequestRecord): RequestFigures {
  const e = record.emulated;
  const m = record.measured;
  // The first stamp of each event the figures depend on, and the last terminal one.
  let firstTokenAt: number | undefined;
  let endAt: number | undefined;
  let queued = false;
  let prefilled = false;
  let fetched = false;
  let decoded = false;
  for (const t of record.timeline) {
    switch (t.event) {
      case 'first_token':
        firstTokenAt ??= t.measuredMs;
        break;
      case 'prefill_start':
        queued = true;
        break;
      case 'prefill_end':
        prefilled = true;
        break;
      case 'kv_get':
        fetched = true;
        break;
      case 'decode_start':
        decoded = true;
        break;
      default:
        if (TERMINAL_EVENTS.includes(t.event)) endAt = t.measuredMs;
    }
  }
  const handedOff = record.mode === 'disaggregated' && fetched;
  const tokens = record.completionTokens;
  const emulated: { -readonly [K in keyof PhaseFigures]: PhaseFigures[K] } = {};
  if (firstTokenAt !== undefined) emulated.ttftMs = e.ttftMs;
  if (tokens > 1) emulated.tpotMs = e.tpotMs;
  if (endAt !== undefined) emulated.e2eMs = e.e2eMs;
  if (prefilled) emulated.prefillMs = e.prefillMs;
  if (handedOff) emulated.transferMs = e.transferMs;
  if (decoded && endAt !== undefined) emulated.decodeMs = Math.max(0, e.e2eMs - e.prefillMs - e.transferMs);
  const measured: { -readonly [K in keyof PhaseFigures]: PhaseFigures[K] } = {};
  if (firstTokenAt !== undefined) measured.ttftMs = firstTokenAt;
  if (tokens > 1 && firstTokenAt !== undefined && endAt !== undefined) {
    measured.tpotMs = Math.max(0, endAt - firstTokenAt) / (tokens - 1);
  }
  if (endAt !== undefined) measured.e2eMs = m.totalMs;
  if (queued) measured.queueMs = m.queueMs;
  if (prefilled) measured.prefillMs = m.prefillMs;
  if (handedOff) measured.transferMs = m.handoffMs;
  if (decoded && endAt !== undefined) measured.decodeMs = m.decodeMs;
  return { emulated, measured };
}
