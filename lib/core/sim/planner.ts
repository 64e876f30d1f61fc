/**
 * The capacity planner behind `disagg plan`: for each family of systems (a disaggregated prefill device + decode
 * device, or one device colocated), the cheapest pool shape and replica counts whose SLO attainment on a workload
 * meets a target, and the cost against p99 end-to-end frontier of every system it simulated.
 *
 * The search is pruned before it simulates anything. The timing model gives each pool shape's work on the workload
 * (prefill ms of every prompt, decode ms of every output token at the batch memory allows); replica counts below
 * work / span would be busier than 100% and cannot keep up, and a shape whose unloaded latencies already miss the
 * SLO for more requests than the target allows cannot meet it at any count. Only the shapes with the lowest cost
 * at their lower bound are simulated, starting at that bound: a doubling search up to a count that meets the target,
 * then bisection back down (attainment rises with replicas). A disaggregated system grows whichever pool its misses
 * point at (TTFT and prefill rejections: prefill; TPOT and decode rejections: decode), then bisects each down.
 */
import {
  checkFit,
  checkLayout,
  DEFAULT_COMPUTE,
  DEVICE_IDS,
  DEVICES,
  DecodeStepTimer,
  formatPool,
  prefillTime,
  ProfileError,
  stackSpeculation,
  type ComputeOptions,
  type DeviceId,
  type DevicePool,
  type TimingBand,
} from '../emulator';
import { kvBudgetBytes, kvNeedBytes } from '../engine/batching';
import { OUTCOME_COMPLETED, OUTCOME_REJECTED, simulate, type SimResult } from './engine';
import { systemPricePerHour, type Percentiles } from './metrics';
import {
  DEFAULT_SLO,
  formatSystemSpec,
  SystemSpecError,
  type ReplicatedPool,
  type SimOptions,
  type Slo,
  type SystemSpec,
} from './system-spec';
import { PrefixCache } from './prefix-cache';
import { contextQuantile, type Workload } from './workload';

/** A kind of system the planner sizes: one device doing both phases, or a prefill device handing off to a decode device. */
export type PlanFamily =
  | { readonly kind: 'colocated'; readonly device: DeviceId }
  | { readonly kind: 'disaggregated'; readonly prefill: DeviceId; readonly decode: DeviceId };

/** The issue's default: the split Trainium2 -> CS-3 and, colocated, H100, H200, B200, CS-3 alone and Trainium2 alone. */
export const DEFAULT_FAMILIES = 'trn2+cs3,h100,h200,b200,cs3,trn2';

/** Share of requests that must meet both SLOs (`--attainment`). */
export const DEFAULT_ATTAINMENT = 0.9;

/** Most replicas of one pool the search tries before calling a shape unable to meet the SLO. */
export const MAX_PLAN_REPLICAS = 512;

/**
 * Device counts per replica the planner considers: one, two, four and eight accelerators inside an instance, whole
 * instances beyond it (pipeline stages), and for the wafer 1 to 16 systems.
 */
export const POOL_SIZES: Readonly<Record<'gpu' | 'neuron' | 'wafer', readonly number[]>> = {
  gpu: [1, 2, 4, 8, 16],
  neuron: [4, 8, 16, 32],
  wafer: [1, 2, 3, 4, 6, 8, 12, 16],
};

/** Pool shapes per role simulated after pruning: those cheapest at their capacity bound. */
export const SHAPES_PER_ROLE = 2;

export function familyLabel(f: PlanFamily): string {
  return f.kind === 'colocated' ? `colocated ${f.device}` : `disagg ${f.prefill} -> ${f.decode}`;
}

/** The `--families` spelling: `trn2+cs3` (disaggregated, prefill + decode) or `h100` (colocated). */
export function familyId(f: PlanFamily): string {
  return f.kind === 'colocated' ? f.device : `${f.prefill}+${f.decode}`;
}

function deviceId(text: string, whole: string): DeviceId {
  const id = text.trim().toLowerCase();
  if ((DEVICE_IDS as readonly string[]).includes(id)) return id as DeviceId;
  throw new SystemSpecError(
    `unknown device "${text}" in --families "${whole}"; valid devices: ${DEVICE_IDS.join(', ')}`,
  );
}

/**
 * Parses `--families trn2+cs3,h100,cs3`: `PREFILL+DECODE` is a disaggregated family, a bare device a colocated
 * one (`disagg:` and `colocated:` prefixes are accepted too). Duplicates are dropped.
 */
export function parseFamilies(text: string): PlanFamily[] {
  const usage = 'expected devices separated by commas, PREFILL+DECODE for a split, e.g. trn2+cs3,h100,cs3';
  const out: PlanFamily[] = [];
  const seen = new Set<string>();
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) throw new SystemSpecError(`--families is empty; ${usage}`);
  for (const raw of parts) {
    const part = raw.replace(/^(disagg|disaggregated|colocated):/i, '');
    const pieces = part.split(/\+|->|>/);
    let family: PlanFamily;
    if (pieces.length === 1) family = { kind: 'colocated', device: deviceId(pieces[0] as string, text) };
    else if (pieces.length === 2) {
      family = {
        kind: 'disaggregated',
        prefill: deviceId(pieces[0] as string, text),
        decode: deviceId(pieces[1] as string, text),
      };
    } else throw new SystemSpecError(`bad family "${raw}" in --families; ${usage}`);
    if (/^colocated:/i.test(raw) && family.kind !== 'colocated') {
      throw new SystemSpecError(`bad family "${raw}": a colocated family is one device; ${usage}`);
    }
    const id = familyId(family);
    if (!seen.has(id)) out.push(family);
    seen.add(id);
  }
  return out;
}

export interface PlanOptions {
  /** Model, SLOs, CS-3 price, compute (band, stacks) and the other simulation options every candidate runs with. */
  readonly sim: SimOptions;
  readonly families: readonly PlanFamily[];
  /** Share of requests that must meet both SLOs; default DEFAULT_ATTAINMENT. */
  readonly attainment?: number;
  /** Called after every simulation with the count so far and the planned count (which may grow). */
  readonly onProgress?: (done: number, planned: number) => void;
  /**
   * Also size each family's best shape at the low and high ends of the timing model's error band (default true),
   * and say whether the cheapest family changes inside it.
   */
  readonly bands?: boolean;
}

