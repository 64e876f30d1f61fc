/**
 * What a simulation run amounts to, per system: latency percentiles, throughput, goodput against
 * the SLOs, utilisation, queue waits, KV moved, prefix-cache hits and cost. All times are virtual
 * (emulated device time plus queueing), in ms.
 */
import { DEVICES, type DevicePool } from '../emulator';
import type { RequestTimes, RunCounters, RunLimits } from './engine';
import type { ResolvedSimOptions, Slo, SystemSpec } from './system-spec';

/**
 * Latency percentiles over every request of the workload: a rejected request counts as +Infinity (it never
 * got its token), so a percentile that falls among the rejected is Infinity, printed "rejected" in tables
 * and `--json` (jsonSafe). Null only when there is no request to count.
 */
export interface Percentiles {
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
}

/** What a percentile is when it falls among the rejected requests, in tables and JSON. */
export const REJECTED = 'rejected';

export interface WaitPercentiles {
  readonly p50: number | null;
  readonly p99: number | null;
}

/** The `--json` contract: the keys up to costPerMillionOutputTokens, in this order; the rest follow. */
export interface SystemMetrics {
  readonly spec: string;
  readonly requests: number;
  readonly completed: number;
  readonly rejected: number;
  /** Over every request, rejected ones as +Infinity (TPOT: every answer of more than one token, and the rejected). */
  readonly ttftMs: Percentiles;
  readonly tpotMs: Percentiles;
  readonly e2eMs: Percentiles;
  readonly outputTokensPerSecond: number;
  readonly goodputRps: number;
  readonly sloAttainment: number;
  /** Null when a device in the system has no price (say which in costNote). */
  readonly costPerMillionOutputTokens: number | null;
  readonly costNote: string | null;
  readonly rejectedReasons: Record<string, number>;
  /** Rejected / requests: the share of every percentile table and CDF that sits in the rejected bucket. */
  readonly rejectedShare: number;
  /** The same percentiles over completed requests only (what survivors saw); they hide the rejected. */
  readonly completedOnly: { readonly ttftMs: Percentiles; readonly tpotMs: Percentiles; readonly e2eMs: Percentiles };
  readonly slo: { readonly ttftMs: number; readonly tpotMs: number };
  /** First arrival to last terminal event. */
  readonly durationMs: number;
  readonly outputTokens: number;
  /** Busy time / (replicas x duration), per pool role. */
  readonly utilisation: Record<string, number>;
  /** Prefill: arrival to prefill start. Decode: KV arrived to joining a batch (disaggregated requests only). */
  readonly queueWaitMs: { readonly prefill: WaitPercentiles; readonly decode: WaitPercentiles | null };
  readonly kvBytesMoved: number;
  /** Cached prompt tokens / prompt tokens prefilled. */
  readonly prefixCacheHitRate: number;
  /**
   * Running requests per decode step (decode and colocated replicas): the mean over steps and the
   * largest. Below the --decode-batch limit when the KV budget, not the limit, held it back.
   */
  readonly decodeBatch: {
    readonly mean: number;
    readonly max: number;
    readonly cap: number;
    readonly capSource: string;
  };
  /** Prompts per prefill pass on the prefill pool (disaggregated; null for colocated), and the token budget. */
  readonly prefillBatch: { readonly mean: number; readonly budgetTokens: number } | null;
  /** The queue discipline, the chunked-prefill budget and the max_tokens every request sent. */
  readonly routing: string;
  readonly chunkTokens: number;
  readonly maxTokens: number;
  /** Answers cut short at max_tokens (0 unless --max-tokens is below the workload's longest answer). */
  readonly truncatedAnswers: number;
  /** Admission limits for the whole system. */
  readonly admission: { readonly maxPrefillQueue: number; readonly maxDecodeQueue: number };
}

/** Nearest-rank quantile of an ascending array; null when empty. */
export function quantile(sorted: Float64Array, q: number): number | null {
  const n = sorted.length;
  if (n === 0) return null;
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] as number;
}

const round3 = (v: number | null): number | null =>
  v === null || !Number.isFinite(v) ? v : Math.round(v * 1000) / 1000;

/**
 * A copy for JSON: an infinite latency (a percentile among the rejected) becomes "rejected", where
 * JSON.stringify would write null, the same as "no request".
 */
export function jsonSafe<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (_key, v: unknown) => (v === Infinity ? REJECTED : v))) as T;
}

