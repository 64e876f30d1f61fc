import type { RequestRecord } from '../engine/record';

const r3 = (ms: number): number => Math.round(ms * 1000) / 1000;

/**
 * The `disagg` object every response carries: the path taken, the devices per stage, emulated
 * device time and measured wall time (labelled, never mixed), and the timeline.
 */
export function disaggSummary(record: RequestRecord): Record<string, unknown> {
  const e = record.emulated;
  const m = record.measured;
  return {
    requestId: record.id,
    state: record.state,
    mode: record.mode,
    attempt: record.attempt,
    devices: record.devices,
    emulated: {
      prefillMs: r3(e.prefillMs),
      transferMs: r3(e.transferMs),
      ttftMs: r3(e.ttftMs),
      tpotMs: r3(e.tpotMs),
      e2eMs: r3(e.e2eMs),
    },
    measured: {
      queueMs: r3(m.queueMs),
      prefillMs: r3(m.prefillMs),
      handoffMs: r3(m.handoffMs),
      decodeMs: r3(m.decodeMs),
      totalMs: r3(m.totalMs),
    },
    timeline: record.timeline.map((t) => ({ ...t, measuredMs: r3(t.measuredMs), emulatedMs: r3(t.emulatedMs) })),
    ...(record.error ? { error: record.error } : {}),
  };
}