/** One simulated system, as the planner reports it. */
export interface PlanEntry {
  readonly family: string;
  readonly spec: string;
  /** USD per hour, or null when a device in it has no price (CS-3 without --cs3-price-per-hour). */
  readonly dollarsPerHour: number | null;
  readonly sloAttainment: number;
  readonly ttftMs: Percentiles;
  readonly tpotMs: Percentiles;
  readonly e2eMs: Percentiles;
  readonly rejected: number;
  readonly requests: number;
  /** CS-3 systems in it (how unpriced CS-3 systems are ranked) and the USD per hour of everything else. */
  readonly cs3Systems: number;
  readonly otherDollarsPerHour: number;
  readonly costPerMillionOutputTokens: number | null;
  readonly goodputRps: number;
  readonly utilisation: Record<string, number>;
}

/** Why a family has no system meeting the SLO. */
export interface PlanMiss {
  readonly family: string;
  readonly reason: string;
}

/** The cheapest system of each family at one end of the error band, and the family that wins there. */
export interface BandVerdict {
  readonly band: TimingBand;
  readonly cheapest: readonly { readonly family: string; readonly spec: string | null; readonly rankKey: string }[];
  readonly winner: string | null;
}

export interface PlanResult {
  readonly model: string;
  readonly slo: Slo;
  readonly attainment: number;
  /** Ranking: USD per hour, or (without a CS-3 price) CS-3 systems first for families with a CS-3. */
  readonly rankedBy: 'dollars' | 'dollars, CS-3 systems by count';
  readonly cheapest: PlanEntry[];
  readonly frontier: PlanEntry[];
  readonly infeasible: PlanMiss[];
  /** The family whose cheapest system is cheapest, among those with a price (null when none has). */
  readonly verdict: string;
  readonly bands: readonly BandVerdict[];
  /** True when the winner at the low or high end of the band differs from the winner at the middle. */
  readonly verdictFlipsInBand: boolean | null;
  /** Break-even USD per CS-3 system-hour against the cheapest priced system, per family with CS-3 (no price given). */
  readonly cs3BreakEven: readonly { readonly family: string; readonly usdPerSystemHour: number | null }[];
  /** CS-3 alone and Trainium alone against the split, with the reason each wins or loses. */
  readonly alternatives: readonly { readonly family: string; readonly reason: string }[];
  readonly simulations: number;
  readonly notes: string[];
  /** Every simulated system, for the report. */
  readonly evaluated: PlanEntry[];
  /** The winning family's cheapest system's run (for the report's charts), and each family's cheapest run. */
  readonly cheapestRuns: readonly SimResult[];
}

export interface Shape {
  readonly pool: DevicePool;
  readonly pricePerReplica: number | null;
  readonly cs3PerReplica: number;
  readonly otherPerReplica: number;
  /** Replicas below this cannot keep up with the workload's work (busier than 100%). */
  readonly lowerBound: number;
  /** Requests whose unloaded TTFT and TPOT on this shape meet the SLO, as a share. */
  readonly unloadedMeets: { ttft: number; tpot: number; both: number };
  readonly unloadedTpotP50: number;
  readonly unloadedPrefillP50: number;
}

type Role = 'prefill' | 'decode' | 'colocated';

/** The work one workload puts on each pool shape, from the timing model alone (no simulation). */
class WorkModel {
  readonly spanMs: number;
  private readonly prompts: Int32Array;
  private readonly outputs: Int32Array;
  private readonly contextMedian: number;
  /** Prompt tokens each request could at best find cached: one shared cache that never evicts (a bound, not a run). */
  private readonly bestCached: Int32Array;

  constructor(
    private readonly workload: Workload,
    private readonly sim: SimOptions,
    private readonly compute: ComputeOptions,
  ) {
    const n = workload.requests.length;
    this.prompts = new Int32Array(n);
    this.outputs = new Int32Array(n);
    let first = Infinity;
    let last = -Infinity;
    let sessions = 0;
    for (let i = 0; i < n; i++) {
      const r = workload.requests[i]!;
      this.prompts[i] = r.promptTokens;
      this.outputs[i] = r.outputTokens;
      if (r.thinkMs !== undefined) sessions += 1;
      else {
        first = Math.min(first, r.arrivalMs);
        last = Math.max(last, r.arrivalMs);
      }
    }
    // Closed-loop turns arrive after their predecessors: the span is at least the think time they add.
    const think = workload.requests.reduce((s, r) => s + (r.thinkMs ?? 0), 0);
    const open = Number.isFinite(last - first) ? last - first : 0;
    this.spanMs = Math.max(1, open, sessions > 0 ? think / Math.max(1, n - sessions) : 0);
    this.contextMedian = contextQuantile(workload, 0.5);
    this.bestCached = new Int32Array(n);
    if (sim.prefixCache !== false) {
      const cache = new PrefixCache(Number.MAX_SAFE_INTEGER);
      const order = Array.from({ length: n }, (_, i) => i).sort(
        (a, b) => workload.requests[a]!.arrivalMs - workload.requests[b]!.arrivalMs || a - b,
      );
      for (const i of order) {
        const hashes = workload.requests[i]!.blockHashes;
        if (!hashes) continue;
        this.bestCached[i] = cache.lookup(hashes, this.prompts[i]!);
        cache.insert(hashes);
      }
    }
  }

  fits(pool: DevicePool): boolean {
    try {
      checkLayout(this.sim.model, pool);
    } catch (err) {
      if (err instanceof ProfileError) return false;
      throw err;
    }
    const context = Math.max(1, Math.min(this.sim.model.maxContext, this.sim.fitContextTokens ?? this.contextMedian));
    return checkFit({
      model: this.sim.model,
      pool,
      weightDtype: this.compute.weightDtype,
      kvDtype: this.compute.kvDtype,
      batch: 1,
      contextTokens: context,
    }).fits;
  }

