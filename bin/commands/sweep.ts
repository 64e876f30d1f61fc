/**
 * `disagg sweep`: raise the load step by step and report, per system, the highest load at which
 * the SLO attainment stays at or above a target (default 90%).
 */
import {
  formatSystemSpec,
  jsonSafe,
  meanArrivalRate,
  missBreakdown,
  REJECTED,
  resolveSimOptions,
  simulate,
  type SimOptions,
  type SimResult,
  type SystemSpec,
  type Workload,
} from '../../lib/core/sim';
import { UsageError } from './errors';
import {
  baseWorkload,
  progressBar,
  systemsFromFlags,
  transformWorkload,
  workloadKind,
  type SimulateFlags,
} from './simulate';
import { plainTable } from './table';

export interface SweepFlags extends SimulateFlags {
  rates?: string;
  from?: string;
  to?: string;
  steps?: string;
  target: string;
}

export { DEFAULT_SWEEP_TARGET } from './constants';

export interface SweepStep {
  /** Synthetic: requests per second. Trace or agents: the rate scale applied. */
  readonly value: number;
  /** Mean offered arrival rate, requests per second. */
  readonly offeredRps: number;
  readonly sloAttainment: number;
  readonly goodputRps: number;
  readonly ttftP99Ms: number | null;
  readonly tpotP99Ms: number | null;
  readonly rejected: number;
  /**
   * Why requests missed the SLO, as shares of all requests: TTFT over its objective, TPOT over its
   * objective (a request may miss both), rejected. sloAttainment = 1 - the share that missed any.
   */
  readonly misses: { readonly ttft: number; readonly tpot: number; readonly rejected: number };
}

export interface SweepSystem {
  readonly spec: string;
  /** Highest step value with SLO attainment >= target, null when none met it. */
  readonly maxSustained: number | null;
  readonly maxSustainedRps: number | null;
  /**
   * What held the system below the target at the first load that missed it (the lowest one when none met
   * it): the SLO or the rejections that cost the most attainment, e.g. "TTFT over 2000 ms for 31.0%";
   * null when every step met the target.
   */
  readonly failedBy: string | null;
  readonly steps: SweepStep[];
}

export interface SweepResult {
  readonly variable: 'rate' | 'rateScale';
  readonly target: number;
  readonly systems: SweepSystem[];
}

function parseList(value: string): number[] {
  const values = value.split(',').map((v) => Number(v.trim()));
  if (values.length === 0 || values.some((v) => !Number.isFinite(v) || v <= 0)) {
    throw new UsageError(`--rates must be positive numbers separated by commas, got "${value}"`);
  }
  return values;
}

/** The load steps, from --rates a,b,c or --from A --to B --steps N (evenly spaced). */
export function sweepSteps(flags: Pick<SweepFlags, 'rates' | 'from' | 'to' | 'steps'>): number[] {
  if (flags.rates !== undefined) {
    if (flags.from !== undefined || flags.to !== undefined)
      throw new UsageError('give --rates or --from/--to/--steps, not both');
    return parseList(flags.rates).sort((a, b) => a - b);
  }
  if (flags.from === undefined || flags.to === undefined) {
    throw new UsageError('sweep needs the load steps: --rates a,b,c or --from A --to B [--steps N]');
  }
  const from = Number(flags.from);
  const to = Number(flags.to);
  const steps = Number(flags.steps ?? '5');
  if (!(from > 0) || !(to >= from) || !Number.isInteger(steps) || steps < 1 || steps > 1000) {
    throw new UsageError(
      '--from and --to must be positive with --to >= --from, and --steps a whole number from 1 to 1000',
    );
  }
  if (steps === 1) return [from];
  return Array.from({ length: steps }, (_, k) => Number((from + ((to - from) * k) / (steps - 1)).toPrecision(12)));
}

/** Called with every run of a sweep: system index, step index, the step's workload and its result. */
export type SweepRunListener = (system: number, step: number, workload: Workload, result: SimResult) => void;

export async function runSweep(flags: SweepFlags, onRun?: SweepRunListener): Promise<SweepResult> {
  const target = Number(flags.target);
  if (!(target > 0 && target <= 1))
    throw new UsageError(`--target must be a fraction in (0, 1], got "${flags.target}"`);
  const { specs, options } = systemsFromFlags(flags);
  const steps = sweepSteps(flags);
  const variable = workloadKind(flags) === 'synthetic' ? 'rate' : 'rateScale';
  const base = variable === 'rateScale' ? await baseWorkload(flags) : null;
  const workloads: Workload[] = [];
  for (const value of steps) {
    workloads.push(
      base ? transformWorkload(base, flags, value) : transformWorkload(await baseWorkload(flags, value), flags),
    );
  }
  return {
    variable,
    target,
    systems: specs.map((spec, s) =>
      sweepSystem(spec, options, steps, workloads, target, onRun && ((k, w, r) => onRun(s, k, w, r))),
    ),
  };
}

