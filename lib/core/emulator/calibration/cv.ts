/**
 * Leave-one-group-out cross-validation: hold out every serving point of one device, one model or one
 * parallel degree of a stack, refit that stack without them, and predict them. Profile points (operators,
 * collectives) of a held-out device leave with it; otherwise they stay. A device that is the only one of its
 * stack cannot be predicted without its own points, and the table says so instead of inventing a number.
 */
import type { DeviceFamily, DeviceId } from '../devices';
import type { DeviceFactors, FactorTable } from '../factors';
import { STACKS, type StackId } from '../stacks';
import { fitAll, logError, respondingPoints } from './fit';
import { STACK_FITS } from './parameters';
import { calibrationPoints, type CalibrationPoint, type FitState } from './points';

export type GroupKind = 'device' | 'model' | 'degree';

export interface HeldOutPrediction {
  readonly point: CalibrationPoint;
  readonly predicted: number;
  /** (predicted - measured) / measured. */
  readonly error: number;
}

export interface FoldResult {
  readonly stack: StackId;
  readonly kind: GroupKind;
  readonly group: string;
  readonly predictions: readonly HeldOutPrediction[];
  /** Why the fold could not run (the only calibrated device of its stack). */
  readonly skipped?: string;
}

const groupOf = (p: CalibrationPoint, kind: GroupKind): string =>
  kind === 'device' ? p.device : kind === 'model' ? p.model : String(p.degree);

function withBorrowed(state: FitState, stack: StackId, device: DeviceId, from: DeviceId): FitState {
  const table = state.factors[stack] ?? {};
  const factors = table[from] as DeviceFactors;
  return { ...state, factors: { ...state.factors, [stack]: { ...table, [device]: factors } } as FactorTable };
}

/** Per stack, which fit points respond to each free parameter without a prior (respondingPoints). */
const responders = new Map<StackId, Map<string, Set<string>>>();

/**
 * The first free parameter without a prior that some fit point of the stack responds to but none of
 * `training` does, if any: the held-out points were all that determined it. (A parameter no fit point moves
 * at its start, such as a kernel floor below every kernel, is as loose in the full fit and does not count; nor
 * do the factors of a held-out device, which borrows another's.)
 */
function unconstrained(
  stack: StackId,
  training: readonly CalibrationPoint[],
  heldDevice: string | undefined,
): string | undefined {
  const fit = STACK_FITS.find((s) => s.stack === stack);
  if (!fit) return undefined;
  let table = responders.get(stack);
  if (!table) {
    table = respondingPoints(
      fit,
      calibrationPoints().filter((p) => p.stack === stack && p.role === 'fit'),
    );
    responders.set(stack, table);
  }
  for (const [name, ids] of table) {
    // A held-out device's own factors are replaced by another device's (it borrows), not fitted.
    const target = fit.free.find((p) => p.name === name)?.target;
    if (target?.kind === 'factor' && target.devices.every((d) => d === heldDevice)) continue;
    if (ids.size > 0 && !training.some((p) => ids.has(p.id))) return name;
  }
  return undefined;
}

