import { describe, expect, it } from 'vitest';
import {
  decodeBatchTokenTime,
  decodeStepTime,
  DecodeStepTimer,
  DEFAULT_COMPUTE,
  getModel,
  MODEL_IDS,
  parsePool,
  stackSpeculation,
} from '../../lib/core/emulator';
import { mulberry32 } from '../../lib/core/sim';

describe('DecodeStepTimer (the simulator’s fast path)', () => {
  const pools = ['cs3x4', 'h100x8', 'trn2x16', 'h100x16', 'trn2x32', 'cs3x1'];

  it.each(MODEL_IDS)('gives exactly decodeStepTime’s step for any batch of %s', (id) => {
    const model = getModel(id);
    const random = mulberry32(11);
    for (const spec of pools) {
      const pool = parsePool(spec);
      const timer = new DecodeStepTimer(model, pool);
      for (let trial = 0; trial < 40; trial++) {
        const n = 1 + Math.floor(random() * 64);
        const contexts = Array.from({ length: n }, () => 1 + Math.floor(random() * 20_000));
        const window = timer.window;
        const sum = contexts.reduce((a, b) => a + b, 0);
        const windowed = contexts.reduce((a, c) => a + Math.min(c, window), 0);
        const keys = contexts.reduce((a, c) => a + Math.min(c + 1, window), 0);
        expect(timer.stepMs(n, sum, windowed, keys)).toBe(decodeStepTime(model, pool, contexts).ms);
      }
    }
  });

  it('an empty batch takes no time', () => {
    expect(new DecodeStepTimer(getModel('llama-3.1-8b'), parsePool('h100x1')).stepMs(0, 0)).toBe(0);
  });
});

describe('DecodeStepTimer with speculative decoding', () => {
  it('gives the per-output-token time decodeBatchTokenTime gives (the provider default on cs3x4)', () => {
    const model = getModel('llama-3.3-70b');
    const pool = parsePool('cs3x4');
    const spec = stackSpeculation(model, pool, DEFAULT_COMPUTE);
    expect(spec?.draft.id).toBe('llama-3.2-1b');
    const timer = new DecodeStepTimer(model, pool, DEFAULT_COMPUTE, spec);
    for (const contexts of [[1000], [1200, 5000, 300], Array.from({ length: 32 }, (_, k) => 800 + 37 * k)]) {
      const expected = decodeBatchTokenTime(model, pool, contexts, DEFAULT_COMPUTE, spec);
      const sum = contexts.reduce((a, b) => a + b, 0);
      expect(timer.stepMs(contexts.length, sum)).toBeCloseTo(expected, 9);
      // Speculation makes a token cheaper than a plain step here, and the plain timer agrees with decodeStepTime.
      expect(expected).toBeLessThan(decodeStepTime(model, pool, contexts).ms);
    }
  });
});
