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

function stampedAt(record: RequestRecord, event: TimelineEventName): number | undefined {
  return record.timeline.find((t) => t.event === event)?.measuredMs;
}

const TERMINAL_EVENTS: readonly TimelineEventName[] = ['completed', 'failed', 'cancelled', 'rejected'];

/** The figures of a request in its terminal state (a running one gives what it has so far). */
export function requestFigures(record: RequestRecord): RequestFigures {
  const e = record.emulated;
  const m = record.measured;
  const firstTokenAt = stampedAt(record, 'first_token');
  const endAt = [...record.timeline].reverse().find((t) => TERMINAL_EVENTS.includes(t.event))?.measuredMs;
  const prefilled = stampedAt(record, 'prefill_end') !== undefined;
  const handedOff = record.mode === 'disaggregated' && stampedAt(record, 'kv_get') !== undefined;
  const decoded = stampedAt(record, 'decode_start') !== undefined;
  const tokens = record.completionTokens;
  const emulatedDecodeMs = Math.max(0, e.e2eMs - e.prefillMs - e.transferMs);
  const emulated: PhaseFigures = {
    ...(firstTokenAt !== undefined ? { ttftMs: e.ttftMs } : {}),
    ...(tokens > 1 ? { tpotMs: e.tpotMs } : {}),
    ...(endAt !== undefined ? { e2eMs: e.e2eMs } : {}),
    ...(prefilled ? { prefillMs: e.prefillMs } : {}),
    ...(handedOff ? { transferMs: e.transferMs } : {}),
    ...(decoded && endAt !== undefined ? { decodeMs: emulatedDecodeMs } : {}),
  };
  const measured: PhaseFigures = {
    ...(firstTokenAt !== undefined ? { ttftMs: firstTokenAt } : {}),
    ...(tokens > 1 && firstTokenAt !== undefined && endAt !== undefined
      ? { tpotMs: Math.max(0, endAt - firstTokenAt) / (tokens - 1) }
      : {}),
    ...(endAt !== undefined ? { e2eMs: m.totalMs } : {}),
    ...(stampedAt(record, 'prefill_start') !== undefined ? { queueMs: m.queueMs } : {}),
    ...(prefilled ? { prefillMs: m.prefillMs } : {}),
    ...(handedOff ? { transferMs: m.handoffMs } : {}),
    ...(decoded && endAt !== undefined ? { decodeMs: m.decodeMs } : {}),
  };
  return { emulated, measured };
}
