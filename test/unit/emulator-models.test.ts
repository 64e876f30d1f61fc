import { describe, expect, it } from 'vitest';
import {
  attentionFlops,
  kvBytesForContext,
  kvBytesPerToken,
  MODEL_IDS,
  MODELS,
  parameterCounts,
  weightBytes,
} from '../../lib/core/emulator';

describe('model profiles', () => {
  it.each(MODEL_IDS)('%s: parameters derived from structure match the published count within 3%%', (id) => {
    const m = MODELS[id];
    const derived = parameterCounts(m).total;
    expect(Math.abs(derived - m.publishedParams) / m.publishedParams).toBeLessThan(0.03);
  });

  // OpenAI's model card counts gpt-oss active parameters without the input embedding (a lookup).
  it.each([
    ['mixtral-8x7b', 12.9e9, true],
    ['gpt-oss-120b', 5.13e9, false],
    ['llama-4-maverick', 17e9, true],
  ] as const)('%s: active parameters match the published %d within 5%%', (id, published, withEmbedding) => {
    const p = parameterCounts(MODELS[id]);
    const active = withEmbedding ? p.active : p.active - p.embedding;
    expect(Math.abs(active - published) / published).toBeLessThan(0.05);
  });

  it('dense models use every parameter for every token', () => {
    const p = parameterCounts(MODELS['llama-3.1-8b']);
    expect(p.active).toBe(p.total);
  });

  it('weight bytes scale with the dtype: FP8 is half of BF16 but for the embedding table and head, kept BF16', () => {
    const m = MODELS['llama-3.3-70b'];
    const vocabParams = m.vocabSize * m.hiddenSize * (m.tiedEmbeddings ? 1 : 2);
    expect(weightBytes(m, 'fp8')).toBeCloseTo((weightBytes(m, 'bf16') - 2 * vocabParams) / 2 + 2 * vocabParams, 0);
    expect(weightBytes(m, 'int8')).toBe(weightBytes(m, 'fp8'));
    expect(weightBytes(m, 'fp32')).toBeCloseTo(2 * weightBytes(m, 'bf16'), 0);
    expect(weightBytes(m, 'bf16') / 1e9).toBeGreaterThan(140);
    expect(weightBytes(m, 'bf16') / 1e9).toBeLessThan(142);
  });

  it('KV bytes per token: 2 (K and V) x layers x KV heads x head dim x 2 bytes for Llama 3.1 70B', () => {
    expect(kvBytesPerToken(MODELS['llama-3.1-70b'])).toBe(2 * 80 * 8 * 128 * 2); // 327,680 bytes
  });

  it('windowed layers cap their KV at the window (gpt-oss: 18 sliding layers of 128 tokens)', () => {
    const m = MODELS['gpt-oss-120b'];
    const perLayerToken = 2 * 8 * 64 * 2;
    expect(kvBytesForContext(m, 100_000)).toBe(perLayerToken * (18 * 100_000 + 18 * 128));
    expect(kvBytesForContext(m, 100)).toBe(perLayerToken * 36 * 100);
  });

  it('attention FLOPs equal a brute-force sum over query positions, windowed layers included', () => {
    for (const id of ['llama-3.1-8b', 'gpt-oss-120b'] as const) {
      const m = MODELS[id];
      const window = m.attentionWindow?.window ?? Infinity;
      const windowed = m.attentionWindow?.layers ?? 0;
      for (const [newTokens, cached] of [
        [1, 0],
        [300, 0],
        [50, 100],
        [7, 500],
      ] as const) {
        let keys = 0;
        let windowKeys = 0;
        for (let pos = cached + 1; pos <= cached + newTokens; pos++) {
          keys += pos;
          windowKeys += Math.min(pos, window);
        }
        const expected = 4 * m.heads * m.headDim * ((m.layers - windowed) * keys + windowed * windowKeys);
        expect(attentionFlops(m, newTokens, cached)).toBe(expected);
      }
    }
  });
});
