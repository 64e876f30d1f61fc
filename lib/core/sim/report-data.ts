/**
 * Data shaping for the HTML report (pure: simulation results in, JSON-ready data out): latency CDFs,
 * downsampled so a report stays small, goodput against load, and per-request timelines split into
 * phases. The HTML itself is written by the CLI (bin/commands/report.ts).
 */
import { OUTCOME_COMPLETED, type RequestTimes, type SimResult } from './engine';

/** Points per CDF line in the report: enough for a smooth curve, few enough to keep the file small. */
export const MAX_CDF_POINTS = 500;
/** Requests shown in each system's timeline. */
export const TIMELINE_SAMPLES = 20;

/** [x, y]: the share y of values at or below x. */
export type CdfPoint = readonly [x: number, y: number];

/**
 * Keeps at most `max` items, evenly spaced by index, always the first and the last (so a CDF still
 * starts at its minimum and ends at 1).
 */
export function downsample<T>(items: readonly T[], max: number): T[] {
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`max must be a whole number of at least 1, got ${max}`);
  const n = items.length;
  if (n <= max) return items.slice();
  if (max === 1) return [items[n - 1] as T];
  const out: T[] = [];
  for (let k = 0; k < max; k++) out.push(items[Math.round((k * (n - 1)) / (max - 1))] as T);
  return out;
}

const round = (v: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};

/** Empirical CDF of the finite values, at most `maxPoints` points, x ascending, y ending at 1. */
export function cdfPoints(values: ArrayLike<number>, maxPoints = MAX_CDF_POINTS): CdfPoint[] {
  const finite: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (Number.isFinite(v)) finite.push(v);
  }
  finite.sort((a, b) => a - b);
  const n = finite.length;
  // Only the last of equal values is a CDF step: the share at or below it.
  const points: CdfPoint[] = [];
  for (let i = 0; i < n; i++) {
    if (i + 1 < n && finite[i + 1] === finite[i]) continue;
    points.push([round(finite[i] as number, 3), (i + 1) / n]);
  }
  return downsample(points, maxPoints).map(([x, y]) => [x, round(y, 6)] as const);
}

/** The latencies the metrics summarise, per completed request (TPOT only for answers longer than one token). */
export function latencies(t: RequestTimes): { ttftMs: number[]; tpotMs: number[]; e2eMs: number[] } {
  const ttftMs: number[] = [];
  const tpotMs: number[] = [];
  const e2eMs: number[] = [];
  for (let i = 0; i < t.arrivalMs.length; i++) {
    if (t.outcome[i] !== OUTCOME_COMPLETED) continue;
    const arrival = t.arrivalMs[i] as number;
    const first = t.firstTokenMs[i] as number;
    const end = t.endMs[i] as number;
    const out = t.outputTokens[i] as number;
    ttftMs.push(first - arrival);
    e2eMs.push(end - arrival);
    if (out > 1) tpotMs.push((end - first) / (out - 1));
  }
  return { ttftMs, tpotMs, e2eMs };
}

/** Phases of a request in time order; they add up to its end-to-end time. */
export const PHASES = ['queue', 'prefill', 'transfer', 'decode wait', 'decode'] as const;
export type Phase = (typeof PHASES)[number];

export interface TimelineRow {
  /** Index into the workload's requests. */
  readonly index: number;
  readonly promptTokens: number;
  readonly outputTokens: number;
  /** ms per phase, in PHASES order. */
  readonly segments: readonly number[];
  readonly e2eMs: number;
}

/**
 * A completed request's phases: waiting for prefill, prefill, the KV transfer (0 colocated), waiting
 * to join a decode batch (0 colocated), and decoding to the last token.
 */