function percentiles(values: Float64Array): Percentiles {
  values.sort();
  return {
    p50: round3(quantile(values, 0.5)),
    p90: round3(quantile(values, 0.9)),
    p99: round3(quantile(values, 0.99)),
  };
}

function waits(values: Float64Array): WaitPercentiles {
  values.sort();
  return { p50: round3(quantile(values, 0.5)), p99: round3(quantile(values, 0.99)) };
}

/** USD per hour of one device of a pool, or null with the reason. */
function devicePricePerHour(pool: DevicePool, cs3PricePerHour: number | null): number | string {
  const device = DEVICES[pool.device];
  if (pool.device === 'cs3') {
    return cs3PricePerHour ?? 'CS-3 has no public price: pass --cs3-price-per-hour (USD per system-hour)';
  }
  if (device.instancePricePerHour === null) return `${device.id} has no public price`;
  // Instances are priced whole; a pool of part of one is charged its share.
  return device.instancePricePerHour / device.instance.devices;
}

/** USD per hour for all replicas of every pool, or the reason it is unknown. */
export function systemPricePerHour(system: SystemSpec, cs3PricePerHour: number | null): number | string {
  const pools = system.kind === 'colocated' ? [system.colocated] : [system.prefill, system.decode];
  let total = 0;
  for (const { pool, replicas } of pools) {
    const price = devicePricePerHour(pool, cs3PricePerHour);
    if (typeof price === 'string') return price;
    total += price * pool.count * replicas;
  }
  return total;
}

/**
 * summarise's passes over every request are functions of their own: the optimizing compiler, entering a long
 * loop, then compiles only the loop's function, not all of summarise.
 */
function tally(t: RequestTimes): {
  completed: number;
  rejectedCount: number;
  multiToken: number;
  disaggregated: number;
  start: number;
  end: number;
} {
  const n = t.arrivalMs.length;
  let completed = 0;
  let rejectedCount = 0;
  let multiToken = 0;
  let disaggregated = 0;
  let start = Infinity;
  let end = -Infinity;
  for (let i = 0; i < n; i++) {
    const arrival = t.arrivalMs[i] as number;
    if (arrival < start) start = arrival;
    if ((t.endMs[i] as number) > end) end = t.endMs[i] as number;
    if (t.outcome[i] === 2) rejectedCount += 1;
    if (t.outcome[i] !== 1) continue;
    completed += 1;
    if ((t.outputTokens[i] as number) > 1) multiToken += 1;
    if (t.mode[i] === 0) disaggregated += 1;
  }
  return { completed, rejectedCount, multiToken, disaggregated, start, end };
}

/** The completed requests' latencies and waits, in request order; their output tokens, and how many met the SLO. */
function latencies(
  t: RequestTimes,
  slo: Slo,
  ttft: Float64Array,
  tpot: Float64Array,
  e2e: Float64Array,
  prefillWait: Float64Array,
  decodeWait: Float64Array,
): { outputTokens: number; good: number } {
  const n = t.arrivalMs.length;
  let c = 0;
  let m = 0;
  let d = 0;
  let good = 0;
  let outputTokens = 0;
  for (let i = 0; i < n; i++) {
    if (t.outcome[i] !== 1) continue;
    const arrival = t.arrivalMs[i] as number;
    const first = t.firstTokenMs[i] as number;
    const out = t.outputTokens[i] as number;
    outputTokens += out;
    const ttftMs = first - arrival;
    ttft[c] = ttftMs;
    e2e[c] = (t.endMs[i] as number) - arrival;
    prefillWait[c++] = (t.prefillStartMs[i] as number) - arrival;
    // TPOT: time between the first and the last token over the tokens after the first, stalls
    // included; a one-token answer has none and meets any TPOT objective.
    let tpotMs = 0;
    if (out > 1) {
      tpotMs = ((t.endMs[i] as number) - first) / (out - 1);
      tpot[m++] = tpotMs;
    }
    if (t.mode[i] === 0) decodeWait[d++] = (t.decodeJoinMs[i] as number) - (t.decodeReadyMs[i] as number);
    if (ttftMs <= slo.ttftMs && tpotMs <= slo.tpotMs) good += 1;
  }
  return { outputTokens, good };
}

