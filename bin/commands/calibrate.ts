/**
 * `disagg calibrate`: the timing model against the published measurements it was fitted to and checked
 * against, and its leave-one-group-out cross-validation. `--fit` refits; `--fit --write` stores the fitted
 * factors, bands and cross-validation in the sources (lib/core/emulator/factors.ts, calibration/cv-results.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { plainTable } from './table';
import { STACKS } from '../../lib/core/emulator';
import {
  calibrationTable,
  CV_MEDIAN_LIMIT,
  CV_FAMILY_MEDIANS,
  CV_OVERALL_MEDIAN,
  CV_SUMMARY,
  fitSummary,
  renderCvSource,
  renderFittedSource,
  runCalibration,
  STACK_FITS,
  type CalibrationRow,
  type GroupSummary,
} from '../../lib/core/emulator/calibration';
import { FITTED_BANDS } from '../../lib/core/emulator/factors';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const unit: Record<string, string> = {
  ttftMs: 'ms',
  tpotMs: 'ms',
  tokensPerSecond: 'tok/s',
  e2eMs: 'ms',
  kernelMs: 'ms',
  allReduceMs: 'ms',
};
const value = (v: number): string =>
  v >= 1000 ? v.toFixed(0) : v >= 100 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(3);
const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '-');

/** Serving points outside the two bulk tables (SplitwiseSim, Neuron 2.18), which are summarised instead. */
function listed(r: CalibrationRow, all: boolean): boolean {
  if (r.point.kind !== 'serving') return false;
  if (all) return true;
  return !(r.point.id.startsWith('splitwise-') || r.point.id.startsWith('tnx-'));
}

export function calibrationJson(rows: readonly CalibrationRow[]): unknown {
  return {
    points: rows.map((r) => ({
      id: r.point.id,
      point: r.point.label,
      stack: r.point.stack,
      device: r.point.device,
      model: r.point.model,
      degree: r.point.degree,
      kind: r.point.kind,
      source: r.point.source,
      metric: r.point.metric,
      role: r.point.role,
      measured: r.point.measured,
      emulated: Number(r.emulated.toPrecision(5)),
      errorPercent: Number((r.error * 100).toFixed(2)),
    })),
    fit: fitSummary(rows),
    crossValidation: {
      overallMedianError: CV_OVERALL_MEDIAN,
      limit: CV_MEDIAN_LIMIT,
      familyMedianErrors: CV_FAMILY_MEDIANS,
      groups: CV_SUMMARY,
    },
    bands: FITTED_BANDS,
    assumptions: STACK_FITS.map((fit) => ({
      stack: fit.stack,
      freeFactors: fit.free.map((p) => p.name),
      priors: fit.free.flatMap((p) => (p.prior ? [{ factor: p.name, ...p.prior }] : [])),
      fixed: fit.assumptions,
    })),
  };
}

const familiesText = (): string =>
  Object.entries(CV_FAMILY_MEDIANS)
    .map(([family, m]) => `${family} ${pct(m)}`)
    .join(', ');

/** What each stack's fit may move, the priors it leans on and the values it keeps fixed, with their reasons. */
function assumptionsText(): string {
  return STACK_FITS.map((fit) => {
    const priors = fit.free.flatMap((p) =>
      p.prior ? [`    prior ${p.name} = ${p.prior.value}: ${p.prior.reason}`] : [],
    );
    const fixed = fit.assumptions.map((a) => `    fixed: ${a}`);
    return [`  ${fit.stack}: ${fit.free.length} free factors`, ...priors, ...fixed].join('\n');
  }).join('\n');
}

function fitSummaryText(rows: readonly CalibrationRow[]): string {
  const table = plainTable(['stack', 'points', 'fit points', 'median error', 'worst error']);
  for (const s of fitSummary(rows)) {
    table.push([
      s.stack,
      s.kind === 'serving' ? 'serving' : 'operator/collective profiles',
      String(s.points),
      pct(s.medianError),
      pct(s.worstError),
    ]);
  }
  return table.toString();
}

function pointsText(rows: readonly CalibrationRow[], all: boolean): string {
  const table = plainTable(['point', 'stack', 'source', 'measured', 'emulated', 'error', 'role'], {
    colWidths: [46, 17, 44, 12, 12, 8, 7],
    wordWrap: true,
  });
  for (const r of rows.filter((row) => listed(row, all))) {
    const u = unit[r.point.metric];
    table.push([
      r.point.label,
      r.point.stack,
      r.point.source,
      `${value(r.point.measured)} ${u}`,
      `${value(r.emulated)} ${u}`,
      pct(r.error),
      r.point.role,
    ]);
  }
  return table.toString();
}

