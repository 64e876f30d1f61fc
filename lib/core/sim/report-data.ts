/**
 * Data shaping for the HTML report (pure: simulation results in, JSON-ready data out): latency CDFs,
 * downsampled so a report stays small, goodput against load, and per-request timelines split into
 * phases. The HTML itself is written by the CLI (bin/commands/report.ts).
 */
import { OUTCOME_COMPLETED, type RequestTimes, type SimResult } from './engine';
import { systemPricePerHour } from './metrics';
import type { Workload } from './workload';

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

/**
 * Empirical CDF of the finite values, at most `maxPoints` points, x ascending, y ending at 1; with `total` (all
 * requests, rejected ones included), y is the share of `total`, so the curve ends below 1 by the share that never
 * got a value (rejected requests sit at infinity).
 */
export function cdfPoints(values: ArrayLike<number>, maxPoints = MAX_CDF_POINTS, total?: number): CdfPoint[] {
  const finite: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (Number.isFinite(v)) finite.push(v);
  }
  finite.sort((a, b) => a - b);
  const n = finite.length;
  const denominator = Math.max(n, total ?? n);
  // Only the last of equal values is a CDF step: the share at or below it.
  const points: CdfPoint[] = [];
  for (let i = 0; i < n; i++) {
    if (i + 1 < n && finite[i + 1] === finite[i]) continue;
    points.push([round(finite[i] as number, 3), (i + 1) / denominator]);
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

/** A labelled line of the report's assumptions box; `assumed` marks a value that is an assumption, not a source. */
export interface Assumption {
  readonly label: string;
  readonly value: string;
  readonly assumed?: boolean;
}

/** A system on the cost chart: USD per hour against p99 end-to-end. */
export interface CostPoint {
  readonly spec: string;
  readonly dollarsPerHour: number;
  readonly e2eP99Ms: number;
  readonly meetsTarget: boolean;
  readonly onFrontier: boolean;
}

export interface ReportInput {
  readonly title: string;
  /** One line at the top of the page: the answer. */
  readonly verdict?: string;
  /** Model, stacks, prices (assumed or sourced), SLOs, the trace and its shape. */
  readonly assumptions?: readonly Assumption[];
  /** Systems on the cost chart (plan: every system it simulated); default: the runs shown, where priced. */
  readonly costPoints?: readonly CostPoint[];
  readonly model: string;
  readonly workloadSource: string;
  readonly requests: number;
  readonly slo: { readonly ttftMs: number; readonly tpotMs: number };
  /** The runs the latency and timeline charts show (one per system, same workload). */
  readonly results: readonly SimResult[];
  /** Tables as the CLI prints them. */
  readonly tables: readonly { readonly caption: string; readonly table: ReportTable }[];
  readonly goodput?: {
    /** What the load axis is, e.g. "rate scale (x the workload's arrival rate)". */
    readonly axis: string;
    /** How the points were produced. */
    readonly note: string;
    readonly series: readonly { readonly spec: string; readonly points: readonly GoodputPoint[] }[];
  };
  readonly notes: readonly string[];
}

/** Per system: what it costs, per hour, per request and per million output tokens (null without a price). */
export interface CostRow {
  readonly spec: string;
  readonly dollarsPerHour: number | null;
  readonly dollarsPerRequest: number | null;
  readonly dollarsPerMillionOutputTokens: number | null;
  readonly note: string | null;
}

/** Per system: how busy each pool was at the recorded load, and the load that would fill the busiest. */
export interface CapacityRow {
  readonly spec: string;
  readonly utilisation: Record<string, number>;
  readonly bottleneck: string;
  /** Offered load / capacity of the busiest pool (its utilisation), and the rate multiple that would fill it. */
  readonly loadShare: number;
  readonly saturatesAtRateScale: number | null;
}

/** Time-averaged pool occupancy in equal bins over the run. */
export interface TimeSeries {
  readonly spec: string;
  /** Bin starts, seconds of virtual time from the first arrival. */
  readonly t: readonly number[];
  /** Requests waiting for prefill (admitted, prefill not started). */
  readonly prefillQueue: readonly number[];
  /** Handed off, waiting to join a decode batch. */
  readonly decodeQueue: readonly number[];
  /** Prompts in prefill, per prefill (or colocated) replica: a batched pass or a chunked prompt counts each prompt. */
  readonly prefillRunningPerReplica: readonly number[];
  /** Requests in running decode batches, per decode (or colocated) replica. */
  readonly decodeRunningPerReplica: readonly number[];
}

export interface ReportData {
  readonly title: string;
  readonly verdict: string | null;
  readonly assumptions: readonly Assumption[];
  readonly costs: readonly CostRow[];
  readonly capacity: readonly CapacityRow[];
  readonly timeseries: readonly TimeSeries[];
  readonly costPoints: readonly CostPoint[];
  /** Requests per system, rejected included: the CDFs' denominator. */
  readonly totals: readonly { readonly spec: string; readonly requests: number; readonly rejected: number }[];
  readonly model: string;
  readonly workloadSource: string;
  readonly requests: number;
  readonly slo: { readonly ttftMs: number; readonly tpotMs: number };
  readonly tables: ReportInput['tables'];
  readonly cdf: Record<'ttftMs' | 'tpotMs' | 'e2eMs', { readonly spec: string; readonly points: CdfPoint[] }[]>;
  readonly goodput: NonNullable<ReportInput['goodput']>;
  readonly phases: readonly Phase[];
  readonly timelines: { readonly spec: string; readonly rows: TimelineRow[] }[];
  readonly notes: readonly string[];
}

const roundRow = (row: TimelineRow): TimelineRow => ({
  ...row,
  segments: row.segments.map((s) => round(s, 3)),
  e2eMs: round(row.e2eMs, 3),
});

/** A path in free text reduced to its file name, so a page never shows where a file lives on the machine that wrote it. */
export function withoutPaths(text: string): string {
  // A token with a directory part that is absolute (/, ~/, C:\) or ends in a file extension; "req/s" is neither.
  return text.replace(
    /(?<![\w.])(?:(?:[A-Za-z]:)?[\\/]|~[\\/]|\.{1,2}[\\/])?(?:[\w.@+-]+[\\/])+([\w.@+-]+)/g,
    (whole: string, name: string) =>
      /^(?:[A-Za-z]:)?[\\/~]/.test(whole) || /\.[A-Za-z0-9]{1,8}$/.test(name) ? name : whole,
  );
}

const sortedQuantile = (sorted: readonly number[], q: number): number =>
  sorted.length === 0
    ? 0
    : (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number);

/** The window the burstiness figure uses: prompt tokens arriving in any 10 s, against the mean 10 s. */
export const BURST_WINDOW_MS = 10_000;

/** A workload's shape: size, span, rate, length quantiles and how bursty its prompt tokens arrive. */
export function workloadShape(w: Workload): {
  requests: number;
  spanS: number;
  meanRps: number;
  prompt: { mean: number; p50: number; p99: number };
  output: { mean: number; p50: number; p99: number };
  /** Most prompt tokens arriving in one BURST_WINDOW_MS window, over the mean per window (1 = perfectly even). */
  peakToMeanPromptTokens: number | null;
  closedLoop: boolean;
} {
  const n = w.requests.length;
  const prompts = w.requests.map((r) => r.promptTokens).sort((a, b) => a - b);
  const outputs = w.requests.map((r) => r.outputTokens).sort((a, b) => a - b);
  const open = w.requests.filter((r) => r.thinkMs === undefined).sort((a, b) => a.arrivalMs - b.arrivalMs);
  const first = open[0]?.arrivalMs ?? 0;
  const last = open.at(-1)?.arrivalMs ?? 0;
  const spanMs = last - first;
  let peak: number | null = null;
  if (spanMs >= 2 * BURST_WINDOW_MS && open.length === n) {
    let lo = 0;
    let inWindow = 0;
    let best = 0;
    for (const r of open) {
      inWindow += r.promptTokens;
      while ((open[lo] as (typeof open)[number]).arrivalMs <= r.arrivalMs - BURST_WINDOW_MS) {
        inWindow -= (open[lo] as (typeof open)[number]).promptTokens;
        lo += 1;
      }
      best = Math.max(best, inWindow);
    }
    const total = prompts.reduce((a, b) => a + b, 0);
    peak = best / (total / (spanMs / BURST_WINDOW_MS));
  }
  const mean = (a: readonly number[]): number => (a.length === 0 ? 0 : a.reduce((x, y) => x + y, 0) / a.length);
  return {
    requests: n,
    spanS: spanMs / 1000,
    meanRps: spanMs > 0 ? n / (spanMs / 1000) : 0,
    prompt: { mean: mean(prompts), p50: sortedQuantile(prompts, 0.5), p99: sortedQuantile(prompts, 0.99) },
    output: { mean: mean(outputs), p50: sortedQuantile(outputs, 0.5), p99: sortedQuantile(outputs, 0.99) },
    peakToMeanPromptTokens: peak,
    closedLoop: open.length < n,
  };
}

/** The workload's shape as one line for the assumptions box. */
export function workloadShapeLine(w: Workload): string {
  const s = workloadShape(w);
  const r = (v: number): string => Math.round(v).toLocaleString('en');
  return (
    `${s.requests} requests over ${s.spanS.toFixed(0)} s${s.closedLoop ? ' (closed loop: turns follow answers)' : ` (${s.meanRps.toFixed(2)} req/s mean)`}; ` +
    `prompt tokens mean ${r(s.prompt.mean)}, p50 ${r(s.prompt.p50)}, p99 ${r(s.prompt.p99)}; ` +
    `output tokens mean ${r(s.output.mean)}, p50 ${r(s.output.p50)}, p99 ${r(s.output.p99)}` +
    (s.peakToMeanPromptTokens === null
      ? ''
      : `; busiest ${BURST_WINDOW_MS / 1000} s holds ${s.peakToMeanPromptTokens.toFixed(1)}x the mean prompt tokens`)
  );
}

function costRow(r: SimResult): CostRow {
  const price = systemPricePerHour(r.system, r.options.cs3PricePerHour);
  const m = r.metrics;
  if (typeof price === 'string') {
    return {
      spec: r.spec,
      dollarsPerHour: null,
      dollarsPerRequest: null,
      dollarsPerMillionOutputTokens: null,
      note: price,
    };
  }
  const dollars = price * (m.durationMs / 3_600_000);
  return {
    spec: r.spec,
    dollarsPerHour: round(price, 2),
    dollarsPerRequest: m.completed > 0 ? round(dollars / m.completed, 6) : null,
    dollarsPerMillionOutputTokens: m.costPerMillionOutputTokens,
    note: m.completed > 0 ? null : 'no request completed',
  };
}

function capacityRow(r: SimResult): CapacityRow {
  const entries = Object.entries(r.metrics.utilisation);
  const [bottleneck, share] = entries.reduce((best, e) => (e[1] > best[1] ? e : best), ['-', 0] as [string, number]);
  return {
    spec: r.spec,
    utilisation: r.metrics.utilisation,
    bottleneck,
    loadShare: round(share, 4),
    saturatesAtRateScale: share > 0 ? round(1 / share, 2) : null,
  };
}

/** Bins of the time series. */
export const TIME_BINS = 120;

/** Time-averaged count of [start, end) intervals per bin, divided by `per`. */
function coverage(starts: Float64Array, ends: Float64Array, t0: number, binMs: number, per: number): number[] {
  const out = new Float64Array(TIME_BINS);
  for (let i = 0; i < starts.length; i++) {
    const a = (starts[i] as number) - t0;
    const b = (ends[i] as number) - t0;
    if (!(b > a)) continue;
    const first = Math.max(0, Math.floor(a / binMs));
    const last = Math.min(TIME_BINS - 1, Math.floor(b / binMs));
    for (let k = first; k <= last; k++) {
      const lo = Math.max(a, k * binMs);
      const hi = Math.min(b, (k + 1) * binMs);
      if (hi > lo) out[k] = (out[k] as number) + (hi - lo);
    }
  }
  return Array.from(out, (v) => round(v / binMs / per, 3));
}

export function timeSeries(r: SimResult): TimeSeries {
  const t = r.requests;
  let t0 = Infinity;
  let t1 = -Infinity;
  for (let i = 0; i < t.arrivalMs.length; i++) {
    if ((t.arrivalMs[i] as number) < t0) t0 = t.arrivalMs[i] as number;
    if ((t.endMs[i] as number) > t1) t1 = t.endMs[i] as number;
  }
  const binMs = Math.max(1, (t1 - t0) / TIME_BINS);
  const pools = r.counters.pools;
  const prefillReplicas = (pools.find((p) => p.role === 'prefill') ?? pools[0])?.replicas ?? 1;
  const decodeReplicas = (pools.find((p) => p.role !== 'prefill') ?? pools[0])?.replicas ?? 1;
  return {
    spec: r.spec,
    t: Array.from({ length: TIME_BINS }, (_, k) => round((k * binMs) / 1000, 3)),
    prefillQueue: coverage(t.arrivalMs, t.prefillStartMs, t0, binMs, 1),
    decodeQueue: coverage(t.decodeReadyMs, t.decodeJoinMs, t0, binMs, 1),
    prefillRunningPerReplica: coverage(t.prefillStartMs, t.prefillEndMs, t0, binMs, prefillReplicas),
    decodeRunningPerReplica: coverage(t.decodeJoinMs, t.endMs, t0, binMs, decodeReplicas),
  };
}

/** The systems shown, on the cost chart where they have a price. */
function defaultCostPoints(results: readonly SimResult[]): CostPoint[] {
  return results.flatMap((r) => {
    const price = systemPricePerHour(r.system, r.options.cs3PricePerHour);
    const p99 = r.metrics.e2eMs.p99;
    return typeof price === 'number' && p99 !== null && Number.isFinite(p99)
      ? [{ spec: r.spec, dollarsPerHour: round(price, 2), e2eP99Ms: p99, meetsTarget: true, onFrontier: false }]
      : [];
  });
}

/** Everything the report's page draws, as plain JSON-ready data. */
export function buildReportData(input: ReportInput): ReportData {
  const perSystem = input.results.map((r) => ({
    spec: r.spec,
    total: r.metrics.requests,
    rejected: r.metrics.rejected,
    ...latencies(r.requests),
  }));
  const sample = sampleRequests(input.results);
  return {
    title: input.title,
    verdict: input.verdict ?? null,
    assumptions: (input.assumptions ?? []).map((a) => ({ ...a, value: withoutPaths(a.value) })),
    costs: input.results.map(costRow),
    capacity: input.results.map(capacityRow),
    timeseries: input.results.map(timeSeries),
    costPoints: input.costPoints ?? defaultCostPoints(input.results),
    totals: input.results.map((r) => ({ spec: r.spec, requests: r.metrics.requests, rejected: r.metrics.rejected })),
    model: input.model,
    workloadSource: withoutPaths(input.workloadSource),
    requests: input.requests,
    slo: input.slo,
    tables: input.tables,
    cdf: {
      ttftMs: perSystem.map((s) => ({ spec: s.spec, points: cdfPoints(s.ttftMs, MAX_CDF_POINTS, s.total) })),
      // TPOT exists for answers longer than one token: its share is of those plus the rejected.
      tpotMs: perSystem.map((s) => ({
        spec: s.spec,
        points: cdfPoints(s.tpotMs, MAX_CDF_POINTS, s.tpotMs.length + s.rejected),
      })),
      e2eMs: perSystem.map((s) => ({ spec: s.spec, points: cdfPoints(s.e2eMs, MAX_CDF_POINTS, s.total) })),
    },
    goodput: input.goodput ?? { axis: '', note: '', series: [] },
    phases: PHASES,
    timelines: input.results.map((r) => ({
      spec: r.spec,
      rows: sample.map((i) => roundRow(timelineRow(r.requests, i))),
    })),
    notes: input.notes.map(withoutPaths),
  };
}
