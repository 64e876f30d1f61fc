import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  estimateColocated,
  FITTED_ACCEPTANCE,
  FITTED_BANDS,
  FITTED_FACTORS,
  MODELS,
  STACK_IDS,
  STACKS,
  type FactorTable,
  type HbmFactors,
} from '../../lib/core/emulator';
import {
  calibrationPoints,
  calibrationTable,
  crossValidate,
  CV_MEDIAN_LIMIT,
  CV_FAMILY_MEDIANS,
  CV_OVERALL_MEDIAN,
  errorBands,
  familyMedianErrors,
  factorDrift,
  fitAll,
  overallMedianError,
  STACK_FITS,
  STORED_STATE,
} from '../../lib/core/emulator/calibration';
import { fitStack, respondingPoints } from '../../lib/core/emulator/calibration/fit';

const CALIBRATION_TIMEOUT = 300_000;

describe('calibration data', () => {
  const points = calibrationPoints();

  it('every point names its source and the model predicts a finite, positive value for it', () => {
    for (const p of points) {
      expect(p.source.length, p.id).toBeGreaterThan(20);
      const v = p.predict(STORED_STATE);
      expect(Number.isFinite(v) && v > 0, `${p.id} predicted ${v}`).toBe(true);
    }
  });

  it('every stack has at least as many fit points as free factors, serving points across two parallel degrees and two model sizes', () => {
    for (const fit of STACK_FITS) {
      const all = points.filter((p) => p.stack === fit.stack && p.role === 'fit');
      const serving = all.filter((p) => p.kind === 'serving');
      // Cerebras at launch published two speeds, which fix its two factors exactly (a third is checked);
      // operator and collective profiles pin the GPU stacks' hardware factors.
      expect(all.length, fit.stack).toBeGreaterThanOrEqual(fit.free.length);
      expect(new Set(serving.map((p) => p.degree)).size, `${fit.stack} degrees`).toBeGreaterThanOrEqual(2);
      expect(new Set(serving.map((p) => p.model)).size, `${fit.stack} models`).toBeGreaterThanOrEqual(2);
    }
  });

  it("a stack that runs another stack's factors has check points only, and no factors or fit of its own", () => {
    const derived = STACK_IDS.filter((id) => STACKS[id].factorsOf !== undefined);
    expect(derived).toContain('trtllm-2023');
    for (const id of derived) {
      const own = points.filter((p) => p.stack === id);
      expect(own.length, id).toBeGreaterThan(0);
      expect(own.filter((p) => p.role !== 'check').map((p) => p.id)).toEqual([]);
      expect(FITTED_FACTORS[id], id).toBeUndefined();
      expect(STACK_FITS.some((f) => f.stack === id)).toBe(false);
    }
  });

  it("every row of TensorRT-LLM's peak-throughput tables runs trtllm-2023, the pre-XQA release they were measured on", () => {
    const rows = points.filter((p) => p.source.includes('peak-throughput tables'));
    expect(rows.length).toBeGreaterThan(0);
    expect([...new Set(rows.map((p) => p.stack))]).toEqual(['trtllm-2023']);
  });

  it('every device family is calibrated on measurements of its own', () => {
    const families = new Set(points.filter((p) => p.kind === 'serving').map((p) => STACKS[p.stack].family));
    expect([...families].sort()).toEqual(['gpu', 'neuron', 'wafer']);
  });
});

describe('the stored factors', () => {
  it(
    'are what the fit produces (within 2%), so they cannot drift from their data',
    () => {
      const { state } = fitAll();
      expect(factorDrift(state.factors, FITTED_FACTORS)).toBeLessThan(0.02);
      for (const [key, value] of Object.entries(FITTED_ACCEPTANCE)) {
        expect(Math.abs((state.acceptance[key] as number) - value), key).toBeLessThan(0.02);
      }
    },
    CALIBRATION_TIMEOUT,
  );

  it('fit the serving points: median error within 10% on every stack with more than a handful of points', () => {
    const rows = calibrationTable();
    for (const fit of STACK_FITS) {
      const errors = rows
        .filter((r) => r.point.stack === fit.stack && r.point.kind === 'serving' && r.point.role === 'fit')
        .map((r) => Math.abs(r.error))
        .sort((a, b) => a - b);
      if (errors.length < 5) continue;
      expect(errors[Math.floor(errors.length / 2)], fit.stack).toBeLessThan(0.1);
    }
  });

  it('a deliberately wrong factor pushes the fit out of bounds (the check can fail)', () => {
    const h100 = FITTED_FACTORS['gpu-2025']?.h100 as HbmFactors;
    const broken = {
      ...FITTED_FACTORS,
      'gpu-2025': {
        ...FITTED_FACTORS['gpu-2025'],
        h100: { ...h100, bandwidthEfficiency: h100.bandwidthEfficiency / 3 },
      },
    } as FactorTable;
    const errors = calibrationTable({ ...STORED_STATE, factors: broken })
      .filter((r) => r.point.stack === 'gpu-2025' && r.point.device === 'h100' && r.point.kind === 'serving')
      .map((r) => Math.abs(r.error))
      .sort((a, b) => a - b);
    expect(errors[Math.floor(errors.length / 2)]).toBeGreaterThan(0.1);
  });
});

