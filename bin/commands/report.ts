/**
 * `--report FILE.html` for `disagg simulate` and `disagg sweep`: one self-contained page (Chart.js and
 * the data inlined, no network requests) with latency CDFs, goodput against load, sample request
 * timelines and the same tables stdout prints.
 */
import { writeFile } from 'node:fs/promises';
import { chartJsSource, scriptJson } from '../../lib/adapters/chart-js';
import {
  buildReportData,
  meanArrivalRate,
  rateScale,
  simulate,
  type GoodputPoint,
  type ReportData,
  type ReportInput,
  type SimOptions,
  type SimResult,
  type SystemSpec,
  type Workload,
} from '../../lib/core/sim';
import { simulateNotes, simulateTable } from './simulate';
import { sweepTables, type SweepResult } from './sweep';

export { chartJsSource };

/** Load steps `simulate --report` runs for its goodput chart, as multiples of the workload's arrival rate. */
export const REPORT_RATE_SCALES = [0.5, 1, 1.5, 2, 3] as const;

const EMULATED_NOTE =
  'All times are emulated: device time from the calibrated timing model plus queueing on a virtual clock. ' +
  'Nothing here ran on Trainium, CS-3 or GPU hardware.';

const goodputPoint = (load: number, workload: Workload, result: SimResult): GoodputPoint => ({
  load,
  offeredRps: Math.round(meanArrivalRate(workload) * 1000) / 1000,
  goodputRps: result.metrics.goodputRps,
  sloAttainment: result.metrics.sloAttainment,
});

/** Report data for `simulate`: the runs at 1x, plus a rerun of every system at each REPORT_RATE_SCALES step. */
export function simulateReportData(
  workload: Workload,
  specs: readonly SystemSpec[],
  options: SimOptions,
  results: readonly SimResult[],
): ReportData {
  const series = results.map((result, s) => ({
    spec: result.spec,
    points: REPORT_RATE_SCALES.map((x) => {
      if (x === 1) return goodputPoint(1, workload, result);
      const scaled = rateScale(workload, x);
      return goodputPoint(x, scaled, simulate(scaled, specs[s] as SystemSpec, options));
    }),
  }));
  const first = results[0];
  return buildReportData({
    ...common(workload, results),
    title: 'disagg simulate',
    tables: [{ caption: 'Comparison (as printed on stdout)', table: simulateTable(results) }],
    goodput: {
      axis: "rate scale (x the workload's arrival rate)",
      note:
        `Each system was rerun with arrival times (and agent think times) divided by ${REPORT_RATE_SCALES.join(', ')}; ` +
        `goodput counts requests meeting both SLOs per second. Offered rates are in the table below.`,
      series,
    },
    notes: [
      ...(first ? [`Memory fit checked at a context of ${first.fit.contextTokens} tokens.`] : []),
      ...simulateNotes(results),
    ],
  });
}

/** Report data for `sweep`: goodput from every step; latencies and timelines from one step's runs. */
export function sweepReportData(
  sweep: SweepResult,
  runs: readonly (readonly { workload: Workload; result: SimResult }[])[],
): ReportData {
  // Latency charts show the heaviest step the first system sustains (else the lightest step).
  const steps = sweep.systems[0]?.steps ?? [];
  const sustained = sweep.systems[0]?.maxSustained ?? null;
  const shown = Math.max(
    0,
    steps.findIndex((s) => s.value === sustained),
  );
  const atStep = runs.map((perStep) => perStep[shown]).filter((r) => r !== undefined);
  const results = atStep.map((r) => r.result);
  const workload = atStep[0]?.workload ?? { source: 'none', requests: [] };
  const { summary, detail } = sweepTables(sweep);
  const label = sweep.variable === 'rate' ? 'rate (req/s)' : "rate scale (x the workload's arrival rate)";
  return buildReportData({
    ...common(workload, results),
    title: 'disagg sweep',
    tables: [
      { caption: 'Highest sustained load (as printed on stdout)', table: summary },
      { caption: 'Every step (as printed on stdout)', table: detail },
    ],
    goodput: {
      axis: label,
      note: `The sweep's own steps; a load is sustained when at least ${sweep.target * 100}% of requests meet both SLOs.`,
      series: sweep.systems.map((s, k) => ({
        spec: s.spec,
        points: s.steps.map((step, j) => {
          const run = runs[k]?.[j];
          return run
            ? goodputPoint(step.value, run.workload, run.result)
            : {
                load: step.value,
                offeredRps: step.offeredRps,
                goodputRps: step.goodputRps,
                sloAttainment: step.sloAttainment,
              };
        }),
      })),
    },
    notes: [
      `Latency CDFs and timelines show the step at ${steps[shown]?.value ?? '-'} (${
        sustained === null
          ? 'the lightest step: the first system sustained none'
          : 'the heaviest the first system sustains'
      }).`,
    ],
  });
}

