import { describe, expect, it } from 'vitest';
import { chartJsSource, renderReportHtml, simulateReportData } from '../../bin/commands/report';
import { getModel } from '../../lib/core/emulator';
import {
  cdfPoints,
  downsample,
  MAX_CDF_POINTS,
  OUTCOME_COMPLETED,
  parseSystemSpec,
  simulate,
  syntheticWorkload,
  timelineRow,
  type SimOptions,
} from '../../lib/core/sim';

const options: SimOptions = { model: getModel('llama-3.3-70b') };
const specs = [parseSystemSpec('disagg:trn2x16+cs3x8'), parseSystemSpec('colocated:h100x8*2')];
const workload = syntheticWorkload({
  ratePerSecond: 4,
  promptTokens: { kind: 'lognormal', mean: 1000, sigma: 0.99 },
  outputTokens: { kind: 'lognormal', mean: 200, sigma: 0.86 },
  requests: 800,
  seed: 7,
});
const results = specs.map((spec) => simulate(workload, spec, options));

describe('downsample', () => {
  it('keeps at most max items, the first and the last among them, in order', () => {
    const items = Array.from({ length: 10_001 }, (_, i) => i);
    const out = downsample(items, 500);
    expect(out).toHaveLength(500);
    expect(out[0]).toBe(0);
    expect(out.at(-1)).toBe(10_000);
    for (let k = 1; k < out.length; k++) expect(out[k]).toBeGreaterThan(out[k - 1] as number);
  });

  it('returns short inputs whole', () => {
    expect(downsample([3, 1, 2], 5)).toEqual([3, 1, 2]);
  });
});

describe('cdfPoints', () => {
  it('is monotone in both axes and ends at 1, at the largest value', () => {
    const values = Array.from({ length: 5000 }, (_, i) => ((i * 7919) % 5000) / 10);
    const points = cdfPoints(values);
    expect(points.length).toBeLessThanOrEqual(MAX_CDF_POINTS);
    for (let k = 1; k < points.length; k++) {
      expect(points[k]?.[0]).toBeGreaterThan(points[k - 1]?.[0] as number);
      expect(points[k]?.[1]).toBeGreaterThan(points[k - 1]?.[1] as number);
    }
    expect(points.at(-1)).toEqual([499.9, 1]);
  });

  it('counts equal values as one step holding all of them, and ignores NaN', () => {
    expect(cdfPoints([5, 1, 5, NaN, 5])).toEqual([
      [1, 0.25],
      [5, 1],
    ]);
  });

  it('stays within the point bound for every system and latency of a real run', () => {
    const data = simulateReportData(workload, specs, options, results);
    for (const key of ['ttftMs', 'tpotMs', 'e2eMs'] as const) {
      expect(data.cdf[key]).toHaveLength(2);
      for (const line of data.cdf[key]) {
        expect(line.points.length).toBeGreaterThan(1);
        expect(line.points.length).toBeLessThanOrEqual(MAX_CDF_POINTS);
        expect(line.points.at(-1)?.[1]).toBe(1);
      }
    }
  });
});

describe('timelines', () => {
  it('split every completed request into phases that add up to its end-to-end time', () => {
    for (const r of results) {
      let checked = 0;
      for (let i = 0; i < workload.requests.length; i++) {
        if (r.requests.outcome[i] !== OUTCOME_COMPLETED) continue;
        const row = timelineRow(r.requests, i);
        for (const s of row.segments) expect(s).toBeGreaterThanOrEqual(0);
        const sum = row.segments.reduce((a, b) => a + b, 0);
        expect(sum).toBeCloseTo((r.requests.endMs[i] as number) - (r.requests.arrivalMs[i] as number), 6);
        checked += 1;
      }
      expect(checked).toBeGreaterThan(0);
    }
  });

  it('charge a KV transfer only on the disaggregated system', () => {
    const [disagg, colocated] = results.map((r) => timelineRow(r.requests, 0));
    expect(disagg?.segments[2]).toBeGreaterThan(0);
    expect(colocated?.segments[2]).toBe(0);
  });

  it('show the same 20 requests for every system in the report, rounded phases still summing to e2e', () => {
    const data = simulateReportData(workload, specs, options, results);
    expect(data.timelines.map((t) => t.spec)).toEqual(results.map((r) => r.spec));
    const indices = data.timelines.map((t) => t.rows.map((row) => row.index));
    expect(indices[0]).toHaveLength(20);
    expect(indices[1]).toEqual(indices[0]);
    for (const t of data.timelines) {
      for (const row of t.rows) {
        expect(row.segments.reduce((a, b) => a + b, 0)).toBeCloseTo(row.e2eMs, 1);
      }
    }
  });
});

describe('goodput against load (simulate --report)', () => {
  it('reruns each system at 0.5x to 3x, with the 1x point equal to the run itself', () => {
    const data = simulateReportData(workload, specs, options, results);
    for (const [s, series] of data.goodput.series.entries()) {
      expect(series.points.map((p) => p.load)).toEqual([0.5, 1, 1.5, 2, 3]);
      expect(series.points[1]?.goodputRps).toBe(results[s]?.metrics.goodputRps);
      const offered = series.points.map((p) => p.offeredRps);
      for (let k = 1; k < offered.length; k++) expect(offered[k]).toBeGreaterThan(offered[k - 1] as number);
    }
  });
});

describe('the HTML report', () => {
  const chartJs = chartJsSource();
  const html = renderReportHtml(simulateReportData(workload, specs, options, results), chartJs);

  it('inlines Chart.js (its version banner) instead of loading it', () => {
    expect(chartJs).toMatch(/^\/\*!\s*\n \* Chart\.js v4\./);
    expect(html).toContain(chartJs);
    expect(html).not.toMatch(/<script[^>]*\ssrc=/i);
  });

  it('has the three latency CDF canvases, the goodput canvas and one timeline per system', () => {
    for (const id of ['cdf-ttft', 'cdf-tpot', 'cdf-e2e', 'goodput', 'timeline-0', 'timeline-1']) {
      expect(html).toContain(`<canvas id="${id}"></canvas>`);
    }
  });

  it('carries the data as inline JSON that parses back to the report data', () => {
    const match = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
    expect(match).not.toBeNull();
    const data = JSON.parse(match?.[1] as string);
    expect(data.cdf.ttftMs.map((s: { spec: string }) => s.spec)).toEqual([
      'disagg:trn2x16*1+cs3x8*1',
      'colocated:h100x8*2',
    ]);
    expect(data.model).toBe('llama-3.3-70b');
  });

  it('names the workload, the SLOs and the virtual clock, and shows the stdout table', () => {
    expect(html).toContain(workload.source);
    expect(html).toContain('TTFT &le; 2000 ms and TPOT &le; 100 ms');
    expect(html).toMatch(/All times are emulated/);
    expect(html).toContain('<td>TTFT ms p50 / p90 / p99</td>');
  });

  it('makes no network requests: no http(s) URL in any src or href attribute', () => {
    expect(html).not.toMatch(/\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
  });
});
