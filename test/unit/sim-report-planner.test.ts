import { describe, expect, it } from 'vitest';
import { renderReportHtml, reportAssumptions, simulateReportData } from '../../bin/commands/report';
import { getModel } from '../../lib/core/emulator';
import {
  buildReportData,
  cdfPoints,
  parseSystemSpec,
  simulate,
  syntheticWorkload,
  timeSeries,
  withoutPaths,
  workloadShape,
  type SimOptions,
  type Workload,
} from '../../lib/core/sim';

const options: SimOptions = { model: getModel('llama-3.3-70b'), slo: { ttftMs: 2000, tpotMs: 100 } };
const workload = syntheticWorkload({
  ratePerSecond: 6,
  promptTokens: { kind: 'lognormal', mean: 1500, sigma: 0.99 },
  outputTokens: { kind: 'lognormal', mean: 200, sigma: 0.86 },
  requests: 600,
  seed: 3,
});

describe('CDFs over all requests', () => {
  it('cdfPoints with a total ends at the share that has a value', () => {
    expect(cdfPoints([3, 1, 2], 500, 4).at(-1)).toEqual([3, 0.75]);
    expect(cdfPoints([3, 1, 2]).at(-1)).toEqual([3, 1]);
  });

  it('a run with rejections draws curves that end below 1 by the rejected share', () => {
    // One colocated GPU replica with a queue of 4: most of a 6 req/s load is turned away.
    const small = { ...options, admissionPerReplica: { maxPrefillQueue: 4, maxDecodeQueue: 4 } };
    const result = simulate(workload, parseSystemSpec('colocated:h100x8'), small);
    const m = result.metrics;
    expect(m.rejected).toBeGreaterThan(0);
    const data = buildReportData({
      title: 't',
      model: m.spec,
      workloadSource: workload.source,
      requests: m.requests,
      slo: m.slo,
      results: [result],
      tables: [],
      notes: [],
    });
    const last = data.cdf.e2eMs[0]!.points.at(-1)!;
    expect(last[1]).toBeCloseTo(m.completed / m.requests, 6);
    expect(data.totals[0]).toEqual({ spec: m.spec, requests: m.requests, rejected: m.rejected });
  });
});

describe('report data', () => {
  const specs = [parseSystemSpec('disagg:trn2x16+cs3x8'), parseSystemSpec('colocated:h100x8*2')];
  const priced = { ...options, cs3PricePerHour: 90 };
  const results = specs.map((s) => simulate(workload, s, priced));

  it('time series hold every request-ms of prefill and decode, per replica', () => {
    const result = results[0]!;
    const series = timeSeries(result);
    const t = result.requests;
    let first = Infinity;
    let last = -Infinity;
    let prefill = 0;
    let decode = 0;
    for (let i = 0; i < t.arrivalMs.length; i++) {
      first = Math.min(first, t.arrivalMs[i]!);
      last = Math.max(last, t.endMs[i]!);
      if (t.prefillEndMs[i]! > t.prefillStartMs[i]!) prefill += t.prefillEndMs[i]! - t.prefillStartMs[i]!;
      if (t.endMs[i]! > t.decodeJoinMs[i]!) decode += t.endMs[i]! - t.decodeJoinMs[i]!;
    }
    const binMs = (last - first) / series.t.length;
    const total = (v: readonly number[]): number => v.reduce((a, b) => a + b, 0) * binMs;
    // One prefill replica and one decode replica: the series carry the whole time, to rounding.
    expect(total(series.prefillRunningPerReplica) / prefill).toBeCloseTo(1, 2);
    expect(total(series.decodeRunningPerReplica) / decode).toBeCloseTo(1, 2);
  });

  it('costs per hour, per request and per million output tokens agree with each other', () => {
    const data = simulateReportData(workload, specs, priced, results);
    const c = data.costs[0]!;
    const m = results[0]!.metrics;
    expect(c.dollarsPerHour).toBeCloseTo(46.98 + 8 * 90, 2);
    const total = c.dollarsPerHour! * (m.durationMs / 3_600_000);
    expect(c.dollarsPerRequest!).toBeCloseTo(total / m.completed, 5);
    expect(c.dollarsPerMillionOutputTokens!).toBeCloseTo((total / m.outputTokens) * 1e6, 1);
    const cap = data.capacity[1]!;
    expect(cap.saturatesAtRateScale!).toBeCloseTo(1 / cap.loadShare, 1);
    expect(data.verdict).toMatch(/meets both SLOs for the most requests/);
  });

  it('the assumptions box marks the CS-3 and Trainium prices as assumed and gives the workload shape', () => {
    const list = reportAssumptions(workload, specs, priced);
    const cs3 = list.find((a) => a.label === 'CS-3 price')!;
    expect(cs3.assumed).toBe(true);
    expect(cs3.value).toContain('$90.00 per system-hour');
    expect(list.find((a) => a.label === 'h100 price')!.assumed).toBe(false);
    expect(list.find((a) => a.label === 'Serving stacks')!.value).toMatch(/cs3: cerebras-2025/);
    expect(list.find((a) => a.label === 'Workload shape')!.value).toMatch(/^600 requests over/);
    const html = renderReportHtml(simulateReportData(workload, specs, priced, results), '');
    expect(html).toContain('(assumed)');
    expect(html).toContain('id="cost"');
    expect(html).toContain('id="series-1"');
  });
});

describe('workloadShape', () => {
  it('measures the busiest 10 s window of prompt tokens against the mean', () => {
    // 100 s of one 100-token prompt a second, then 50 prompts within 50 ms: the busiest (t - 10 s, t] window
    // holds the 50 and the 9 one-a-second prompts after 90 s, 5,900 tokens.
    const requests = [
      ...Array.from({ length: 100 }, (_, i) => ({
        id: `a${i}`,
        arrivalMs: i * 1000,
        promptTokens: 100,
        outputTokens: 10,
      })),
      ...Array.from({ length: 50 }, (_, i) => ({
        id: `b${i}`,
        arrivalMs: 100_000 + i,
        promptTokens: 100,
        outputTokens: 10,
      })),
    ];
    const w: Workload = { source: 'test', requests };
    const shape = workloadShape(w);
    const meanPerWindow = (150 * 100) / (shape.spanS / 10);
    expect(shape.peakToMeanPromptTokens!).toBeCloseTo((59 * 100) / meanPerWindow, 6);
    expect(shape.prompt.p50).toBe(100);
  });
});

describe('withoutPaths', () => {
  it('keeps file names, drops directories, leaves rates and ratios alone', () => {
    expect(withoutPaths('/home/me/traces/a.csv, first 9000')).toBe('a.csv, first 9000');
    expect(withoutPaths('samples/b.jsonl, rate x2')).toBe('b.jsonl, rate x2');
    expect(withoutPaths('Poisson 4 req/s, p50/p99')).toBe('Poisson 4 req/s, p50/p99');
  });
});