  /**
   * Prefill ms of every prompt on `pool`, by request, with the most of it a prefix cache could hold (bestCached):
   * a lower bound on the work and on each request's unloaded TTFT.
   */
  prefillMs(pool: DevicePool): Float64Array {
    const out = new Float64Array(this.prompts.length);
    const memo = new Map<string, number>();
    for (let i = 0; i < out.length; i++) {
      const p = this.prompts[i]!;
      const cached = Math.min(this.bestCached[i]!, p - 1);
      const key = `${p}:${cached}`;
      let ms = memo.get(key);
      if (ms === undefined) {
        ms = prefillTime(this.sim.model, pool, [{ newTokens: p - cached, cachedTokens: cached }], this.compute).ms;
        memo.set(key, ms);
      }
      out[i] = ms;
    }
    return out;
  }

  /** Decode work on `pool`: ms per output token at batch 1 per request, and the busy ms of all output at the batch memory allows. */
  decode(pool: DevicePool): { tpotAlone: Float64Array; busyMs: number } {
    const model = this.sim.model;
    const timer = new DecodeStepTimer(model, pool, this.compute, stackSpeculation(model, pool, this.compute));
    const n = this.prompts.length;
    const tpotAlone = new Float64Array(n);
    let tokens = 0;
    let contextSum = 0;
    for (let i = 0; i < n; i++) {
      const context = this.prompts[i]! + Math.max(0, this.outputs[i]! - 1) / 2;
      tpotAlone[i] = timer.stepMs(1, context);
      tokens += this.outputs[i]!;
      contextSum += context * this.outputs[i]!;
    }
    const meanContext = tokens > 0 ? contextSum / tokens : 1;
    const budget = kvBudgetBytes(model, pool, this.compute);
    const perRequest = kvNeedBytes(model, Math.round(meanContext), 1, this.compute);
    const cap = this.sim.decodeBatchMax ?? 256;
    const batch = Math.max(1, Math.min(cap, Math.floor(budget / Math.max(1, perRequest))));
    const step = timer.stepMs(batch, batch * meanContext);
    return { tpotAlone, busyMs: (tokens * step) / batch };
  }
}

const sum = (a: Float64Array): number => a.reduce((s, v) => s + v, 0);
const median = (a: Float64Array): number => {
  const s = Float64Array.from(a).sort();
  return s.length === 0 ? 0 : s[Math.floor((s.length - 1) / 2)]!;
};

function poolPrice(pool: DevicePool, cs3Price: number | null): { price: number | null; cs3: number; other: number } {
  const device = DEVICES[pool.device];
  if (pool.device === 'cs3')
    return { price: cs3Price === null ? null : cs3Price * pool.count, cs3: pool.count, other: 0 };
  if (device.instancePricePerHour === null) return { price: null, cs3: 0, other: 0 };
  const other = (device.instancePricePerHour / device.instance.devices) * pool.count;
  return { price: other, cs3: 0, other };
}

/** A rank key comparable across systems: USD per hour, or with unpriced CS-3 (count, other USD). */
function rankKey(e: { dollarsPerHour: number | null; cs3Systems: number; otherDollarsPerHour: number }): number[] {
  return e.dollarsPerHour !== null ? [0, e.dollarsPerHour] : [e.cs3Systems, e.otherDollarsPerHour];
}