export function summarise(
  spec: string,
  system: SystemSpec,
  opts: ResolvedSimOptions,
  t: RequestTimes,
  counters: RunCounters,
  limits: RunLimits,
): SystemMetrics {
  const n = t.arrivalMs.length;
  const { completed, rejectedCount, multiToken, disaggregated, start, end } = tally(t);
  // Completed first, then the rejected as +Infinity (filled in below).
  const ttft = new Float64Array(completed + rejectedCount);
  const tpot = new Float64Array(multiToken + rejectedCount);
  const e2e = new Float64Array(completed + rejectedCount);
  const prefillWait = new Float64Array(completed);
  const decodeWait = new Float64Array(disaggregated);
  const { outputTokens, good } = latencies(t, opts.slo, ttft, tpot, e2e, prefillWait, decodeWait);
  ttft.fill(Infinity, completed);
  tpot.fill(Infinity, multiToken);
  e2e.fill(Infinity, completed);
  const all = { ttftMs: percentiles(ttft), tpotMs: percentiles(tpot), e2eMs: percentiles(e2e) };
  // Sorted, the completed come first: with nothing rejected the two tables are one.
  const completedOnly =
    rejectedCount === 0
      ? all
      : {
          ttftMs: percentiles(ttft.subarray(0, completed)),
          tpotMs: percentiles(tpot.subarray(0, multiToken)),
          e2eMs: percentiles(e2e.subarray(0, completed)),
        };
  const durationMs = n === 0 ? 0 : Math.max(0, end - start);
  const seconds = durationMs / 1000;
  const perSecond = (x: number): number => (seconds > 0 ? x / seconds : 0);

  const utilisation: Record<string, number> = {};
  for (const pool of counters.pools) {
    utilisation[pool.role] = durationMs > 0 ? round6(pool.busyMs / (pool.replicas * durationMs)) : 0;
  }
  const price = systemPricePerHour(system, opts.cs3PricePerHour);
  let cost: number | null = null;
  let costNote: string | null = null;
  if (typeof price === 'string') costNote = price;
  else if (outputTokens === 0) costNote = 'no output tokens were produced';
  else cost = round3(((price * (durationMs / 3_600_000)) / outputTokens) * 1e6);

  const rejectedReasons: Record<string, number> = {};
  let rejected = 0;
  for (const [reason, count] of [...counters.rejectedReasons].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) {
    rejectedReasons[reason] = count;
    rejected += count;
  }
  return {
    spec,
    requests: n,
    completed,
    rejected,
    ttftMs: all.ttftMs,
    tpotMs: all.tpotMs,
    e2eMs: all.e2eMs,
    outputTokensPerSecond: round3(perSecond(outputTokens)) as number,
    goodputRps: round6(perSecond(good)),
    sloAttainment: n === 0 ? 0 : round6(good / n),
    costPerMillionOutputTokens: cost,
    costNote,
    rejectedReasons,
    rejectedShare: n === 0 ? 0 : round6(rejected / n),
    completedOnly,
    slo: opts.slo,
    durationMs: round3(durationMs) as number,
    outputTokens,
    utilisation,
    queueWaitMs: { prefill: waits(prefillWait), decode: system.kind === 'disaggregated' ? waits(decodeWait) : null },
    kvBytesMoved: counters.kvBytesMoved,
    prefixCacheHitRate:
      counters.promptTokensPrefilled > 0 ? round6(counters.cachedPromptTokens / counters.promptTokensPrefilled) : 0,
    decodeBatch: {
      mean: counters.decodeSteps > 0 ? round3(counters.decodeBatchSum / counters.decodeSteps)! : 0,
      max: counters.decodeBatchMax,
      cap: limits.decodeBatchMax,
      capSource: limits.decodeBatchSource,
    },
    prefillBatch:
      limits.prefillBatchTokens === null
        ? null
        : {
            mean: counters.prefillPasses > 0 ? round3(counters.prefillPassPrompts / counters.prefillPasses)! : 0,
            budgetTokens: limits.prefillBatchTokens,
          },
    routing: opts.routing,
    chunkTokens: limits.chunkTokens,
    maxTokens: limits.maxTokens,
    truncatedAnswers: counters.truncatedAnswers,
    admission: { maxPrefillQueue: limits.maxPrefillQueue, maxDecodeQueue: limits.maxDecodeQueue },
  };
}

const round6 = (v: number): number => Math.round(v * 1e6) / 1e6;
