/**
 * The fit: per serving stack, Levenberg-Marquardt (ml-levenberg-marquardt) on the log error of every fit
 * point, free parameters searched in log space within their bounds. Point groups are weighted so that the
 * hundreds of operator profiles of a stack count as much as its handful of serving measurements, not more.
 */
import { levenbergMarquardt } from 'ml-levenberg-marquardt';
import type { DeviceId } from '../devices';
import type { DeviceFactors, FactorTable } from '../factors';
import { FACTOR_STACK_IDS, type StackId } from '../stacks';
import { PRIOR_LOG_SIGMA, STACK_FITS, type StackFit } from './parameters';
import { calibrationPoints, type CalibrationPoint, type FitState } from './points';

/** The order the stacks are fitted in (each stack is fitted on its own points). */
const FIT_ORDER: readonly StackId[] = [
  'gpu-2025',
  'splitwise-2023',
  'tnx-2.18',
  'nxdi',
  'cerebras-2024-08',
  'cerebras-2025',
];

export const EMPTY_STATE: FitState = {
  factors: Object.fromEntries(FACTOR_STACK_IDS.map((id) => [id, {}])) as unknown as FactorTable,
  acceptance: {},
};

function startState(): FitState {
  const factors = Object.fromEntries(STACK_FITS.map((s) => [s.stack, { ...s.start }])) as unknown as FactorTable;
  const acceptance: Record<string, number> = {};
  for (const s of STACK_FITS) {
    // Acceptance starts where speculation helps (below about 0.4 it slows decode, a basin the fit must not start in).
    for (const p of s.free) if (p.target.kind === 'acceptance') acceptance[p.target.key] = Math.min(p.max, 0.7);
  }
  return { factors, acceptance };
}

function readParameter(state: FitState, fit: StackFit, index: number): number {
  const p = fit.free[index];
  if (!p) throw new Error('no such parameter');
  if (p.target.kind === 'acceptance') return state.acceptance[p.target.key] as number;
  const device = p.target.devices[0] as DeviceId;
  const factors = state.factors[fit.stack]?.[device] as unknown as Record<string, number>;
  const names = typeof p.target.factor === 'string' ? [p.target.factor] : p.target.factor;
  return factors[names[0] as string] as number;
}

function withParameters(state: FitState, fit: StackFit, values: readonly number[]): FitState {
  const stackTable: Partial<Record<DeviceId, DeviceFactors>> = { ...state.factors[fit.stack] };
  const acceptance = { ...state.acceptance };
  fit.free.forEach((p, i) => {
    const v = values[i] as number;
    if (p.target.kind === 'acceptance') {
      acceptance[p.target.key] = v;
      return;
    }
    const names = typeof p.target.factor === 'string' ? [p.target.factor] : p.target.factor;
    for (const device of p.target.devices) {
      const current = stackTable[device];
      if (!current) throw new Error(`${fit.stack}: no start factors for ${device}`);
      stackTable[device] = { ...current, ...Object.fromEntries(names.map((n) => [n, v])) } as DeviceFactors;
    }
  });
  return { factors: { ...state.factors, [fit.stack]: stackTable }, acceptance };
}

/** Weights that give each (stack, metric kind) group the same total weight. */
function groupWeights(points: readonly CalibrationPoint[]): number[] {
  const group = (p: CalibrationPoint): string => (p.kind === 'profile' ? p.metric : 'serving');
  const counts = new Map<string, number>();
  for (const p of points) counts.set(group(p), (counts.get(group(p)) ?? 0) + 1);
  const serving = counts.get('serving') ?? 1;
  // Profiles count as a group each, scaled to the serving group's size; serving points weigh 1.
  return points.map((p) => (p.kind === 'profile' ? Math.sqrt(serving / (counts.get(group(p)) as number)) : 1));
}

export function logError(point: CalibrationPoint, state: FitState): number {
  return Math.log(point.predict(state) / point.measured);
}

/**
 * Errors beyond this (as a log ratio, about 10%) count linearly rather than quadratically (Huber): one
 * inconsistent published figure should not pull every other prediction of its stack off.
 */
export const ROBUST_SCALE = 0.1;
/** Reweighting rounds of the robust fit (iteratively reweighted least squares). */
const ROBUST_ROUNDS = 3;