function compareRank(a: number[], b: number[]): number {
  for (let k = 0; k < Math.max(a.length, b.length); k++) {
    const d = (a[k] ?? 0) - (b[k] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const formatRank = (e: PlanEntry): string =>
  e.dollarsPerHour !== null
    ? `$${e.dollarsPerHour.toFixed(2)}/h`
    : `${e.cs3Systems} CS-3${e.otherDollarsPerHour > 0 ? ` + $${e.otherDollarsPerHour.toFixed(2)}/h` : ''}`;

/** Why requests missed: counts of TTFT misses, TPOT misses (completed requests), and rejections by queue. */
export function missBreakdown(result: SimResult): {
  ttft: number;
  tpot: number;
  rejectedPrefill: number;
  rejectedDecode: number;
  rejectedOther: number;
} {
  const t = result.requests;
  const slo = result.options.slo;
  let ttft = 0;
  let tpot = 0;
  for (let i = 0; i < t.arrivalMs.length; i++) {
    if (t.outcome[i] !== OUTCOME_COMPLETED) continue;
    const first = t.firstTokenMs[i]! - t.arrivalMs[i]!;
    const out = t.outputTokens[i]!;
    if (first > slo.ttftMs) ttft += 1;
    if (out > 1 && (t.endMs[i]! - t.firstTokenMs[i]!) / (out - 1) > slo.tpotMs) tpot += 1;
  }
  let rejectedPrefill = 0;
  let rejectedDecode = 0;
  let rejectedOther = 0;
  for (const [reason, n] of result.counters.rejectedReasons) {
    if (/prefill/i.test(reason)) rejectedPrefill += n;
    else if (/decode queue/i.test(reason)) rejectedDecode += n;
    else rejectedOther += n;
  }
  // Rejections the counters do not name (a request marked rejected) count as other.
  let marked = 0;
  for (let i = 0; i < t.outcome.length; i++) if (t.outcome[i] === OUTCOME_REJECTED) marked += 1;
  rejectedOther += Math.max(0, marked - rejectedPrefill - rejectedDecode - rejectedOther);
  return { ttft, tpot, rejectedPrefill, rejectedDecode, rejectedOther };
}

/** Plain words for what made a run miss the target, e.g. "TTFT > 2000 ms for 31% of requests". */
export function missReason(result: SimResult): string {
  const m = missBreakdown(result);
  const n = Math.max(1, result.metrics.requests);
  const pct = (k: number): string => `${((k / n) * 100).toFixed(1)}%`;
  const parts: string[] = [];
  if (m.ttft > 0) parts.push(`TTFT > ${result.options.slo.ttftMs} ms for ${pct(m.ttft)}`);
  if (m.tpot > 0) parts.push(`TPOT > ${result.options.slo.tpotMs} ms for ${pct(m.tpot)}`);
  const rejected = m.rejectedPrefill + m.rejectedDecode + m.rejectedOther;
  if (rejected > 0) parts.push(`rejected ${pct(rejected)}`);
  return parts.length > 0 ? parts.join(', ') : 'none missed';
}

/** The Pareto set of entries: no other entry is at most as costly with a p99 end-to-end at most as long. */
export function costFrontier(entries: readonly PlanEntry[]): PlanEntry[] {
  const priced = entries
    .filter((e) => e.dollarsPerHour !== null && e.e2eMs.p99 !== null && Number.isFinite(e.e2eMs.p99))
    .sort((a, b) => a.dollarsPerHour! - b.dollarsPerHour! || a.e2eMs.p99! - b.e2eMs.p99!);
  const out: PlanEntry[] = [];
  let best = Infinity;
  const seen = new Set<string>();
  for (const e of priced) {
    if (e.e2eMs.p99! < best && !seen.has(e.spec)) {
      out.push(e);
      best = e.e2eMs.p99!;
      seen.add(e.spec);
    }
  }
  return out;
}

/** One family's search: what `plan` assembles, small enough to pass between threads. */
export interface FamilyPlan {
  readonly outcome: FamilyOutcome;
  /** The family's cheapest system at the low and high ends of the error band (empty when not run). */
  readonly bands: readonly { readonly band: TimingBand; readonly best: PlanEntry | null }[];
  /** Every system simulated at the requested band. */
  readonly evaluated: readonly PlanEntry[];
  readonly simulations: number;
}

function checkPlanInputs(workload: Workload, options: PlanOptions): number {
  if (workload.requests.length === 0) throw new SystemSpecError('the workload has no requests to plan for');
  const attainment = options.attainment ?? DEFAULT_ATTAINMENT;
  if (!(attainment > 0 && attainment <= 1)) {
    throw new SystemSpecError(`the attainment target must be a fraction in (0, 1], got ${attainment}`);
  }
  if (options.families.length === 0) throw new SystemSpecError('no families to plan for');
  return attainment;
}

/**
 * Searches one family (`options.families[index]`): its cheapest system, and with bands on, the same shape resized
 * at the low and high ends of the error band. Independent of the other families, so they can run in parallel.
 */
export function planFamily(workload: Workload, options: PlanOptions, index: number): FamilyPlan {
  const attainment = checkPlanInputs(workload, options);
  const family = options.families[index];
  if (!family) throw new RangeError(`no family ${index}`);
  const search = new Search(workload, options, attainment);
  const baseBand = options.sim.compute?.band ?? 'mid';
  const outcome = search.family(family, baseBand);
  const bands: { band: TimingBand; best: PlanEntry | null }[] = [];
  if (options.bands !== false && baseBand === 'mid') {
    for (const band of ['low', 'high'] as const) {
      bands.push({
        band,
        best: outcome.bestShape ? search.resize(family, outcome.bestShape, band, outcome.best!.spec) : null,
      });
    }
  }
  return { outcome, bands, evaluated: search.entries(baseBand), simulations: search.simulations };
}

/** Runs the search. Deterministic: the same inputs give the same plan. */
export function plan(workload: Workload, options: PlanOptions): PlanResult {
  checkPlanInputs(workload, options);
  let done = 0;
  const plans = options.families.map((_, k) => {
    const before = done;
    const one = planFamily(
      workload,
      {
        ...options,
        ...(options.onProgress
          ? { onProgress: (d: number, planned: number) => options.onProgress!(before + d, before + planned) }
          : {}),
      },
      k,
    );
    done += one.simulations;
    return one;
  });
  return assemblePlan(options, plans);
}

/** The plan from each family's search, in the order of `options.families`. */
export function assemblePlan(options: PlanOptions, plans: readonly FamilyPlan[]): PlanResult {
  const attainment = options.attainment ?? DEFAULT_ATTAINMENT;
  const mid = plans.map((p) => p.outcome);
  const cheapest = mid.flatMap((r) => (r.best ? [r.best] : []));
  const infeasible = mid.flatMap((r) => (r.best ? [] : [{ family: r.label, reason: r.reason }]));
  const evaluated = plans.flatMap((p) => p.evaluated);
  const cs3Price = options.sim.cs3PricePerHour ?? null;
  const priced = cheapest.filter((e) => e.dollarsPerHour !== null);
  const winnerOf = (list: readonly (PlanEntry | null)[]): PlanEntry | null =>
    list
      .filter((e): e is PlanEntry => e !== null && e.dollarsPerHour !== null)
      .sort((a, b) => a.dollarsPerHour! - b.dollarsPerHour!)[0] ?? null;
  const winner = winnerOf(cheapest);

  // The error band: each family's best shape resized at the low and high ends.
  const bands: BandVerdict[] = [];
  for (const band of ['low', 'high'] as const) {
    const rows = plans.flatMap((p) =>
      p.bands.filter((b) => b.band === band).map((b) => ({ family: p.outcome.label, best: b.best })),
    );
    if (rows.length === 0) continue;
    const w = winnerOf(rows.map((r) => r.best));
    bands.push({
      band,
      cheapest: rows.map((r) => ({
        family: r.family,
        spec: r.best ? r.best.spec : null,
        rankKey: r.best ? formatRank(r.best) : 'none meets the SLO',
      })),
      winner: w ? w.family : null,
    });
  }
  const flips = bands.length === 0 ? null : bands.some((b) => b.winner !== (winner ? winner.family : null));
  const simulations = plans.reduce((n, p) => n + p.simulations, 0);

  const notes: string[] = [];
  const unpricedCs3 = cs3Price === null && options.families.some(familyHasCs3);
  if (unpricedCs3) {
    notes.push(
      'CS-3 has no public price and none was given (--cs3-price-per-hour): systems with CS-3 are ranked by how many ' +
        'CS-3 systems they need (then the USD of the rest), and left out of the cost frontier.',
    );
  }
  const cs3BreakEven = unpricedCs3
    ? cheapest
        .filter((e) => e.cs3Systems > 0)
        .map((e) => ({
          family: e.family,
          usdPerSystemHour:
            winner && winner.dollarsPerHour! > e.otherDollarsPerHour
              ? Math.round(((winner.dollarsPerHour! - e.otherDollarsPerHour) / e.cs3Systems) * 100) / 100
              : null,
        }))
    : [];
  const verdict = verdictLine(winner, cheapest, infeasible, cs3BreakEven, attainment, options.sim.slo ?? DEFAULT_SLO);
  return {
    model: options.sim.model.id,
    slo: options.sim.slo ?? DEFAULT_SLO,
    attainment,
    rankedBy: unpricedCs3 ? 'dollars, CS-3 systems by count' : 'dollars',
    cheapest,
    frontier: costFrontier(evaluated.filter((e) => e.sloAttainment >= attainment)),
    infeasible,
    verdict,
    bands,
    verdictFlipsInBand: flips,
    cs3BreakEven,
    alternatives: alternatives(mid, options.sim.slo ?? DEFAULT_SLO),
    simulations,
    notes: priced.length === 0 && cheapest.length > 0 ? [...notes, 'No family has a price: no cost verdict.'] : notes,
    evaluated,
    cheapestRuns: mid.flatMap((r) => (r.bestRun ? [r.bestRun] : [])),
  };
}

const familyHasCs3 = (f: PlanFamily): boolean =>
  f.kind === 'colocated' ? f.device === 'cs3' : f.prefill === 'cs3' || f.decode === 'cs3';

function verdictLine(
  winner: PlanEntry | null,
  cheapest: readonly PlanEntry[],
  infeasible: readonly PlanMiss[],
  breakEven: PlanResult['cs3BreakEven'],
  attainment: number,
  slo: Slo,
): string {
  const target = `${(attainment * 100).toFixed(0)}% of requests within TTFT ${slo.ttftMs} ms and TPOT ${slo.tpotMs} ms`;
  if (cheapest.length === 0) return `No family meets ${target}: ${infeasible.map((m) => m.family).join(', ')}.`;
  const head = winner
    ? `Cheapest meeting ${target}: ${winner.spec} (${winner.family}) at $${winner.dollarsPerHour!.toFixed(2)}/h.`
    : `Systems meeting ${target} found, but none has a price.`;
  const be = breakEven
    .map((b) =>
      b.usdPerSystemHour === null
        ? `${b.family} costs more even with free CS-3`
        : `${b.family} is cheaper if a CS-3 system-hour costs under $${b.usdPerSystemHour.toFixed(2)}`,
    )
    .join('; ');
  return be ? `${head} ${be}.` : head;
}

export interface FamilyOutcome {
  readonly family: PlanFamily;
  readonly label: string;
  readonly best: PlanEntry | null;
  readonly bestRun: SimResult | null;
  readonly bestShape: FamilyShape | null;
  readonly reason: string;
  /** For the alternatives' reasons. */
  readonly shapes: readonly FamilyShape[];
}

export type FamilyShape =
  | { readonly kind: 'colocated'; readonly colocated: Shape }
  | { readonly kind: 'disaggregated'; readonly prefill: Shape; readonly decode: Shape };

class Search {
  simulations = 0;
  private planned = 0;
  /** Why the last upward search gave up. */
  private stop = '';
  private readonly cache = new Map<string, { entry: PlanEntry; result: SimResult }>();
  private readonly works = new Map<TimingBand, WorkModel>();
  private readonly shapeMemo = new Map<string, Shape | null>();
  private readonly cs3Price: number | null;

  constructor(
    private readonly workload: Workload,
    private readonly options: PlanOptions,
    private readonly attainment: number,
  ) {
    this.cs3Price = options.sim.cs3PricePerHour ?? null;
  }

  private compute(band: TimingBand): ComputeOptions {
    return { ...(this.options.sim.compute ?? DEFAULT_COMPUTE), band };
  }

  private work(band: TimingBand): WorkModel {
    let w = this.works.get(band);
    if (!w) this.works.set(band, (w = new WorkModel(this.workload, this.options.sim, this.compute(band))));
    return w;
  }

  entries(band: TimingBand): PlanEntry[] {
    return [...this.cache.entries()].filter(([key]) => key.startsWith(`${band}|`)).map(([, v]) => v.entry);
  }

  /** Shapes of `device` that hold the model, with their bounds for `role`. */
  private shapes(device: DeviceId, role: Role, band: TimingBand): Shape[] {
    const family = DEVICES[device].family as 'gpu' | 'neuron' | 'wafer';
    const out: Shape[] = [];
    for (const count of POOL_SIZES[family]) {
      const key = `${band}|${role}|${device}x${count}`;
      if (!this.shapeMemo.has(key)) this.shapeMemo.set(key, this.shape({ device, count }, role, band));
      const s = this.shapeMemo.get(key);
      if (s) out.push(s);
    }
    return out;
  }

  private shape(pool: DevicePool, role: Role, band: TimingBand): Shape | null {
    const work = this.work(band);
    if (!work.fits(pool)) return null;
    const slo = this.options.sim.slo ?? DEFAULT_SLO;
    const n = this.workload.requests.length;
    const prefill = role === 'decode' ? null : work.prefillMs(pool);
    const decode = role === 'prefill' ? null : work.decode(pool);
    let ttftOk = 0;
    let tpotOk = 0;
    let both = 0;
    for (let i = 0; i < n; i++) {
      const a = prefill === null || prefill[i]! <= slo.ttftMs;
      const b = decode === null || decode.tpotAlone[i]! <= slo.tpotMs;
      if (a) ttftOk += 1;
      if (b) tpotOk += 1;
      if (a && b) both += 1;
    }
    const busy = (prefill ? sum(prefill) : 0) + (decode ? decode.busyMs : 0);
    const price = poolPrice(pool, this.cs3Price);
    return {
      pool,
      pricePerReplica: price.price,
      cs3PerReplica: price.cs3,
      otherPerReplica: price.other,
      lowerBound: Math.max(1, Math.ceil(busy / work.spanMs - 1e-9)),
      unloadedMeets: { ttft: ttftOk / n, tpot: tpotOk / n, both: both / n },
      unloadedTpotP50: decode ? median(decode.tpotAlone) : 0,
      unloadedPrefillP50: prefill ? median(prefill) : 0,
    };
  }

  /** Cost of `replicas` of a shape as a rank key. */
  private boundKey(s: Shape, replicas: number): number[] {
    return s.pricePerReplica !== null
      ? [0, s.pricePerReplica * replicas]
      : [s.cs3PerReplica * replicas, s.otherPerReplica * replicas];
  }

  private pick(shapes: readonly Shape[], feasible: (s: Shape) => boolean): Shape[] {
    return shapes
      .filter(feasible)
      .sort((a, b) => compareRank(this.boundKey(a, a.lowerBound), this.boundKey(b, b.lowerBound)))
      .slice(0, SHAPES_PER_ROLE);
  }

  family(f: PlanFamily, band: TimingBand): FamilyOutcome {
    const label = familyLabel(f);
    const target = this.attainment;
    if (f.kind === 'colocated') {
      const all = this.shapes(f.device, 'colocated', band);
      if (all.length === 0)
        return this.none(f, label, `${this.options.sim.model.id} fits no ${f.device} pool the planner considers`);
      const feasible = this.pick(all, (s) => s.unloadedMeets.both >= target);
      if (feasible.length === 0)
        return this.none(f, label, unloadedReason(all, target, this.options.sim.slo ?? DEFAULT_SLO), all);
      this.planned += feasible.length * 3;
      const shapes = feasible.map((s): FamilyShape => ({ kind: 'colocated', colocated: s }));
      return this.cheapestOf(f, label, shapes, band) ?? this.none(f, label, this.lastMisses, all);
    }
    const prefills = this.shapes(f.prefill, 'prefill', band);
    const decodes = this.shapes(f.decode, 'decode', band);
    if (prefills.length === 0 || decodes.length === 0) {
      const which = prefills.length === 0 ? f.prefill : f.decode;
      return this.none(f, label, `${this.options.sim.model.id} fits no ${which} pool the planner considers`);
    }
    const pf = this.pick(prefills, (s) => s.unloadedMeets.ttft >= target);
    const dc = this.pick(decodes, (s) => s.unloadedMeets.tpot >= target);
    if (pf.length === 0 || dc.length === 0) {
      return this.none(
        f,
        label,
        unloadedReason(pf.length === 0 ? prefills : decodes, target, this.options.sim.slo ?? DEFAULT_SLO),
      );
    }
    this.planned += pf.length * dc.length * 4;
    const shapes = pf.flatMap((p) => dc.map((d): FamilyShape => ({ kind: 'disaggregated', prefill: p, decode: d })));
    return this.cheapestOf(f, label, shapes, band) ?? this.none(f, label, this.lastMisses);
  }

  /** Why every shape of the last cheapestOf call missed, when none met the target. */
  private lastMisses = '';

  /** Searches each shape's replica counts; the cheapest system meeting the target, or null (see lastMisses). */
  private cheapestOf(
    f: PlanFamily,
    label: string,
    shapes: readonly FamilyShape[],
    band: TimingBand,
  ): FamilyOutcome | null {
    let best: { entry: PlanEntry; result: SimResult; shape: FamilyShape } | null = null;
    const misses: string[] = [];
    for (const shape of shapes) {
      const found =
        shape.kind === 'colocated'
          ? this.searchColocated(shape.colocated, band)
          : this.searchDisaggregated(shape.prefill, shape.decode, band);
      if (typeof found === 'string') misses.push(found);
      else if (!best || compareRank(rankKey(found.entry), rankKey(best.entry)) < 0) best = { ...found, shape };
    }
    this.lastMisses = misses.join('; ');
    if (!best) return null;
    return {
      family: f,
      label,
      best: { ...best.entry, family: label },
      bestRun: best.result,
      bestShape: best.shape,
      reason: '',
      shapes,
    };
  }

  private none(f: PlanFamily, label: string, reason: string, shapes: readonly Shape[] = []): FamilyOutcome {
    return {
      family: f,
      label,
      best: null,
      bestRun: null,
      bestShape: null,
      reason,
      shapes: shapes.map((s) => ({ kind: 'colocated', colocated: s })),
    };
  }

  /** The cheapest replica counts of one family shape at another end of the band. */
  resize(f: PlanFamily, shape: FamilyShape, band: TimingBand, midSpec: string): PlanEntry | null {
    const label = familyLabel(f);
    if (shape.kind === 'colocated') {
      const s = this.shape(shape.colocated.pool, 'colocated', band);
      if (!s) return null;
      const found = this.searchColocated(s, band, midReplicas(midSpec)[0]);
      return typeof found === 'string' ? null : { ...found.entry, family: label };
    }
    const p = this.shape(shape.prefill.pool, 'prefill', band);
    const d = this.shape(shape.decode.pool, 'decode', band);
    if (!p || !d) return null;
    const [a, b] = midReplicas(midSpec);
    const found = this.searchDisaggregated(p, d, band, [a, b ?? 1]);
    return typeof found === 'string' ? null : { ...found.entry, family: label };
  }

  private run(system: SystemSpec, band: TimingBand): { entry: PlanEntry; result: SimResult; meets: boolean } {
    const spec = formatSystemSpec(system);
    const key = `${band}|${spec}`;
    let hit = this.cache.get(key);
    if (!hit) {
      const result = simulate(this.workload, system, { ...this.options.sim, compute: this.compute(band) });
      this.simulations += 1;
      this.planned = Math.max(this.planned, this.simulations);
      this.options.onProgress?.(this.simulations, this.planned);
      hit = { entry: this.entry(system, result), result };
      this.cache.set(key, hit);
    }
    return { ...hit, meets: hit.entry.sloAttainment >= this.attainment };
  }

  private entry(system: SystemSpec, result: SimResult): PlanEntry {
    const m = result.metrics;
    const price = systemPricePerHour(system, this.cs3Price);
    const pools: ReplicatedPool[] = system.kind === 'colocated' ? [system.colocated] : [system.prefill, system.decode];
    let cs3 = 0;
    let other = 0;
    for (const r of pools) {
      const p = poolPrice(r.pool, this.cs3Price);
      cs3 += p.cs3 * r.replicas;
      other += p.other * r.replicas;
    }
    return {
      family: '',
      spec: m.spec,
      dollarsPerHour: typeof price === 'number' ? Math.round(price * 100) / 100 : null,
      sloAttainment: m.sloAttainment,
      ttftMs: m.ttftMs,
      tpotMs: m.tpotMs,
      e2eMs: m.e2eMs,
      rejected: m.rejected,
      requests: m.requests,
      cs3Systems: cs3,
      otherDollarsPerHour: Math.round(other * 100) / 100,
      costPerMillionOutputTokens: m.costPerMillionOutputTokens,
      goodputRps: m.goodputRps,
      utilisation: m.utilisation,
    };
  }

  /** Smallest R in [lo, hi] with pass(R), given pass(hi) (bisection; attainment rises with replicas). */
  private bisect(lo: number, hi: number, pass: (r: number) => boolean): number {
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (pass(mid)) hi = mid;
      else lo = mid + 1;
    }
    return hi;
  }

  /**
   * Smallest R >= lo with pass(R), searched from `start`: galloping (steps 1, 2, 4, ...) down while it passes or
   * up until it does, then bisection. Null when no count passes: MAX_PLAN_REPLICAS is reached, or attainment has
   * stopped rising while the pools sit mostly idle (the misses are not queueing, so replicas cannot fix them).
   */
  private gallop(lo: number, start: number, probe: (r: number) => Probe): number | null {
    const pass = (r: number): boolean => probe(r).meets;
    let at = Math.min(MAX_PLAN_REPLICAS, Math.max(lo, start));
    let step = 1;
    if (pass(at)) {
      while (at > lo) {
        const next = Math.max(lo, at - step);
        if (!pass(next)) return this.bisect(next + 1, at, pass);
        at = next;
        step *= 2;
      }
      return at;
    }
    for (;;) {
      if (at >= MAX_PLAN_REPLICAS) {
        this.stop = ` (still short at ${MAX_PLAN_REPLICAS} replicas, the most the planner tries)`;
        return null;
      }
      const next = Math.min(MAX_PLAN_REPLICAS, at + step);
      const before = probe(at);
      const after = probe(next);
      if (after.meets) return this.bisect(at + 1, next, pass);
      if (plateaued(before, after)) {
        this.stop = PLATEAU;
        return null;
      }
      at = next;
      step *= 2;
    }
  }

  private probe(system: SystemSpec, band: TimingBand): Probe {
    const run = this.run(system, band);
    return {
      meets: run.meets,
      attainment: run.entry.sloAttainment,
      busiest: Math.max(0, ...Object.values(run.entry.utilisation)),
    };
  }

  searchColocated(s: Shape, band: TimingBand, start = s.lowerBound): { entry: PlanEntry; result: SimResult } | string {
    const system = (r: number): SystemSpec => ({ kind: 'colocated', colocated: { pool: s.pool, replicas: r } });
    const r = this.gallop(s.lowerBound, start, (x) => this.probe(system(x), band));
    if (r === null) {
      const tried = this.largestTried(band, (spec) => spec.startsWith(`colocated:${formatPool(s.pool)}*`));
      return `${tried.spec} misses: ${missReason(tried.result)}${this.stop}`;
    }
    const { entry, result } = this.run(system(r), band);
    return { entry, result };
  }

  /** The run with the most replicas among those simulated whose spec matches. */
  private largestTried(band: TimingBand, match: (spec: string) => boolean): { spec: string; result: SimResult } {
    let best: { spec: string; result: SimResult; devices: number } | null = null;
    for (const [key, hit] of this.cache) {
      if (!key.startsWith(`${band}|`) || !match(hit.entry.spec)) continue;
      const devices = hit.entry.cs3Systems + hit.entry.otherDollarsPerHour;
      if (!best || devices > best.devices) best = { spec: hit.entry.spec, result: hit.result, devices };
    }
    if (!best) throw new Error('no run to report');
    return best;
  }

  searchDisaggregated(
    p: Shape,
    d: Shape,
    band: TimingBand,
    start: readonly [number, number] = [p.lowerBound, d.lowerBound],
  ): { entry: PlanEntry; result: SimResult } | string {
    const system = (a: number, b: number): SystemSpec => ({
      kind: 'disaggregated',
      prefill: { pool: p.pool, replicas: a },
      decode: { pool: d.pool, replicas: b },
    });
    let a = Math.max(p.lowerBound, start[0]);
    let b = Math.max(d.lowerBound, start[1]);
    let step = 1;
    let previous: Probe | null = null;
    // Grow the pool the misses point at until the target is met.
    for (;;) {
      const run = this.run(system(a, b), band);
      if (run.meets) break;
      const now = this.probe(system(a, b), band);
      if ((a >= MAX_PLAN_REPLICAS && b >= MAX_PLAN_REPLICAS) || (previous && plateaued(previous, now))) {
        const why =
          a >= MAX_PLAN_REPLICAS && b >= MAX_PLAN_REPLICAS
            ? ` (at ${MAX_PLAN_REPLICAS} replicas each, the most the planner tries)`
            : PLATEAU;
        return `${formatSystemSpec(system(a, b))} misses: ${missReason(run.result)}${why}`;
      }
      previous = now;
      const m = missBreakdown(run.result);
      const prefillSide = m.ttft + m.rejectedPrefill;
      const decodeSide = m.tpot + m.rejectedDecode + m.rejectedOther;
      const growPrefill = (prefillSide >= decodeSide && a < MAX_PLAN_REPLICAS) || b >= MAX_PLAN_REPLICAS;
      if (growPrefill) a = Math.min(MAX_PLAN_REPLICAS, Math.max(a + step, Math.ceil(a * 1.5)));
      else b = Math.min(MAX_PLAN_REPLICAS, Math.max(b + step, Math.ceil(b * 1.5)));
      step *= 2;
    }
    // Then each pool back down, the costlier first.
    const prefillCostlier = compareRank(this.boundKey(p, a), this.boundKey(d, b)) >= 0;
    const downPrefill = (): void => {
      a = this.gallop(p.lowerBound, a, (x) => this.probe(system(x, b), band)) ?? a;
    };
    const downDecode = (): void => {
      b = this.gallop(d.lowerBound, b, (x) => this.probe(system(a, x), band)) ?? b;
    };
    if (prefillCostlier) {
      downPrefill();
      downDecode();
    } else {
      downDecode();
      downPrefill();
    }
    const { entry, result } = this.run(system(a, b), band);
    return { entry, result };
  }
}

interface Probe {
  readonly meets: boolean;
  readonly attainment: number;
  /** Utilisation of the busiest pool. */
  readonly busiest: number;
}

/** Attainment rose by less than this (a share of requests) while replicas grew: a plateau, if the pools are idle. */
export const PLATEAU_GAIN = 0.005;
/** Below this busiest-pool utilisation, misses are not queueing. */
export const PLATEAU_IDLE = 0.5;

function plateaued(before: Probe, after: Probe): boolean {
  return after.attainment - before.attainment < PLATEAU_GAIN && after.busiest < PLATEAU_IDLE;
}

const PLATEAU =
  ' (the most replicas tried: attainment stopped rising as replicas were added while the pools sat mostly idle, so ' +
  'the misses come from each request alone, not from queueing)';

/** Replica counts of a spec the planner wrote: [colocated] or [prefill, decode]. */
function midReplicas(spec: string): [number, number?] {
  const counts = [...spec.matchAll(/\*(\d+)/g)].map((m) => Number(m[1]));
  return [counts[0] ?? 1, counts[1]];
}

function unloadedReason(shapes: readonly Shape[], target: number, slo: Slo): string {
  const best = [...shapes].sort((x, y) => y.unloadedMeets.both - x.unloadedMeets.both)[0];
  if (!best) return 'no pool holds the model';
  const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
  const parts: string[] = [];
  if (best.unloadedMeets.ttft < target) {
    parts.push(`prefill alone exceeds TTFT ${slo.ttftMs} ms for ${pct(1 - best.unloadedMeets.ttft)} of requests`);
  }
  if (best.unloadedMeets.tpot < target) {
    parts.push(`one request alone exceeds TPOT ${slo.tpotMs} ms for ${pct(1 - best.unloadedMeets.tpot)}`);
  }
  return `even unloaded, the best shape (${formatPool(best.pool)}) cannot reach ${pct(target)}: ${parts.join('; ') || `only ${pct(best.unloadedMeets.both)} meet both`}`;
}

/** CS-3 alone and Trainium alone against the split, with the reason each wins or loses, from the runs. */
function alternatives(outcomes: readonly FamilyOutcome[], slo: Slo): PlanResult['alternatives'] {
  const split = outcomes.find((o) => o.family.kind === 'disaggregated' && o.family.decode === 'cs3');
  const out: { family: string; reason: string }[] = [];
  for (const o of outcomes) {
    if (o.family.kind !== 'colocated' || (o.family.device !== 'cs3' && o.family.device !== 'trn2')) continue;
    out.push({ family: o.label, reason: alternativeReason(o, split ?? null, slo) });
  }
  return out;
}

function alternativeReason(alone: FamilyOutcome, split: FamilyOutcome | null, slo: Slo): string {
  const device = alone.family.kind === 'colocated' ? alone.family.device : 'cs3';
  const a = alone.best;
  if (!a) return `meets no SLO here: ${alone.reason}`;
  const s = split?.best ?? null;
  const run = alone.bestRun!;
  // Share of the replicas' busy time spent prefilling (the timing model's prefill of each completed prompt, less
  // what its cache held): what prefill takes from decode on the same devices.
  const t = run.requests;
  const pool = run.system.kind === 'colocated' ? run.system.colocated.pool : run.system.decode.pool;
  let prefillMs = 0;
  for (let i = 0; i < t.arrivalMs.length; i++) {
    if (t.outcome[i] !== OUTCOME_COMPLETED) continue;
    const cached = t.cachedTokens[i]!;
    prefillMs += prefillTime(
      run.options.model,
      pool,
      [{ newTokens: t.promptTokens[i]! - cached, cachedTokens: cached }],
      run.options.compute,
    ).ms;
  }
  const busy = run.counters.pools.reduce((x, p) => x + p.busyMs, 0);
  const prefillShare = busy > 0 ? Math.min(1, prefillMs / busy) : 0;
  const one = (v: number): string => (Number.isFinite(v) ? v.toFixed(v >= 100 ? 0 : 2) : 'rejected');
  const cmp = (x: number | null, y: number | null): string =>
    x === null || y === null ? '-' : `${one(x)} vs ${one(y)} ms`;
  const cost =
    s === null
      ? `(${formatRank(a)}) meets the target where the split cannot`
      : a.dollarsPerHour !== null && s.dollarsPerHour !== null
        ? `${a.dollarsPerHour <= s.dollarsPerHour ? 'wins' : 'loses'} on cost: $${a.dollarsPerHour.toFixed(2)}/h against the split's $${s.dollarsPerHour.toFixed(2)}/h`
        : `needs ${a.cs3Systems} CS-3${a.otherDollarsPerHour > 0 ? ` + $${a.otherDollarsPerHour.toFixed(2)}/h` : ''} against the split's ${s.cs3Systems} CS-3${s.otherDollarsPerHour > 0 ? ` + $${s.otherDollarsPerHour.toFixed(2)}/h` : ''} (no CS-3 price given)`;
  const lat =
    s === null
      ? ''
      : `; TTFT p50 ${cmp(a.ttftMs.p50, s.ttftMs.p50)}, TPOT p50 ${cmp(a.tpotMs.p50, s.tpotMs.p50)}, e2e p99 ${cmp(a.e2eMs.p99, s.e2eMs.p99)}`;
  const wins =
    s === null ||
    (a.dollarsPerHour !== null && s.dollarsPerHour !== null
      ? a.dollarsPerHour <= s.dollarsPerHour
      : compareRank(rankKey(a), rankKey(s)) <= 0);
  const share = `${(prefillShare * 100).toFixed(1)}% of its busy time`;
  const tpot = a.tpotMs.p50 === null ? '-' : one(a.tpotMs.p50);
  const why =
    device === 'cs3'
      ? wins
        ? `the wafer also prefills, fast (${share}), so what prefill takes from the decode batch costs less than a separate prefill pool; its prefill speed rests on an assumed wafer prefill efficiency`
        : `the wafer also prefills (${share}), taking decode time and SRAM from the running batch, so it needs more wafers than the split's decode pool; its prefill speed rests on an assumed wafer prefill efficiency`
      : wins
        ? `Trainium decode is HBM-bandwidth-bound (every step reads the weights; TPOT p50 ${tpot} ms, prefill ${share}), but the TPOT objective of ${slo.tpotMs} ms allows it, and its devices cost less`
        : `Trainium decode is HBM-bandwidth-bound (every step reads the weights; TPOT p50 ${tpot} ms, prefill ${share}), so meeting the TPOT objective of ${slo.tpotMs} ms takes more of it than the split costs`;
  return `${a.spec} ${cost}${lat}. Why: ${why}.`;
}
