/**
 * `--report FILE.html` for `disagg simulate` and `disagg sweep`: one self-contained page (Chart.js and
 * the data inlined, no network requests) with latency CDFs, goodput against load, sample request
 * timelines and the same tables stdout prints.
 */
import { writeFile } from 'node:fs/promises';
import { chartJsSource, scriptJson } from '../../lib/adapters/chart-js';
import { DEFAULT_COMPUTE, DEVICES, stackFor, type DeviceId } from '../../lib/core/emulator';
import {
  buildReportData,
  meanArrivalRate,
  rateScale,
  simulate,
  workloadShapeLine,
  type Assumption,
  type GoodputPoint,
  type ReportData,
  type ReportInput,
  type SimOptions,
  type SimResult,
  type SystemSpec,
  type Workload,
} from '../../lib/core/sim';
import { bandLines, planTables, type PlanRun } from './plan';
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

const devicesOf = (spec: SystemSpec): DeviceId[] =>
  spec.kind === 'colocated' ? [spec.colocated.pool.device] : [spec.prefill.pool.device, spec.decode.pool.device];

/**
 * The assumptions box: the model, the serving stacks and error band, every device price and whether it is a
 * published price or an assumption, the SLOs, and the workload with its shape.
 */
export function reportAssumptions(
  workload: Workload,
  systems: readonly SystemSpec[],
  options: SimOptions,
  extra: readonly Assumption[] = [],
): Assumption[] {
  const compute = options.compute ?? DEFAULT_COMPUTE;
  const devices = [...new Set(systems.flatMap(devicesOf))].sort();
  const slo = options.slo;
  const prices = devices.map((d): Assumption => {
    const device = DEVICES[d];
    if (d === 'cs3') {
      return options.cs3PricePerHour === undefined
        ? { label: 'CS-3 price', value: 'none given (no public price): costs with CS-3 are n/a', assumed: true }
        : {
            label: 'CS-3 price',
            value: `$${options.cs3PricePerHour.toFixed(2)} per system-hour, given with --cs3-price-per-hour (no public price)`,
            assumed: true,
          };
    }
    if (device.instancePricePerHour === null) return { label: `${d} price`, value: 'no public price', assumed: true };
    return {
      label: `${d} price`,
      value:
        `$${device.instancePricePerHour.toFixed(2)}/h per ${device.instance.name} (${device.instance.devices} devices), AWS on-demand us-east-1` +
        (d === 'trn2' ? '; approximate: AWS sells Trn2 mostly through Capacity Blocks' : ''),
      assumed: d === 'trn2',
    };
  });
  const band =
    compute.band === 'mid'
      ? 'middle (device time as fitted)'
      : `${compute.band} end: device time scaled by the cross-validated error of each device family`;
  return [
    { label: 'Model', value: `${options.model.id}, weights ${compute.weightDtype}, KV ${compute.kvDtype}` },
    {
      label: 'Serving stacks',
      value: devices
        .map((d) => `${d}: ${stackFor(d, compute.stacks).id} (${stackFor(d, compute.stacks).date})`)
        .join(', '),
    },
    { label: 'Timing error band', value: band },
    ...prices,
    ...(slo ? [{ label: 'SLOs', value: `TTFT <= ${slo.ttftMs} ms and TPOT <= ${slo.tpotMs} ms` }] : []),
    ...extra,
    { label: 'Workload', value: workload.source },
    { label: 'Workload shape', value: workloadShapeLine(workload) },
    { label: 'Time', value: EMULATED_NOTE },
  ];
}