function common(
  workload: Workload,
  results: readonly SimResult[],
): Pick<ReportInput, 'model' | 'workloadSource' | 'requests' | 'slo' | 'results'> {
  const first = results[0];
  return {
    model: first ? first.options.model.id : '-',
    workloadSource: workload.source,
    requests: workload.requests.length,
    slo: first ? first.metrics.slo : { ttftMs: 0, tpotMs: 0 },
    results,
  };
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function tableHtml(caption: string, header: readonly string[], rows: readonly (readonly string[])[]): string {
  const head = header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table><caption>${escapeHtml(caption)}</caption><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; color: #222; max-width: 1200px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5em 0.8em; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2em 1em; } dt { font-weight: 600; } dd { margin: 0; }
table { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; } th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
.chart { position: relative; height: 360px; margin: 1em 0 2em; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 1em; }
`;

// Runs in the page: draws every chart from the inlined JSON with the inlined Chart.js.
const DRAW = `
const data = JSON.parse(document.getElementById('report-data').textContent);
const colours = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
const phaseColours = { queue: '#b0b0b0', prefill: '#ff7f0e', transfer: '#9467bd', 'decode wait': '#9ecae1', decode: '#1f77b4' };
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;
// Label only 1, 2 and 5 x 10^n on log axes: Chart.js's defaults overlap.
const logTick = (v) => { const m = Math.round((v / 10 ** Math.floor(Math.log10(v))) * 1000) / 1000; return [1, 2, 5].includes(m) ? v.toLocaleString('en') : ''; };
function cdf(id, key, title) {
  new Chart(document.getElementById(id), {
    type: 'scatter',
    data: { datasets: data.cdf[key].map((s, i) => ({ label: s.spec, data: s.points.map(([x, y]) => ({ x, y })),
      showLine: true, pointRadius: 0, borderWidth: 2, borderColor: colours[i % colours.length], backgroundColor: colours[i % colours.length] })) },
    options: { plugins: { title: { display: true, text: title } },
      scales: { x: { type: 'logarithmic', title: { display: true, text: 'ms (log scale)' }, ticks: { callback: logTick } },
        y: { min: 0, max: 1, title: { display: true, text: 'share of completed requests' } } } },
  });
}
cdf('cdf-ttft', 'ttftMs', 'Time to first token');
cdf('cdf-tpot', 'tpotMs', 'Time per output token');
cdf('cdf-e2e', 'e2eMs', 'End-to-end latency');
new Chart(document.getElementById('goodput'), {
  type: 'scatter',
  data: { datasets: data.goodput.series.map((s, i) => ({ label: s.spec, data: s.points.map((p) => ({ x: p.load, y: p.goodputRps })),
    showLine: true, pointRadius: 4, borderWidth: 2, borderColor: colours[i % colours.length], backgroundColor: colours[i % colours.length] })) },
  options: { plugins: { title: { display: true, text: 'Goodput against load' } },
    scales: { x: { title: { display: true, text: data.goodput.axis } }, y: { min: 0, title: { display: true, text: 'goodput (req/s meeting both SLOs)' } } } },
});
const slowest = Math.max(1, ...data.timelines.flatMap((t) => t.rows.map((r) => r.e2eMs)));
const step = 10 ** Math.floor(Math.log10(slowest)) / 2;
const longest = Math.ceil(slowest / step) * step;
data.timelines.forEach((t, k) => {
  new Chart(document.getElementById('timeline-' + k), {
    type: 'bar',
    data: { labels: t.rows.map((r) => '#' + r.index + ' (' + r.promptTokens + ' -> ' + r.outputTokens + ' tok)'),
      datasets: data.phases.map((p, j) => ({ label: p, data: t.rows.map((r) => r.segments[j]), backgroundColor: phaseColours[p] })) },
    options: { indexAxis: 'y', plugins: { title: { display: true, text: t.spec } },
      scales: { x: { stacked: true, max: longest, title: { display: true, text: 'ms since arrival (same axis for every system)' } }, y: { stacked: true } } },
  });
});
`;

/** The whole page. `chartJs` is the Chart.js UMD source, inlined as is. */
export function renderReportHtml(data: ReportData, chartJs: string): string {
  const goodputRows = data.goodput.series.flatMap((s) =>
    s.points.map((p) => [
      s.spec,
      String(p.load),
      String(p.offeredRps),
      p.goodputRps.toFixed(3),
      `${(p.sloAttainment * 100).toFixed(1)}%`,
    ]),
  );
  const timelineHeight = (rows: number): number => 80 + rows * 22;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(data.title)}: ${escapeHtml(data.model)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${escapeHtml(data.title)}</h1>
<p class="note">${escapeHtml(EMULATED_NOTE)}</p>
<dl>
<dt>Model</dt><dd>${escapeHtml(data.model)}</dd>
<dt>Workload</dt><dd>${escapeHtml(data.workloadSource)} (${data.requests} requests)</dd>
<dt>SLOs</dt><dd>TTFT &le; ${data.slo.ttftMs} ms and TPOT &le; ${data.slo.tpotMs} ms: a request meeting both counts towards goodput</dd>
</dl>
${data.tables.map((t) => tableHtml(t.caption, t.table.header, t.table.rows)).join('\n')}
${data.notes.length > 0 ? `<ul>${data.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : ''}
<h2>Latency distributions</h2>
<p>Cumulative share of completed requests at or below each latency, one line per system (at most 500 points a line).
TPOT counts requests with more than one output token.</p>
<div class="chart"><canvas id="cdf-ttft"></canvas></div>
<div class="chart"><canvas id="cdf-tpot"></canvas></div>
<div class="chart"><canvas id="cdf-e2e"></canvas></div>
<h2>Goodput against load</h2>
<p>${escapeHtml(data.goodput.note)}</p>
<div class="chart"><canvas id="goodput"></canvas></div>
${tableHtml('Goodput per load step', ['system', data.goodput.axis, 'offered req/s', 'goodput req/s', 'SLO attainment'], goodputRows)}
<h2>Sample request timelines</h2>
<p>The same ${data.timelines[0]?.rows.length ?? 0} requests (spread evenly over those every system completed) in each
system: waiting for prefill, prefill, KV transfer (disaggregated only), waiting to join a decode batch, and decoding to
the last token. The phases add up to each request's end-to-end time.</p>
${data.timelines
  .map(
    (t, k) =>
      `<div class="chart" style="height: ${timelineHeight(t.rows.length)}px"><canvas id="timeline-${k}"></canvas></div>`,
  )
  .join('\n')}
<p><small>Charts drawn with Chart.js (MIT licence), inlined in this file.</small></p>
<script type="application/json" id="report-data">${scriptJson(data)}</script>
<script>${chartJs}</script>
<script>${DRAW}</script>
</body>
</html>
`;
}

/** Writes the page; returns its size in bytes. */
export async function writeReport(file: string, data: ReportData): Promise<number> {
  const html = renderReportHtml(data, chartJsSource());
  await writeFile(file, html, 'utf8');
  return Buffer.byteLength(html);
}
