/**
 * `disagg calibrate --report FILE`: the timing model against every published serving point as one offline page:
 * a log-log chart of emulated against measured (fit points filled, checks hollow, the 30% band drawn), the
 * cross-validated median error of each held-out group, and the fit table. Chart.js is inlined, never fetched.
 */
import { writeFile } from 'node:fs/promises';
import { chartJsSource, scriptJson } from '../../lib/adapters/chart-js';
import { STACKS } from '../../lib/core/emulator';
import {
  calibrationTable,
  CV_FAMILY_MEDIANS,
  CV_MEDIAN_LIMIT,
  CV_OVERALL_MEDIAN,
  CV_SUMMARY,
  fitSummary,
} from '../../lib/core/emulator/calibration';
import { CSS, escapeHtml, tableHtml } from './report';

export interface CalibrationReportData {
  readonly points: readonly {
    readonly id: string;
    readonly label: string;
    readonly stack: string;
    readonly family: string;
    readonly role: 'fit' | 'check';
    readonly metric: string;
    readonly measured: number;
    readonly emulated: number;
    readonly errorPercent: number;
  }[];
  readonly folds: readonly { readonly label: string; readonly medianPercent: number; readonly points: number }[];
  readonly overallPercent: number;
  readonly limitPercent: number;
  readonly families: Readonly<Record<string, number>>;
  /** The fit table's rows: stack, points, fit points, median error, worst error. */
  readonly fit: readonly (readonly string[])[];
}

const pct = (x: number): number => Number((x * 100).toFixed(2));

export function calibrationReportData(): CalibrationReportData {
  const table = calibrationTable();
  const rows = table.filter((r) => r.point.kind === 'serving');
  return {
    points: rows.map((r) => ({
      id: r.point.id,
      label: r.point.label,
      stack: r.point.stack,
      family: STACKS[r.point.stack].family,
      role: r.point.role,
      metric: r.point.metric,
      measured: r.point.measured,
      emulated: Number(r.emulated.toPrecision(5)),
      errorPercent: pct(r.error),
    })),
    folds: CV_SUMMARY.filter((s) => !s.skipped).map((s) => ({
      label: `${s.stack} · ${s.kind} ${s.group}`,
      medianPercent: pct(s.medianError),
      points: s.points,
    })),
    overallPercent: pct(CV_OVERALL_MEDIAN),
    limitPercent: pct(CV_MEDIAN_LIMIT),
    families: Object.fromEntries(Object.entries(CV_FAMILY_MEDIANS).map(([f, m]) => [f, pct(m)])),
    fit: fitSummary(table).map((s) => [
      s.stack,
      s.kind === 'profile' ? 'operator/collective profiles' : 'serving',
      String(s.points),
      `${(s.medianError * 100).toFixed(1)}%`,
      `${(s.worstError * 100).toFixed(1)}%`,
    ]),
  };
}