export function crossValidate(onFold?: (done: number, total: number) => void, only?: StackId): FoldResult[] {
  const serving = calibrationPoints().filter(
    (p) => p.kind === 'serving' && p.role === 'fit' && (only === undefined || p.stack === only),
  );
  const folds: { stack: StackId; kind: GroupKind; group: string }[] = [];
  for (const stack of new Set(serving.map((p) => p.stack))) {
    for (const kind of ['device', 'model', 'degree'] as const) {
      const groups = new Set(serving.filter((p) => p.stack === stack).map((p) => groupOf(p, kind)));
      // A group that holds every serving point of the stack leaves nothing to fit from.
      if (groups.size < 2) continue;
      for (const group of groups) folds.push({ stack, kind, group });
    }
  }
  const results: FoldResult[] = [];
  const seen = new Set<string>();
  folds.forEach((fold, i) => {
    const held = (p: CalibrationPoint): boolean =>
      p.stack === fold.stack &&
      groupOf(p, fold.kind) === fold.group &&
      (p.kind === 'serving' || fold.kind === 'device');
    const targets = serving.filter((p) => held(p));
    // A degree held out can be every point of one device (each Neuron instance runs one TP degree): the same
    // held-out set twice is one fold.
    const signature = `${fold.stack}:${targets.map((p) => p.id).join(',')}`;
    const duplicate = seen.has(signature);
    seen.add(signature);
    const free = STACK_FITS.find((s) => s.stack === fold.stack)?.free.length ?? 0;
    const training = calibrationPoints().filter((p) => p.stack === fold.stack && p.role === 'fit' && !held(p));
    // A fold runs when its training points can determine every free factor (as many points as factors, at
    // least three, and for each factor without a prior some point that responds to it; priors steady what
    // the points leave loose); fewer would be a guess, not a prediction.
    const loose = duplicate
      ? undefined
      : unconstrained(fold.stack, training, fold.kind === 'device' ? fold.group : undefined);
    const skip = duplicate
      ? 'the same points as another fold'
      : training.length < Math.max(3, free)
        ? `${training.length} points would be left to fit ${free} factors`
        : loose !== undefined
          ? `no point left responds to ${loose}`
          : null;
    if (skip) {
      results.push({ ...fold, predictions: [], skipped: skip });
      onFold?.(i + 1, folds.length);
      return;
    }
    let state = fitAll(held, fold.stack).state;
    // Devices left without serving points of their own borrow, as devices without data do in production.
    for (const device of STACKS[fold.stack].calibratedDevices) {
      if (training.some((p) => p.device === device && p.kind === 'serving')) continue;
      const from = STACKS[fold.stack].calibratedDevices.find(
        (d) => d !== device && training.some((p) => p.device === d && p.kind === 'serving'),
      );
      if (from === undefined) {
        state = null as unknown as FitState;
        break;
      }
      state = withBorrowed(state, fold.stack, device, from);
    }
    if (state === null) {
      results.push({ ...fold, predictions: [], skipped: `no other device of ${fold.stack} to borrow factors from` });
      onFold?.(i + 1, folds.length);
      return;
    }
    const predictions = targets.map((point) => {
      const predicted = point.predict(state);
      return { point, predicted, error: Math.exp(logError(point, state)) - 1 };
    });
    results.push({ ...fold, predictions });
    onFold?.(i + 1, folds.length);
  });
  return results;
}

export interface GroupSummary {
  readonly stack: StackId;
  readonly kind: GroupKind;
  readonly group: string;
  readonly points: number;
  readonly medianError: number;
  readonly worstError: number;
  readonly skipped?: string;
}

const median = (values: readonly number[]): number => {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

export function summarise(folds: readonly FoldResult[]): GroupSummary[] {
  return folds.map((f) => {
    const errors = f.predictions.map((p) => Math.abs(p.error));
    return {
      stack: f.stack,
      kind: f.kind,
      group: f.group,
      points: f.predictions.length,
      medianError: median(errors),
      worstError: errors.length ? Math.max(...errors) : NaN,
      ...(f.skipped ? { skipped: f.skipped } : {}),
    };
  });
}

/** Median absolute relative error over every held-out prediction. */
export function overallMedianError(folds: readonly FoldResult[]): number {
  return median(folds.flatMap((f) => f.predictions.map((p) => Math.abs(p.error))));
}

/** Median |error| of the held-out predictions of each device family, every fold kind pooled. */
export function familyMedianErrors(folds: readonly FoldResult[]): Record<DeviceFamily, number> {
  const out = {} as Record<DeviceFamily, number>;
  for (const family of ['gpu', 'neuron', 'wafer'] as const) {
    const errors = folds
      .filter((f) => STACKS[f.stack].family === family)
      .flatMap((f) => f.predictions.map((p) => Math.abs(p.error)));
    out[family] = round(median(errors));
  }
  return out;
}

/** The share of held-out predictions the band covers. */
export const BAND_COVERAGE = 0.8;

function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
}

/**
 * Error bands per device family: the BAND_COVERAGE quantile of |log error| over held-out predictions, from
 * model and degree folds (calibrated devices) and from device folds (devices borrowing factors). A family
 * with no device fold borrows its calibrated band doubled.
 */
export function errorBands(
  folds: readonly FoldResult[],
): Record<DeviceFamily, { calibrated: number; borrowed: number }> {
  const out = {} as Record<DeviceFamily, { calibrated: number; borrowed: number }>;
  for (const family of ['gpu', 'neuron', 'wafer'] as const) {
    const inFamily = folds.filter((f) => STACKS[f.stack].family === family);
    const logs = (kinds: readonly GroupKind[]): number[] =>
      inFamily
        .filter((f) => kinds.includes(f.kind))
        .flatMap((f) => f.predictions.map((p) => Math.abs(Math.log1p(p.error))));
    const calibrated = quantile(logs(['model', 'degree']), BAND_COVERAGE);
    const device = logs(['device']);
    const borrowed = device.length ? Math.max(calibrated, quantile(device, BAND_COVERAGE)) : 2 * calibrated;
    out[family] = { calibrated: round(calibrated), borrowed: round(borrowed) };
  }
  return out;
}

const round = (x: number): number => Number(x.toFixed(4));