/** Fits one stack's free parameters to `points`, starting from `state`; returns the new state. */
export function fitStack(state: FitState, fit: StackFit, points: readonly CalibrationPoint[]): FitState {
  if (points.length === 0 || fit.free.length === 0) return state;
  const base = groupWeights(points);
  let current = state;
  let robust = points.map(() => 1);
  for (let round = 0; round < ROBUST_ROUNDS; round++) {
    current = fitWeighted(
      current,
      fit,
      points,
      base.map((w, i) => w * (robust[i] as number)),
    );
    robust = points.map((p) => {
      const r = Math.abs(logError(p, current));
      return r <= ROBUST_SCALE ? 1 : Math.sqrt(ROBUST_SCALE / r);
    });
  }
  return current;
}

function fitWeighted(
  state: FitState,
  fit: StackFit,
  points: readonly CalibrationPoint[],
  weights: readonly number[],
): FitState {
  const lo = fit.free.map((p) => Math.log(p.min));
  const hi = fit.free.map((p) => Math.log(p.max));
  const start = fit.free.map((_, i) => {
    const v = Math.log(readParameter(state, fit, i));
    return Math.min(hi[i] as number, Math.max(lo[i] as number, v));
  });
  const priors = fit.free.flatMap((p, i) => (p.prior ? [{ index: i, log: Math.log(p.prior.value) }] : []));
  const residuals = (logValues: readonly number[]): number[] => {
    const s = withParameters(state, fit, logValues.map(Math.exp));
    const fromPoints = points.map((p, i) => {
      const r = logError(p, s) * (weights[i] as number);
      return Number.isFinite(r) ? r : 50;
    });
    const fromPriors = priors.map((p) => ((logValues[p.index] as number) - p.log) / PRIOR_LOG_SIGMA);
    return [...fromPoints, ...fromPriors, ...padding];
  };
  // The solver wants at least three rows; rows that are always zero change nothing.
  const padding = new Array<number>(Math.max(0, 3 - points.length - priors.length)).fill(0);
  const rows = points.length + priors.length + padding.length;
  const result = levenbergMarquardt(
    { x: Array.from({ length: rows }, (_, i) => i), y: new Array<number>(rows).fill(0) },
    (params: number[]) => {
      const r = residuals(params);
      return (i: number) => r[i] as number;
    },
    {
      initialValues: start,
      minValues: lo,
      maxValues: hi,
      damping: 1e-2,
      gradientDifference: 1e-4,
      maxIterations: 100,
      errorTolerance: 1e-10,
    },
  );
  return withParameters(state, fit, result.parameterValues.map(Math.exp));
}

/**
 * For each free parameter of `fit` without a prior, the ids of `points` whose prediction moves when that
 * parameter alone moves (by a fifth, from the starting state). A parameter no point moves is not determined
 * by them: a fit leaves it at its start value, so what it predicts with that parameter is a guess.
 */
export function respondingPoints(fit: StackFit, points: readonly CalibrationPoint[]): Map<string, Set<string>> {
  const base = startState();
  const values = fit.free.map((_, i) => readParameter(base, fit, i));
  const before = points.map((p) => p.predict(base));
  const out = new Map<string, Set<string>>();
  fit.free.forEach((p, i) => {
    if (p.prior) return;
    const moved = values.map((v, j) => (j === i ? Math.min(p.max, Math.max(p.min, v * 1.2)) : v));
    // At a bound, move the other way.
    if (moved[i] === values[i]) moved[i] = Math.max(p.min, (values[i] as number) / 1.2);
    const state = withParameters(base, fit, moved);
    const ids = new Set<string>();
    points.forEach((point, k) => {
      if (Math.abs(Math.log(point.predict(state) / (before[k] as number))) > 1e-9) ids.add(point.id);
    });
    out.set(p.name, ids);
  });
  return out;
}

export interface FitResult {
  readonly state: FitState;
  /** Sum of squared log errors of the fit points, per stack. */
  readonly loss: Readonly<Record<string, number>>;
}

/** Fits every stack, in order, to its fit points (optionally leaving some out, for cross-validation). */
export function fitAll(exclude: (p: CalibrationPoint) => boolean = () => false, only?: StackId): FitResult {
  let state = startState();
  const loss: Record<string, number> = {};
  const all = calibrationPoints();
  for (const stack of FIT_ORDER) {
    const fit = STACK_FITS.find((s) => s.stack === stack);
    if (!fit) continue;
    if (only !== undefined && stack !== only) continue;
    const points = all.filter((p) => p.stack === stack && p.role === 'fit' && !exclude(p));
    state = fitStack(state, fit, points);
    loss[stack] = points.reduce((sum, p) => sum + logError(p, state) ** 2, 0);
  }
  return { state, loss };
}