describe('leave-one-group-out cross-validation', () => {
  it(
    `holds the median error of held-out predictions within ${CV_MEDIAN_LIMIT * 100}%, as stored, with the stored bands`,
    () => {
      const folds = crossValidate();
      const overall = overallMedianError(folds);
      expect(overall).toBeLessThanOrEqual(CV_MEDIAN_LIMIT);
      expect(Math.abs(overall - CV_OVERALL_MEDIAN)).toBeLessThan(0.005);
      const families = familyMedianErrors(folds);
      for (const family of ['gpu', 'neuron', 'wafer'] as const) {
        expect(families[family]).toBeGreaterThan(0);
        expect(Math.abs(families[family] - CV_FAMILY_MEDIANS[family])).toBeLessThan(0.005);
      }
      const bands = errorBands(folds);
      for (const family of ['gpu', 'neuron', 'wafer'] as const) {
        expect(bands[family].calibrated).toBeCloseTo(FITTED_BANDS[family].calibrated, 2);
        expect(bands[family].borrowed).toBeCloseTo(FITTED_BANDS[family].borrowed, 2);
      }
      // Held-out predictions are predictions: each fold's refit never saw the points it is scored on.
      const ran = folds.filter((f) => !f.skipped);
      expect(ran.length).toBeGreaterThan(20);
      for (const fold of ran) expect(fold.predictions.length).toBeGreaterThan(0);
    },
    CALIBRATION_TIMEOUT,
  );
});

describe('which folds can run', () => {
  it(
    'a factor is pinned by the points whose prediction moves with it, and a fold that holds them all out does not run',
    () => {
      const fit = STACK_FITS.find((s) => s.stack === 'cerebras-2025');
      if (!fit) throw new Error('no cerebras-2025 fit');
      const points = calibrationPoints().filter((p) => p.stack === 'cerebras-2025' && p.role === 'fit');
      const responders = respondingPoints(fit, points);
      // Only the two Llama 70B speeds decode with a draft, so only they move with its acceptance.
      const acceptance = fit.free.find((p) => p.target.kind === 'acceptance');
      expect([...(responders.get(acceptance?.name ?? '') ?? [])].sort()).toEqual(
        points
          .filter((p) => p.model.startsWith('llama-3.') && p.model.endsWith('-70b'))
          .map((p) => p.id)
          .sort(),
      );
      expect(responders.get('cs3.layerLatencyUs')?.size).toBe(points.length);
      const folds = crossValidate(undefined, 'cerebras-2025');
      const four = folds.find((f) => f.kind === 'degree' && f.group === '4');
      expect(four?.skipped).toContain('acceptance');
      expect(four?.predictions).toEqual([]);
      // Holding out one 70B model leaves the other to pin the acceptance: that fold runs.
      expect(folds.find((f) => f.kind === 'model' && f.group === 'llama-3.1-70b')?.predictions.length).toBe(1);
    },
    CALIBRATION_TIMEOUT,
  );
});

describe('provider defaults', () => {
  it('Cerebras serving Llama 3.3 70B includes the speculative decoding Cerebras said it uses, and --speculative-draft none removes it', () => {
    const model = MODELS['llama-3.3-70b'];
    const shape = { model, promptTokens: 1000, outputTokens: 500 };
    const served = estimateColocated(shape, { device: 'cs3', count: 4 });
    const plain = estimateColocated({ ...shape, speculative: null }, { device: 'cs3', count: 4 });
    expect(served.speculative?.draft.id).toBe('llama-3.2-1b');
    expect(plain.speculative).toBeNull();
    // Artificial Analysis measured 2,314 tokens/s (a fit point); the model must land near it, and above plain decode.
    expect(Math.abs(served.tokensPerSecond / 2314 - 1)).toBeLessThan(0.15);
    expect(served.tokensPerSecond).toBeGreaterThan(plain.tokensPerSecond * 1.1);
  });
});

describe('the calibration data module', () => {
  it('is what scripts/calibration-data.ts makes of data/calibration/ (regenerate after editing the data)', () => {
    const check = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/calibration-data.ts', '--check'], {
      encoding: 'utf8',
    });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });
});

describe('fit priors', () => {
  // trn2's HBM read efficiency alone, fitted to the 405B per-token point alone, with and without its prior.
  const nxdi = STACK_FITS.find((s) => s.stack === 'nxdi')!;
  const bandwidth = nxdi.free.find((p) => p.name === 'trn2.bandwidthEfficiency')!;
  const point = calibrationPoints().find((p) => p.id === 'nxdi-trn2x16-405b-tpot')!;
  const fitted = (withPrior: boolean): number => {
    const { prior: _prior, ...bare } = bandwidth;
    const fit = { ...nxdi, free: [withPrior ? bandwidth : bare] };
    const state = fitStack(STORED_STATE, fit, [point]);
    return (state.factors.nxdi!.trn2 as HbmFactors).bandwidthEfficiency;
  };

  it('names a value and a reason, and pulls a loosely pinned factor toward the value without overriding the data', () => {
    expect(bandwidth.prior?.value).toBeGreaterThan(0);
    expect(bandwidth.prior?.reason.length).toBeGreaterThan(20);
    const free = fitted(false);
    const held = fitted(true);
    // Without the prior one point and one factor meet exactly; with it the value lies between that and the prior.
    const withoutPrior = { ...STORED_STATE, factors: withFactor(STORED_STATE.factors, free) };
    expect(Math.abs(point.predict(withoutPrior) / point.measured - 1)).toBeLessThan(0.005);
    const [lo, hi] = [Math.min(free, bandwidth.prior!.value), Math.max(free, bandwidth.prior!.value)];
    expect(held).toBeGreaterThan(lo);
    expect(held).toBeLessThan(hi);
    expect(Math.abs(held - free)).toBeGreaterThan(1e-3);
  });
});

function withFactor(table: FactorTable, bandwidthEfficiency: number): FactorTable {
  const trn2 = table.nxdi!.trn2 as HbmFactors;
  return { ...table, nxdi: { ...table.nxdi, trn2: { ...trn2, bandwidthEfficiency } } };
}