export function timelineRow(t: RequestTimes, i: number): TimelineRow {
  const arrival = t.arrivalMs[i] as number;
  const prefillStart = t.prefillStartMs[i] as number;
  const prefillEnd = t.prefillEndMs[i] as number;
  const ready = t.decodeReadyMs[i] as number;
  const join = t.decodeJoinMs[i] as number;
  const end = t.endMs[i] as number;
  return {
    index: i,
    promptTokens: t.promptTokens[i] as number,
    outputTokens: t.outputTokens[i] as number,
    segments: [prefillStart - arrival, prefillEnd - prefillStart, ready - prefillEnd, join - ready, end - join],
    e2eMs: end - arrival,
  };
}

/** Up to `k` request indices spread evenly over those every result completed (the same requests for each system). */
export function sampleRequests(results: readonly SimResult[], k = TIMELINE_SAMPLES): number[] {
  const first = results[0];
  if (!first) return [];
  const n = first.requests.arrivalMs.length;
  const everywhere: number[] = [];
  for (let i = 0; i < n; i++) {
    if (results.every((r) => r.requests.outcome[i] === OUTCOME_COMPLETED)) everywhere.push(i);
  }
  return downsample(everywhere, Math.max(1, k));
}

export interface GoodputPoint {
  /** The load step: a rate scale of the workload, or a synthetic rate in req/s. */
  readonly load: number;
  readonly offeredRps: number;
  readonly goodputRps: number;
  readonly sloAttainment: number;
}

export interface ReportTable {
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

export interface ReportInput {
  readonly title: string;
  readonly model: string;
  readonly workloadSource: string;
  readonly requests: number;
  readonly slo: { readonly ttftMs: number; readonly tpotMs: number };
  /** The runs the latency and timeline charts show (one per system, same workload). */
  readonly results: readonly SimResult[];
  /** Tables as the CLI prints them. */
  readonly tables: readonly { readonly caption: string; readonly table: ReportTable }[];
  readonly goodput: {
    /** What the load axis is, e.g. "rate scale (x the workload's arrival rate)". */
    readonly axis: string;
    /** How the points were produced. */
    readonly note: string;
    readonly series: readonly { readonly spec: string; readonly points: readonly GoodputPoint[] }[];
  };
  readonly notes: readonly string[];
}

export interface ReportData {
  readonly title: string;
  readonly model: string;
  readonly workloadSource: string;
  readonly requests: number;
  readonly slo: { readonly ttftMs: number; readonly tpotMs: number };
  readonly tables: ReportInput['tables'];
  readonly cdf: Record<'ttftMs' | 'tpotMs' | 'e2eMs', { readonly spec: string; readonly points: CdfPoint[] }[]>;
  readonly goodput: ReportInput['goodput'];
  readonly phases: readonly Phase[];
  readonly timelines: { readonly spec: string; readonly rows: TimelineRow[] }[];
  readonly notes: readonly string[];
}

const roundRow = (row: TimelineRow): TimelineRow => ({
  ...row,
  segments: row.segments.map((s) => round(s, 3)),
  e2eMs: round(row.e2eMs, 3),
});

/** Everything the report's page draws, as plain JSON-ready data. */
export function buildReportData(input: ReportInput): ReportData {
  const perSystem = input.results.map((r) => ({ spec: r.spec, ...latencies(r.requests) }));
  const sample = sampleRequests(input.results);
  return {
    title: input.title,
    model: input.model,
    workloadSource: input.workloadSource,
    requests: input.requests,
    slo: input.slo,
    tables: input.tables,
    cdf: {
      ttftMs: perSystem.map((s) => ({ spec: s.spec, points: cdfPoints(s.ttftMs) })),
      tpotMs: perSystem.map((s) => ({ spec: s.spec, points: cdfPoints(s.tpotMs) })),
      e2eMs: perSystem.map((s) => ({ spec: s.spec, points: cdfPoints(s.e2eMs) })),
    },
    goodput: input.goodput,
    phases: PHASES,
    timelines: input.results.map((r) => ({
      spec: r.spec,
      rows: sample.map((i) => roundRow(timelineRow(r.requests, i))),
    })),
    notes: input.notes,
  };
}