// Runs in the page: draws the charts from the inlined JSON with the inlined Chart.js.
const DRAW = `
const data = JSON.parse(document.getElementById('calibration-data').textContent);
const colours = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;
const stacks = [...new Set(data.points.map((p) => p.stack))];
const lo = 10 ** Math.floor(Math.log10(Math.min(...data.points.map((p) => Math.min(p.measured, p.emulated)))));
const hi = 10 ** Math.ceil(Math.log10(Math.max(...data.points.map((p) => Math.max(p.measured, p.emulated)))));
// Label only 1, 2 and 5 x 10^n on the log axes.
const logTick = (v) => { const m = Math.round((v / 10 ** Math.floor(Math.log10(v))) * 1000) / 1000; return [1, 2, 5].includes(m) ? v.toLocaleString('en') : ''; };
const line = (label, k, dash) => ({ label, data: [{ x: lo, y: lo * k }, { x: hi, y: hi * k }], showLine: true, pointRadius: 0,
  borderWidth: 1, borderDash: dash, borderColor: '#777', backgroundColor: '#777' });
const datasets = stacks.flatMap((stack, i) => ['fit', 'check'].map((role) => ({
  label: stack + (role === 'check' ? ' (checks, not fitted)' : ''),
  data: data.points.filter((p) => p.stack === stack && p.role === role).map((p) => ({ x: p.measured, y: p.emulated, p })),
  pointRadius: role === 'fit' ? 3 : 5, pointStyle: role === 'fit' ? 'circle' : 'rectRot',
  borderColor: colours[i % colours.length], backgroundColor: role === 'fit' ? colours[i % colours.length] : 'transparent',
}))).filter((d) => d.data.length > 0);
new Chart(document.getElementById('parity'), {
  type: 'scatter',
  data: { datasets: [...datasets, line('emulated = measured', 1, []), line('+30%', 1.3, [6, 4]), line('-30%', 1 / 1.3, [6, 4])] },
  options: { plugins: { title: { display: true, text: 'Emulated against measured, every published serving point (ms, or tokens/s for per-user speeds)' },
      tooltip: { callbacks: { label: (c) => c.raw.p ? c.raw.p.label + ': measured ' + c.raw.p.measured + ', emulated ' + c.raw.p.emulated + ' (' + c.raw.p.errorPercent + '%)' : c.dataset.label } } },
    scales: { x: { type: 'logarithmic', min: lo, max: hi, ticks: { callback: logTick }, title: { display: true, text: 'measured (log scale)' } },
      y: { type: 'logarithmic', min: lo, max: hi, ticks: { callback: logTick }, title: { display: true, text: 'emulated (log scale)' } } } },
});
new Chart(document.getElementById('folds'), {
  type: 'bar',
  data: { labels: data.folds.map((f) => f.label + ' (' + f.points + ')'),
    datasets: [{ label: 'median error of the held-out predictions, %', data: data.folds.map((f) => f.medianPercent),
      backgroundColor: data.folds.map((f) => f.medianPercent > 30 ? '#d62728' : f.medianPercent > 15 ? '#ff7f0e' : '#2ca02c') }] },
  options: { indexAxis: 'y', plugins: { title: { display: true, text: 'Leave-one-group-out cross-validation: each group held out, refitted without it, predicted (green up to 15%, orange to 30%, red beyond)' } },
    scales: { x: { min: 0, title: { display: true, text: 'median |error| of the held-out points, %' } }, y: { ticks: { autoSkip: false } } } },
});
`;

export function renderCalibrationReport(data: CalibrationReportData, chartJs: string): string {
  const families = Object.entries(data.families)
    .map(([f, m]) => `${f} ${m.toFixed(1)}%`)
    .join(', ');
  const foldsHeight = 90 + data.folds.length * 20;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>disagg timing model: calibration</title>
<style>${CSS}</style>
</head>
<body>
<h1>Timing model against published measurements</h1>
<p class="verdict">Cross-validated median error ${data.overallPercent.toFixed(1)}% (limit ${data.limitPercent.toFixed(1)}%); by device family: ${escapeHtml(families)}.</p>
<p class="note">Every point is a published measurement with its source (<code>disagg calibrate</code> lists them). Emulated
values are the timing model's device time; nothing here ran on the hardware. Filled points set the factors; hollow
points are compared only.</p>
<div class="chart" style="height: 560px"><canvas id="parity"></canvas></div>
<div class="chart" style="height: ${foldsHeight}px"><canvas id="folds"></canvas></div>
${tableHtml('Fit: stored factors against every fit point', ['stack', 'points', 'fit points', 'median error', 'worst error'], data.fit)}
<p><small>Charts drawn with Chart.js (MIT licence), inlined in this file.</small></p>
<script type="application/json" id="calibration-data">${scriptJson(data)}</script>
<script>${chartJs}</script>
<script>${DRAW}</script>
</body>
</html>
`;
}

/** Writes the page; returns its size in bytes. */
export async function writeCalibrationReport(file: string): Promise<number> {
  const html = renderCalibrationReport(calibrationReportData(), chartJsSource());
  await writeFile(file, html, 'utf8');
  return Buffer.byteLength(html);
}