function sweepSystem(
  spec: SystemSpec,
  options: SimOptions,
  steps: readonly number[],
  workloads: readonly Workload[],
  target: number,
  onRun?: (step: number, workload: Workload, result: SimResult) => void,
): SweepSystem {
  const results: SweepStep[] = [];
  for (let k = 0; k < steps.length; k++) {
    const workload = workloads[k] as Workload;
    const progress = progressBar(`sweep step ${k + 1} of ${steps.length}`);
    let result: SimResult;
    try {
      result = simulate(workload, spec, options, progress.update);
    } finally {
      progress.stop();
    }
    onRun?.(k, workload, result);
    const metrics = result.metrics;
    const missed = missBreakdown(result);
    const share = (x: number): number => (metrics.requests > 0 ? Math.round((x / metrics.requests) * 1e6) / 1e6 : 0);
    results.push({
      value: steps[k] as number,
      offeredRps: Math.round(meanArrivalRate(workload) * 1000) / 1000,
      sloAttainment: metrics.sloAttainment,
      goodputRps: metrics.goodputRps,
      ttftP99Ms: metrics.ttftMs.p99,
      tpotP99Ms: metrics.tpotMs.p99,
      rejected: metrics.rejected,
      misses: { ttft: share(missed.ttft), tpot: share(missed.tpot), rejected: share(metrics.rejected) },
    });
  }
  const passing = results.filter((s) => s.sloAttainment >= target);
  const best = passing.length > 0 ? passing[passing.length - 1] : undefined;
  const failed = results.find((s) => s.sloAttainment < target);
  return {
    spec: formatSystemSpec(spec),
    maxSustained: best ? best.value : null,
    maxSustainedRps: best ? best.offeredRps : null,
    failedBy: failed ? failureReason(failed, options) : null,
    steps: results,
  };
}

/** The misses of a step that failed, largest first: "TTFT over 2000 ms for 31.0%, 4.2% rejected". */
export function failureReason(step: SweepStep, options: SimOptions): string {
  const slo = resolveSimOptions(options).slo;
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const parts: [number, string][] = [
    [step.misses.ttft, `TTFT over ${slo.ttftMs} ms for ${pct(step.misses.ttft)}`],
    [step.misses.tpot, `TPOT over ${slo.tpotMs} ms for ${pct(step.misses.tpot)}`],
    [step.misses.rejected, `${pct(step.misses.rejected)} rejected`],
  ];
  const named = parts.filter(([x]) => x > 0).sort((a, b) => b[0] - a[0]);
  const at = `at ${step.value} (SLO attainment ${pct(step.sloAttainment)})`;
  return named.length === 0 ? at : `${named.map(([, text]) => text).join(', ')} ${at}`;
}

/** The `--json` document: an infinite p99 (among the rejected) as "rejected". */
export function sweepJson(result: SweepResult): SweepResult {
  return jsonSafe(result);
}

/** The summary and detail tables' headers and rows, as stdout prints them (the HTML report shows the same). */
export function sweepTables(result: SweepResult): {
  summary: { header: string[]; rows: string[][] };
  detail: { header: string[]; rows: string[][] };
} {
  const label = result.variable === 'rate' ? 'rate req/s' : 'rate scale';
  const summary = {
    header: [
      'system',
      `highest ${label} with SLO attainment >= ${result.target * 100}%`,
      'offered req/s',
      'what failed first',
    ],
    rows: result.systems.map((s) => [
      s.spec,
      s.maxSustained === null ? 'none' : String(s.maxSustained),
      s.maxSustainedRps === null ? '-' : String(s.maxSustainedRps),
      s.failedBy ?? 'no step failed',
    ]),
  };
  const detail = {
    header: [
      'system',
      label,
      'offered req/s',
      'SLO attainment',
      'goodput req/s',
      'TTFT p99 ms',
      'TPOT p99 ms',
      'rejected',
    ],
    rows: result.systems.flatMap((s) =>
      s.steps.map((step) => [
        s.spec,
        String(step.value),
        String(step.offeredRps),
        `${(step.sloAttainment * 100).toFixed(1)}%`,
        step.goodputRps.toFixed(3),
        step.ttftP99Ms === null ? '-' : step.ttftP99Ms === Infinity ? REJECTED : step.ttftP99Ms.toFixed(0),
        step.tpotP99Ms === null ? '-' : step.tpotP99Ms === Infinity ? REJECTED : step.tpotP99Ms.toFixed(2),
        String(step.rejected),
      ]),
    ),
  };
  return { summary, detail };
}

export function sweepText(result: SweepResult): string {
  const { summary, detail } = sweepTables(result);
  const render = (t: { header: string[]; rows: string[][] }): string => {
    const table = plainTable(t.header);
    for (const r of t.rows) table.push(r);
    return table.toString();
  };
  return `${render(summary)}\n${render(detail)}`;
}
