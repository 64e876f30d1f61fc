import { describe, expect, it } from 'vitest';
import {
  CALIBRATION_POINTS,
  CALIBRATION_TOLERANCE,
  calibrationTable,
  describeFreeFactors,
  fitEfficiency,
  FITTED_EFFICIENCY,
} from '../../lib/core/emulator';

describe('calibration against published measurements', () => {
  const rows = calibrationTable();

  it.each(rows.map((r) => [r.point.label, r] as const))('%s is within 15%%', (_label, row) => {
    expect(Math.abs(row.error)).toBeLessThanOrEqual(CALIBRATION_TOLERANCE);
  });

  it('covers the points the architecture rests on: trn2 TTFT and TPOT, H100 prefill and decode, CS-3 8B and 70B speed', () => {
    const ids = CALIBRATION_POINTS.map((p) => p.id);
    for (const id of [
      'trn2-70b-ttft',
      'trn2-70b-tpot',
      'h100-l2-prefill-1k',
      'h100-l2-prefill-2k',
      'h100-l2-decode',
      'cs3-8b-speed',
      'cs3-70b-speed',
    ]) {
      expect(ids).toContain(id);
    }
    expect(CALIBRATION_POINTS.every((p) => p.source.length > 20)).toBe(true);
  });

  it('the stored efficiency factors are what the fit produces (within 1%), so they cannot drift from their points', () => {
    const refit = describeFreeFactors(fitEfficiency().efficiency);
    const stored = describeFreeFactors(FITTED_EFFICIENCY);
    for (const [i, factor] of refit.entries()) {
      const s = stored[i]!;
      expect(s.name).toBe(factor.name);
      expect(Math.abs(s.value - factor.value) / factor.value).toBeLessThan(0.01);
    }
  });

  it('a deliberately wrong factor moves the emulated points out of tolerance (the check can fail)', () => {
    const broken = {
      ...FITTED_EFFICIENCY,
      gpu: { ...FITTED_EFFICIENCY.gpu, prefillMfu: 0.2 },
    } as typeof FITTED_EFFICIENCY;
    const worst = Math.max(...calibrationTable(broken).map((r) => Math.abs(r.error)));
    expect(worst).toBeGreaterThan(CALIBRATION_TOLERANCE);
  });
});