/** simulate's one-line answer: which system meets the SLOs for the most requests, and which costs least per token. */
export function simulateVerdict(results: readonly SimResult[]): string {
  const m = results.map((r) => r.metrics);
  if (m.length === 0) return 'No systems ran.';
  const best = [...m].sort((a, b) => b.sloAttainment - a.sloAttainment)[0]!;
  const priced = m.filter((x) => x.costPerMillionOutputTokens !== null);
  const cheapest = [...priced].sort((a, b) => a.costPerMillionOutputTokens! - b.costPerMillionOutputTokens!)[0];
  const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
  return (
    `${best.spec} meets both SLOs for the most requests (${pct(best.sloAttainment)})` +
    (cheapest
      ? `; cheapest per million output tokens: ${cheapest.spec} ($${cheapest.costPerMillionOutputTokens!.toFixed(2)}, ${pct(cheapest.sloAttainment)} within the SLOs).`
      : '; no system has a price (CS-3 needs --cs3-price-per-hour).')
  );
}

/** Report data for `plan`: each family's cheapest system's run, the plan's tables, and every system on the cost chart. */
export function planReportData(run: PlanRun, options: SimOptions): ReportData {
  const r = run.result;
  const results = r.cheapestRuns;
  const { cheapest, frontier } = planTables(r);
  const onFrontier = new Set(r.frontier.map((e) => e.spec));
  return buildReportData({
    title: 'disagg plan',
    verdict: `${r.verdict}${r.verdictFlipsInBand ? ' The verdict flips inside the timing error band.' : ''}`,
    assumptions: reportAssumptions(
      run.workload,
      results.map((x) => x.system),
      options,
      [
        {
          label: 'Target',
          value: `${(r.attainment * 100).toFixed(0)}% of requests meeting both SLOs (rejections count as misses)`,
        },
      ],
    ),
    costPoints: r.evaluated.flatMap((e) =>
      e.dollarsPerHour !== null && e.e2eMs.p99 !== null && Number.isFinite(e.e2eMs.p99)
        ? [
            {
              spec: e.spec,
              dollarsPerHour: e.dollarsPerHour,
              e2eP99Ms: e.e2eMs.p99,
              meetsTarget: e.sloAttainment >= r.attainment,
              onFrontier: onFrontier.has(e.spec),
            },
          ]
        : [],
    ),
    ...common(run.workload, results),
    tables: [
      { caption: 'Cheapest system of each family meeting the target (as printed on stdout)', table: cheapest },
      { caption: 'Cost against p99 end-to-end frontier', table: frontier },
    ],
    notes: [
      ...r.infeasible.map((m) => `${m.family}: ${m.reason}`),
      ...r.alternatives.map((a) => `${a.family} (single device): ${a.reason}`),
      ...bandLines(r),
      ...r.notes,
      `${r.simulations} simulations, ${run.wallSeconds.toFixed(1)} s measured wall time.`,
    ],
  });
}

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
    verdict: simulateVerdict(results),
    assumptions: reportAssumptions(workload, specs, options),
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
  const first = results[0];
  return buildReportData({
    ...common(workload, results),
    title: 'disagg sweep',
    verdict:
      sweep.systems
        .map((x) => `${x.spec}: ${x.maxSustained === null ? 'sustains no step' : `sustains up to ${x.maxSustained}`}`)
        .join('; ') + '.',
    ...(first
      ? {
          assumptions: reportAssumptions(
            workload,
            results.map((x) => x.system),
            {
              model: first.options.model,
              compute: first.options.compute,
              slo: first.options.slo,
              ...(first.options.cs3PricePerHour !== null ? { cs3PricePerHour: first.options.cs3PricePerHour } : {}),
            },
          ),
        }
      : {}),
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

export const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function tableHtml(caption: string, header: readonly string[], rows: readonly (readonly string[])[]): string {
  const head = header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table><caption>${escapeHtml(caption)}</caption><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

export const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; color: #222; max-width: 1200px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5em 0.8em; }
.verdict { font-size: 1.15em; font-weight: 600; background: #e8f4ea; border-left: 4px solid #2ca02c; padding: 0.5em 0.8em; }
.assumptions { border: 1px solid #ccc; background: #fafafa; padding: 0.6em 1em; }
.assumed { color: #a15c00; font-weight: 600; }
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
const sloLine = (x) => ({ label: 'SLO (' + x + ' ms)', data: [{ x, y: 0 }, { x, y: 1 }], showLine: true, pointRadius: 0,
  borderWidth: 2, borderDash: [6, 4], borderColor: '#000', backgroundColor: '#000' });
function cdf(id, key, title, slo) {
  const lines = data.cdf[key].map((s, i) => ({ label: s.spec, data: s.points.map(([x, y]) => ({ x, y })),
    showLine: true, pointRadius: 0, borderWidth: 2, borderColor: colours[i % colours.length], backgroundColor: colours[i % colours.length] }));
  new Chart(document.getElementById(id), {
    type: 'scatter',
    data: { datasets: slo ? [...lines, sloLine(slo)] : lines },
    options: { plugins: { title: { display: true, text: title } },
      scales: { x: { type: 'logarithmic', title: { display: true, text: 'ms (log scale)' }, ticks: { callback: logTick } },
        y: { min: 0, max: 1, title: { display: true, text: 'share of all requests (rejected never finish)' } } } },
  });
}
cdf('cdf-ttft', 'ttftMs', 'Time to first token', data.slo.ttftMs);
cdf('cdf-tpot', 'tpotMs', 'Time per output token', data.slo.tpotMs);
cdf('cdf-e2e', 'e2eMs', 'End-to-end latency');
data.timeseries.forEach((s, k) => {
  const line = (label, values, colour, axis) => ({ label, data: values.map((y, j) => ({ x: s.t[j], y })), showLine: true,
    pointRadius: 0, borderWidth: 2, borderColor: colour, backgroundColor: colour, yAxisID: axis });
  new Chart(document.getElementById('series-' + k), {
    type: 'scatter',
    data: { datasets: [
      line('waiting for prefill', s.prefillQueue, '#b0b0b0', 'depth'),
      line('waiting to join decode', s.decodeQueue, '#9ecae1', 'depth'),
      line('in decode batches, per replica', s.decodeRunningPerReplica, '#1f77b4', 'depth'),
      line('in prefill, per replica', s.prefillRunningPerReplica, '#ff7f0e', 'depth'),
    ] },
    options: { plugins: { title: { display: true, text: s.spec } },
      scales: { x: { title: { display: true, text: 'virtual seconds since the first arrival' } },
        depth: { position: 'left', min: 0, title: { display: true, text: 'requests (time-averaged)' } } } },
  });
});
if (data.costPoints.length > 0) {
  const pts = (f) => data.costPoints.filter(f).map((p) => ({ x: p.dollarsPerHour, y: p.e2eP99Ms, spec: p.spec }));
  const frontier = pts((p) => p.onFrontier).sort((a, b) => a.x - b.x);
  new Chart(document.getElementById('cost'), {
    type: 'scatter',
    data: { datasets: [
      { label: 'meets the target', data: pts((p) => p.meetsTarget && !p.onFrontier), pointRadius: 4, backgroundColor: '#1f77b4' },
      { label: 'misses the target', data: pts((p) => !p.meetsTarget), pointRadius: 3, backgroundColor: '#d62728' },
      { label: 'frontier', data: frontier, showLine: true, pointRadius: 5, borderWidth: 2, borderColor: '#2ca02c', backgroundColor: '#2ca02c' },
    ] },
    options: { plugins: { title: { display: true, text: 'Cost against p99 end-to-end latency' },
      tooltip: { callbacks: { label: (c) => c.raw.spec + ': $' + c.raw.x + '/h, ' + Math.round(c.raw.y) + ' ms' } } },
      scales: { x: { title: { display: true, text: 'USD per hour' } },
        y: { type: 'logarithmic', title: { display: true, text: 'p99 end-to-end ms (log scale)' }, ticks: { callback: logTick } } } },
  });
}
if (data.goodput.series.length > 0) new Chart(document.getElementById('goodput'), {
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
  const money = (v: number | null, digits = 2): string => (v === null ? 'n/a' : `$${v.toFixed(digits)}`);
  const costRows = data.costs.map((c) => [
    c.spec,
    money(c.dollarsPerHour),
    money(c.dollarsPerRequest, 4),
    money(c.dollarsPerMillionOutputTokens),
    c.note ?? '',
  ]);
  const capacityRows = data.capacity.map((c) => [
    c.spec,
    Object.entries(c.utilisation)
      .map(([role, u]) => `${role} ${(u * 100).toFixed(1)}%`)
      .join(', '),
    c.bottleneck,
    `${(c.loadShare * 100).toFixed(1)}%`,
    c.saturatesAtRateScale === null ? '-' : `${c.saturatesAtRateScale}x`,
  ]);
  const totals = data.totals.map((t) => `${t.spec}: ${t.rejected} of ${t.requests} rejected`).join('; ');
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
${data.verdict !== null ? `<p class="verdict">${escapeHtml(data.verdict)}</p>` : ''}
<p class="note">${escapeHtml(EMULATED_NOTE)}</p>
<div class="assumptions"><strong>Assumptions</strong>
<dl>
<dt>Model</dt><dd>${escapeHtml(data.model)}</dd>
<dt>Workload</dt><dd>${escapeHtml(data.workloadSource)} (${data.requests} requests)</dd>
<dt>SLOs</dt><dd>TTFT &le; ${data.slo.ttftMs} ms and TPOT &le; ${data.slo.tpotMs} ms: a request meeting both counts towards goodput; a rejected request meets neither</dd>
${data.assumptions
  .filter((a) => !['Model', 'Workload', 'SLOs', 'Time'].includes(a.label))
  .map(
    (a) =>
      `<dt>${escapeHtml(a.label)}</dt><dd>${escapeHtml(a.value)}${a.assumed ? ' <span class="assumed">(assumed)</span>' : ''}</dd>`,
  )
  .join('\n')}
</dl></div>
${data.tables.map((t) => tableHtml(t.caption, t.table.header, t.table.rows)).join('\n')}
${data.notes.length > 0 ? `<ul>${data.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : ''}
<h2>Cost</h2>
${tableHtml('What each system costs (run length x USD per hour)', ['system', 'USD per hour', 'USD per completed request', 'USD per 1M output tokens', 'note'], costRows)}
${data.costPoints.length > 0 ? '<div class="chart"><canvas id="cost"></canvas></div>' : '<p>No system here has a price, so there is no cost chart.</p>'}
<h2>Load against capacity</h2>
${tableHtml('Busy share of each pool at the recorded load; the busiest pool saturates near the rate multiple shown', ['system', 'utilisation', 'busiest pool', 'load / capacity', 'saturates at about'], capacityRows)}
<h2>Latency distributions</h2>
<p>Cumulative share of all requests at or below each latency, one line per system (at most 500 points a line); rejected
requests never finish, so a curve ends below 1 by the share rejected (${escapeHtml(totals)}). TPOT counts requests with
more than one output token. Dashed lines are the SLOs.</p>
<div class="chart"><canvas id="cdf-ttft"></canvas></div>
<div class="chart"><canvas id="cdf-tpot"></canvas></div>
<div class="chart"><canvas id="cdf-e2e"></canvas></div>
<h2>Queues and pool utilisation over time</h2>
<p>Time-averaged over ${data.timeseries[0]?.t.length ?? 0} equal bins of the run: requests waiting for prefill, handed off and waiting to
join a decode batch, in decode batches (per decode or colocated replica), and in prefill (per prefill or colocated replica;
a batched pass or a prompt prefilled in chunks counts each prompt). Pool utilisation over the whole run is in the table above.</p>
${data.timeseries.map((_, k) => `<div class="chart"><canvas id="series-${k}"></canvas></div>`).join('\n')}
${
  data.goodput.series.length > 0
    ? `<h2>Goodput against load</h2>
<p>${escapeHtml(data.goodput.note)}</p>
<div class="chart"><canvas id="goodput"></canvas></div>
${tableHtml('Goodput per load step', ['system', data.goodput.axis, 'offered req/s', 'goodput req/s', 'SLO attainment'], goodputRows)}`
    : ''
}
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
