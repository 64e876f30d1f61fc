/**
 * Calibration: the published data sets (data.ts, published.ts), the points built from them (points.ts), the
 * fit (fit.ts, parameters.ts) and leave-one-group-out cross-validation (cv.ts). Kept apart from the timing
 * model so the Lambda bundles, which charge time, never carry the data sets.
 */
import { FITTED_ACCEPTANCE, FITTED_FACTORS, type FactorTable, type FamilyBand } from '../factors';
import type { DeviceFamily } from '../devices';
import { FACTOR_STACK_IDS, STACK_IDS, type StackId } from '../stacks';
import {
  crossValidate,
  errorBands,
  familyMedianErrors,
  overallMedianError,
  summarise,
  type FoldResult,
  type GroupSummary,
} from './cv';
import { fitAll, logError } from './fit';
import { calibrationPoints, type CalibrationPoint, type FitState } from './points';

export { calibrationPoints, crossValidate, errorBands, familyMedianErrors, fitAll, overallMedianError, summarise };
export type { CalibrationPoint, FitState, FoldResult, GroupSummary };
export { STACK_FITS, ASSUMED_WAFER_KV_EFFICIENCY, ASSUMED_WAFER_MATMUL_EFFICIENCY } from './parameters';
export { ROBUST_SCALE } from './fit';
export { BAND_COVERAGE } from './cv';
export { CV_SUMMARY, CV_OVERALL_MEDIAN, CV_FAMILY_MEDIANS } from './cv-results';

/** Cross-validated median error the calibration must stay within (a unit test checks it). */
export const CV_MEDIAN_LIMIT = 0.12;

export const STORED_STATE: FitState = { factors: FITTED_FACTORS, acceptance: FITTED_ACCEPTANCE };

export interface CalibrationRow {
  readonly point: CalibrationPoint;
  readonly emulated: number;
  /** (emulated - measured) / measured. */
  readonly error: number;
}

export function calibrationTable(state: FitState = STORED_STATE): CalibrationRow[] {
  return calibrationPoints().map((point) => ({
    point,
    emulated: point.predict(state),
    error: Math.exp(logError(point, state)) - 1,
  }));
}

export interface StackFitSummary {
  readonly stack: StackId;
  readonly kind: 'serving' | 'profile';
  readonly points: number;
  readonly medianError: number;
  readonly worstError: number;
}

const median = (values: readonly number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

/** Fit errors per stack, serving and profile points apart (fit points only). */
export function fitSummary(rows: readonly CalibrationRow[]): StackFitSummary[] {
  const out: StackFitSummary[] = [];
  for (const stack of STACK_IDS) {
    for (const kind of ['serving', 'profile'] as const) {
      const errors = rows
        .filter((r) => r.point.stack === stack && r.point.kind === kind && r.point.role === 'fit')
        .map((r) => Math.abs(r.error));
      if (errors.length === 0) continue;
      out.push({ stack, kind, points: errors.length, medianError: median(errors), worstError: Math.max(...errors) });
    }
  }
  return out;
}

const num = (x: number): string => String(Number(x.toPrecision(4)));

/** The generated region of factors.ts for a fitted state and its bands. */
export function renderFittedSource(state: FitState, bands: Record<DeviceFamily, FamilyBand>): string {
  const lines: string[] = ['export const FITTED_FACTORS: FactorTable = {'];
  const table = state.factors as FactorTable;
  for (const stack of FACTOR_STACK_IDS) {
    lines.push(
      `  ${JSON.stringify(stack)
        .replace(/^"([a-z]+)"$/, '$1')
        .replace(/"/g, "'")}: {`,
    );
    for (const [device, factors] of Object.entries(table[stack] ?? {})) {
      if (!factors) continue;
      const fields = Object.entries(factors)
        .map(([k, v]) => `${k}: ${typeof v === 'number' ? num(v) : `'${v}'`}`)
        .join(', ');
      lines.push(`    ${device}: { ${fields} },`);
    }
    lines.push('  },');
  }
  lines.push('};', '', 'export const FITTED_BANDS: Readonly<Record<DeviceFamily, FamilyBand>> = {');
  for (const family of ['gpu', 'neuron', 'wafer'] as const) {
    lines.push(
      `  ${family}: { calibrated: ${num(bands[family].calibrated)}, borrowed: ${num(bands[family].borrowed)} },`,
    );
  }
  lines.push(
    '};',
    '',
    '/** Fitted acceptance rates of draft -> target pairs (see speculative.ts PROVIDER_SPECULATION). */',
    'export const FITTED_ACCEPTANCE: Readonly<Record<string, number>> = {',
  );
  for (const [key, value] of Object.entries(state.acceptance)) lines.push(`  '${key}': ${num(value)},`);
  lines.push('};');
  return lines.join('\n');
}

/** The generated cross-validation summary (cv-results.ts). */
export function renderCvSource(
  summary: readonly GroupSummary[],
  overall: number,
  families: Readonly<Record<DeviceFamily, number>>,
): string {
  // NaN (a fold that did not run) is kept as NaN, which JSON would turn into null.
  const rows = summary.map(
    (s) =>
      `  ${JSON.stringify(s, (_k, v: unknown) => (typeof v === 'number' && Number.isNaN(v) ? '__NaN__' : v)).replace(/"__NaN__"/g, 'NaN')},`,
  );
  return `/**
 * GENERATED by \`npx disagg calibrate --fit --write\`: the leave-one-group-out cross-validation of the stored
 * factors. Do not edit; a unit test recomputes it.
 */
import type { DeviceFamily } from '../devices';
import type { GroupSummary } from './cv';

export const CV_OVERALL_MEDIAN = ${num(overall)};

/** Median held-out error per device family. */
export const CV_FAMILY_MEDIANS: Readonly<Record<DeviceFamily, number>> = ${JSON.stringify(families)};

export const CV_SUMMARY: readonly GroupSummary[] = [
${rows.join('\n')}
];
`;
}

/** Every output of a full calibration run. */
export interface CalibrationRun {
  readonly state: FitState;
  readonly folds: readonly FoldResult[];
  readonly summary: readonly GroupSummary[];
  readonly overall: number;
  readonly families: Record<DeviceFamily, number>;
  readonly bands: Record<DeviceFamily, FamilyBand>;
}

export function runCalibration(onFold?: (done: number, total: number) => void): CalibrationRun {
  const { state } = fitAll();
  const folds = crossValidate(onFold);
  return {
    state,
    folds,
    summary: summarise(folds),
    overall: overallMedianError(folds),
    families: familyMedianErrors(folds),
    bands: errorBands(folds),
  };
}

/** Largest relative difference between two factor tables (the stored factors against a fresh fit). */
export function factorDrift(a: FactorTable, b: FactorTable): number {
  let worst = 0;
  for (const stack of FACTOR_STACK_IDS) {
    for (const [device, fa] of Object.entries(a[stack] ?? {})) {
      const fb = (b[stack] as Record<string, unknown> | undefined)?.[device] as
        Record<string, number | string> | undefined;
      if (!fa || !fb) return Infinity;
      for (const [k, v] of Object.entries(fa)) {
        if (typeof v !== 'number') continue;
        const w = fb[k] as number;
        worst = Math.max(worst, Math.abs(v - w) / Math.max(Math.abs(v), Math.abs(w), 1e-9));
      }
    }
  }
  return worst;
}
