import { describe, expect, it } from 'vitest';
import {
  closestReplicas,
  formatRatio,
  markdownTable,
  ratioRow,
  ratios,
  replicasForUtilisation,
  speedupsHeld,
  type RatioMetrics,
} from '../../lib/core/sim';

const metrics = (ttft: number, tpot: number, e2e: number, e2eP99: number, goodput: number): RatioMetrics => ({
  ttftMs: { p50: ttft, p90: null, p99: null },
  tpotMs: { p50: tpot, p90: null, p99: null },
  e2eMs: { p50: e2e, p90: null, p99: e2eP99 },
  goodputRps: goodput,
});

describe('cost matching', () => {
  it('picks the replica count whose hourly price is closest to the target', () => {
    // Disaggregated $893.96/h against p5.48xlarge at $55.04/h: 16 ($880.64) beats 17 ($935.68).
    expect(closestReplicas(893.96, 55.04)).toBe(16);
    expect(closestReplicas(935, 55.04)).toBe(17);
  });

  it('gives at least one replica, and the cheaper count on a tie', () => {
    expect(closestReplicas(10, 113.93)).toBe(1);
    expect(closestReplicas(150, 100)).toBe(1);
  });

  it('refuses prices that are not positive', () => {
    expect(() => closestReplicas(0, 55)).toThrow(RangeError);
    expect(() => closestReplicas(100, -1)).toThrow(RangeError);
  });

  it('sizes prefill replicas to keep utilisation at or below the target', () => {
    expect(replicasForUtilisation(40_000, 100_000, 0.4)).toBe(1);
    expect(replicasForUtilisation(40_001, 100_000, 0.4)).toBe(2);
    expect(replicasForUtilisation(0, 100_000, 0.4)).toBe(1);
  });
});

describe('ratios (disaggregated / colocated)', () => {
  const disagg = metrics(70, 2.27, 387, 1450, 5.5);
  const colocated = metrics(61.5, 12, 1619, 7312, 5.5);

  it('divides each latency and goodput, disaggregated over colocated', () => {
    const r = ratios(disagg, colocated);
    expect(r.ttftP50).toBeCloseTo(70 / 61.5, 12);
    expect(r.tpotP50).toBeCloseTo(2.27 / 12, 12);
    expect(r.e2eP99).toBeCloseTo(1450 / 7312, 12);
    expect(r.goodput).toBe(1);
  });

  it('is unknown when a percentile is missing or the divisor is 0', () => {
    const r = ratios(metrics(1, 1, 1, 1, 1), {
      ...colocated,
      ttftMs: { p50: null, p90: null, p99: null },
      goodputRps: 0,
    });
    expect(r.ttftP50).toBeNull();
    expect(r.goodput).toBeNull();
  });

  it('says a 5x speedup holds only where colocated is at least 5 times slower', () => {
    expect(speedupsHeld(ratios(disagg, colocated))).toEqual(['TPOT']);
    expect(speedupsHeld(ratios(metrics(10, 1, 100, 100, 1), metrics(50, 5, 499, 100, 1)))).toEqual(['TTFT', 'TPOT']);
  });
});

describe('formatting', () => {
  it('writes latency ratios with the speed factor and goodput ratios plain', () => {
    expect(formatRatio(0.2, 'latency')).toBe('0.20 (5.0x faster)');
    expect(formatRatio(2.33, 'latency')).toBe('2.33 (2.3x slower)');
    expect(formatRatio(1.1, 'goodput')).toBe('1.10');
    expect(formatRatio(null, 'latency')).toBe('-');
  });

  it('writes a markdown table with a separator line and escaped pipes', () => {
    expect(markdownTable(['a', 'b'], [['1', 'x|y']])).toBe('| a | b |\n| --- | --- |\n| 1 | x\\|y |');
  });

  it('lays out a ratio row as the ratio table header orders it', () => {
    const row = ratioRow(
      'Azure',
      'colocated:h100x8*16',
      ratios(metrics(70, 2.27, 387, 1450, 5.5), metrics(61.5, 12, 1619, 7312, 5.5)),
    );
    expect(row).toEqual([
      'Azure',
      'colocated:h100x8*16',
      '1.14 (1.1x slower)',
      '0.19 (5.3x faster)',
      '0.24 (4.2x faster)',
      '0.20 (5.0x faster)',
      '1.00',
      'TPOT',
    ]);
  });
});
