import { describe, expect, it } from 'vitest';
import {
  checkFit,
  DEVICE_IDS,
  DEVICES,
  estimateColocated,
  estimateDisaggregated,
  expectedTokensPerStep,
  FitError,
  MODEL_IDS,
  MODELS,
  parsePool,
  ProfileError,
  USABLE_MEMORY_FRACTION,
  resolveDraft,
} from '../../lib/core/emulator';

describe('fit check', () => {
  it('refuses Llama 3.1 405B on four CS-3 with the numbers: needed, held, and how many it would take', () => {
    const report = checkFit({
      model: MODELS['llama-3.1-405b'],
      pool: { device: 'cs3', count: 4 },
      weightDtype: 'bf16',
      kvDtype: 'bf16',
      batch: 1,
      contextTokens: 2000,
    });
    expect(report.fits).toBe(false);
    const perDevice = 44e9 * USABLE_MEMORY_FRACTION;
    expect(report.devicesNeeded).toBe(Math.ceil(report.neededBytes / perDevice));
    expect(report.message).toMatch(/llama-3\.1-405b \(BF16\) needs 8\d\d\.\d GB/);
    expect(report.message).toContain('cs3x4 holds 158.4 GB');
    expect(report.message).toContain(`it would take ${report.devicesNeeded} cs3`);
  });

  it('counts the KV of the whole batch: a fitting model stops fitting at a large enough batch', () => {
    const base = {
      model: MODELS['llama-3.1-8b'],
      pool: { device: 'h100', count: 1 } as const,
      weightDtype: 'bf16' as const,
      kvDtype: 'bf16' as const,
      contextTokens: 8000,
    };
    expect(checkFit({ ...base, batch: 1 }).fits).toBe(true);
    expect(checkFit({ ...base, batch: 256 }).fits).toBe(false);
  });

  it.each(MODEL_IDS)(
    '%s: every device (one instance or system) either answers an estimate or refuses with numbers',
    (id) => {
      for (const device of DEVICE_IDS) {
        const pool = parsePool(device);
        expect(pool.count).toBe(DEVICES[device].instance.devices);
        try {
          const e = estimateColocated({ model: MODELS[id], promptTokens: 1000, outputTokens: 100 }, pool);
          expect(e.ttftMs).toBeGreaterThan(0);
          expect(e.tpotMs).toBeGreaterThan(0);
          expect(Number.isFinite(e.e2eMs)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(FitError);
          expect((err as Error).message).toMatch(/needs [\d.]+ GB.*holds [\d.]+ GB.*it would take \d+/);
        }
      }
    },
  );
});

describe('pool specs', () => {
  it('parses DEVxCOUNT and defaults the count to one instance', () => {
    expect(parsePool('trn2x16')).toEqual({ device: 'trn2', count: 16 });
    expect(parsePool('cs3')).toEqual({ device: 'cs3', count: 1 });
    expect(parsePool('h100')).toEqual({ device: 'h100', count: 8 });
  });

  it('rejects unknown devices listing the valid ids, and bad counts', () => {
    expect(() => parsePool('tpu5x8')).toThrow(/unknown device "tpu5".*trn1, trn2, inf2, cs3, a100, h100, h200, b200/);
    expect(() => parsePool('h100x0')).toThrow(ProfileError);
    expect(() => parsePool('h100x')).toThrow(ProfileError);
  });
});

describe('estimates', () => {
  const shape = { model: MODELS['llama-3.3-70b'], promptTokens: 2000, outputTokens: 300 };

  it('disaggregated TTFT = prefill (the prefill side emits the first token); e2e = TTFT + transfer + (n - 1) x TPOT', () => {
    const d = estimateDisaggregated(shape, parsePool('trn2x16'), parsePool('cs3x4'));
    expect(d.ttftMs).toBe(d.prefillMs);
    expect(d.e2eMs).toBeCloseTo(d.ttftMs + d.transferMs + 299 * d.tpotMs, 6);
    expect(d.tokensPerSecond).toBeCloseTo(1000 / d.tpotMs, 6);
  });

  it('CS-3 decode is several times faster per user than colocated H100 for a 70B model', () => {
    const d = estimateDisaggregated(shape, parsePool('trn2x16'), parsePool('cs3x4'));
    const c = estimateColocated(shape, parsePool('h100x8'));
    expect(c.tpotMs / d.tpotMs).toBeGreaterThan(3);
  });

  it('speculative decoding is off on GPU stacks by default and, with a good draft, lowers TPOT on HBM', () => {
    const pool = parsePool('h100x8');
    const plain = estimateColocated(shape, pool);
    expect(plain.speculative).toBeNull();
    const draft = resolveDraft('llama-3.2-1b', shape.model);
    if (!draft) throw new Error('llama-3.2-1b must resolve to a draft');
    const spec = estimateColocated({ ...shape, speculative: { draft, draftTokens: 4, acceptanceRate: 0.8 } }, pool);
    expect(spec.tpotMs).toBeLessThan(plain.tpotMs);
    expect(spec.fit.draftBytes).toBeGreaterThan(0);
  });

  it('refuses drafts that cannot draft for the target: another tokenizer, or not smaller', () => {
    expect(() => resolveDraft('qwen3-32b', shape.model)).toThrow(/tokenizer/);
    expect(() => resolveDraft('llama-3.1-405b', shape.model)).toThrow(/not smaller/);
    expect(() => resolveDraft(shape.model.id, shape.model)).toThrow(/target model itself/);
    expect(resolveDraft('none', shape.model)).toBeNull();
    expect(resolveDraft('eagle', shape.model)?.model.layers).toBe(1);
  });

  it('expected tokens per speculative step follows (1 - a^(k+1)) / (1 - a)', () => {
    expect(expectedTokensPerStep(4, 0.5)).toBeCloseTo((1 - 0.5 ** 5) / 0.5, 12);
    expect(expectedTokensPerStep(3, 1)).toBe(4);
  });
});