export function cvText(summary: readonly GroupSummary[], overall: number): string {
  const table = plainTable(['stack', 'held out', 'group', 'points', 'median error', 'worst error']);
  for (const s of summary) {
    if (s.skipped) table.push([s.stack, s.kind, s.group, '-', { colSpan: 2, content: `not run: ${s.skipped}` }]);
    else table.push([s.stack, s.kind, s.group, String(s.points), pct(s.medianError), pct(s.worstError)]);
  }
  const verdict = overall <= CV_MEDIAN_LIMIT ? 'within' : 'NOT within';
  return `${table.toString()}\nCross-validated median error ${pct(overall)} over every held-out prediction: ${verdict} the ${pct(CV_MEDIAN_LIMIT)} limit.`;
}

function bandsText(bands: typeof FITTED_BANDS): string {
  const lines = Object.entries(bands).map(
    ([family, b]) =>
      `  ${family.padEnd(7)} calibrated devices x/÷ ${Math.exp(b.calibrated).toFixed(2)}, devices borrowing factors x/÷ ${Math.exp(b.borrowed).toFixed(2)}`,
  );
  return ['Error bands (80% of held-out predictions fall inside; estimate --json gives low/high):', ...lines].join(
    '\n',
  );
}

export function calibrationText(all = false): string {
  const rows = calibrationTable();
  const stacks = Object.values(STACKS)
    .map((s) => `  ${s.id.padEnd(17)} ${s.name} (${s.date})`)
    .join('\n');
  return [
    'Serving stacks:',
    stacks,
    '',
    'Fit (stored factors against every fit point):',
    fitSummaryText(rows),
    '',
    all
      ? 'Serving points:'
      : 'Serving points (SplitwiseSim and Neuron 2.18 tables summarised above; --all lists them):',
    pointsText(rows, all),
    '',
    'What each fit may move, its priors and its fixed values:',
    assumptionsText(),
    '',
    'Leave-one-group-out cross-validation (stored from the last `calibrate --fit --write`; --fit recomputes):',
    cvText(CV_SUMMARY, CV_OVERALL_MEDIAN),
    `By device family: ${familiesText()}.`,
    '',
    bandsText(FITTED_BANDS),
  ].join('\n');
}

const mdPct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '-');

/** The fit summary and the cross-validation per group, as markdown (the README's emulator section). */
export function calibrationMarkdown(): string {
  const rows = calibrationTable();
  const fit = ['| stack | points | fit points | median error | worst error |', '| --- | --- | ---: | ---: | ---: |'];
  for (const s of fitSummary(rows)) {
    fit.push(
      `| ${s.stack} | ${s.kind === 'serving' ? 'serving' : 'operator/collective profiles'} | ${s.points} | ${mdPct(s.medianError)} | ${mdPct(s.worstError)} |`,
    );
  }
  const cv = [
    '| stack | held out | group | points | median error | worst error |',
    '| --- | --- | --- | ---: | ---: | ---: |',
  ];
  for (const s of CV_SUMMARY) {
    if (s.skipped) cv.push(`| ${s.stack} | ${s.kind} | ${s.group} | - | not run: ${s.skipped} | |`);
    else
      cv.push(
        `| ${s.stack} | ${s.kind} | ${s.group} | ${s.points} | ${mdPct(s.medianError)} | ${mdPct(s.worstError)} |`,
      );
  }
  return [
    ...fit,
    '',
    ...cv,
    '',
    `Cross-validated median error: ${mdPct(CV_OVERALL_MEDIAN)} (limit ${mdPct(CV_MEDIAN_LIMIT)}); by device family: ${familiesText()}.`,
  ].join('\n');
}

/** Refits, cross-validates and (with `write`) stores the results in the sources. */
export async function refit(write: boolean, progress: (done: number, total: number) => void): Promise<string> {
  const run = runCalibration(progress);
  const text = ['Refitted factors: cross-validation', cvText(run.summary, run.overall), '', bandsText(run.bands)].join(
    '\n',
  );
  if (!write) return text;
  const factorsFile = join(root, 'lib', 'core', 'emulator', 'factors.ts');
  const source = readFileSync(factorsFile, 'utf8');
  const begin = source.indexOf('export const FITTED_FACTORS');
  const end = source.indexOf('// END FITTED FACTORS');
  if (begin < 0 || end < 0) throw new Error('factors.ts has lost its generated region markers');
  const updated = `${source.slice(0, begin)}${renderFittedSource(run.state, run.bands)}\n${source.slice(end)}`;
  const cvFile = join(root, 'lib', 'core', 'emulator', 'calibration', 'cv-results.ts');
  await writeFormatted(factorsFile, updated);
  await writeFormatted(cvFile, renderCvSource(run.summary, run.overall, run.families));
  return `${text}\n\nwrote lib/core/emulator/factors.ts and lib/core/emulator/calibration/cv-results.ts`;
}

/** Writes a source file formatted as the repository's Prettier config wants it (when Prettier is installed). */
async function writeFormatted(file: string, text: string): Promise<void> {
  let formatted = text;
  try {
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(file)) ?? {};
    formatted = await prettier.format(text, { ...options, filepath: file });
  } catch {
    // Without Prettier (a production install) the file is still valid TypeScript.
  }
  writeFileSync(file, formatted);
}
