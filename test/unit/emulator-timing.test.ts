import { describe, expect, it } from 'vitest';
import {
  decodeStepTime,
  DEFAULT_COMPUTE,
  DEVICES,
  FITTED_EFFICIENCY,
  kvBytesForContext,
  kvTransferTime,
  LINKS,
  MODELS,
  prefillTime,
  weightBytesRead,
  type HbmEfficiency,
} from '../../lib/core/emulator';

const llama70 = MODELS['llama-3.3-70b'];
const llama8 = MODELS['llama-3.1-8b'];
const trn2x16 = { device: 'trn2', count: 16 } as const;
const cs3x4 = { device: 'cs3', count: 4 } as const;

describe('prefill time', () => {
  it('grows faster than linearly with the prompt because attention grows with context', () => {
    const t1 = prefillTime(llama70, trn2x16, [{ newTokens: 8000, cachedTokens: 0 }]).computeMs;
    const t2 = prefillTime(llama70, trn2x16, [{ newTokens: 16000, cachedTokens: 0 }]).computeMs;
    expect(t2 / t1).toBeGreaterThan(2);
  });

  it('does not recompute a cached prefix, but still attends to it', () => {
    const full = prefillTime(llama70, trn2x16, [{ newTokens: 10_000, cachedTokens: 0 }]);
    const suffix = prefillTime(llama70, trn2x16, [{ newTokens: 1000, cachedTokens: 9000 }]);
    const fresh = prefillTime(llama70, trn2x16, [{ newTokens: 1000, cachedTokens: 0 }]);
    expect(suffix.ms).toBeLessThan(full.ms / 5);
    expect(suffix.flops).toBeGreaterThan(fresh.flops);
  });

  it('a batch of prompts costs the sum of their FLOPs', () => {
    const one = prefillTime(llama8, { device: 'h100', count: 1 }, [{ newTokens: 500, cachedTokens: 0 }]);
    const two = prefillTime(llama8, { device: 'h100', count: 1 }, [
      { newTokens: 500, cachedTokens: 0 },
      { newTokens: 500, cachedTokens: 0 },
    ]);
    expect(two.flops).toBe(2 * one.flops);
  });

  it('pays tensor-parallel collectives on more than one chip, none on one', () => {
    expect(
      prefillTime(llama8, { device: 'h100', count: 1 }, [{ newTokens: 512, cachedTokens: 0 }]).communicationMs,
    ).toBe(0);
    expect(
      prefillTime(llama8, { device: 'h100', count: 8 }, [{ newTokens: 512, cachedTokens: 0 }]).communicationMs,
    ).toBeGreaterThan(0);
  });
});

describe('decode step time', () => {
  it('on one HBM device at batch 1 is the weight read at the fitted bandwidth efficiency (computed by hand)', () => {
    const h100 = DEVICES.h100;
    const eff = FITTED_EFFICIENCY.gpu as HbmEfficiency;
    const bytes = weightBytesRead(llama8, 1, 'bf16') + kvBytesForContext(llama8, 100);
    const expectedMs = (bytes / (h100.memoryBandwidth * eff.decodeBandwidth)) * 1000;
    expect(decodeStepTime(llama8, { device: 'h100', count: 1 }, [100]).ms).toBeCloseTo(expectedMs, 9);
  });

  it('grows with context (more KV to read) and with batch', () => {
    const pool = { device: 'h100', count: 8 } as const;
    expect(decodeStepTime(llama70, pool, [32_000]).ms).toBeGreaterThan(decodeStepTime(llama70, pool, [1000]).ms);
    expect(decodeStepTime(llama70, pool, new Array(64).fill(2000)).ms).toBeGreaterThan(
      decodeStepTime(llama70, pool, [2000]).ms,
    );
  });

  it('batching amortises the weight read: 64 requests cost far less than 64 single steps', () => {
    const pool = { device: 'h100', count: 8 } as const;
    const single = decodeStepTime(llama70, pool, [2000]).ms;
    expect(decodeStepTime(llama70, pool, new Array(64).fill(2000)).ms).toBeLessThan(single * 8);
  });

  it('on CS-3 is bounded by per-layer pipeline latency, not SRAM bandwidth', () => {
    const step = decodeStepTime(llama70, cs3x4, [1000]);
    const pureRooflineMs = ((weightBytesRead(llama70, 1, 'bf16') / DEVICES.cs3.memoryBandwidth) * 1000) / 4;
    expect(step.latencyMs).toBeGreaterThan(step.memoryMs * 0.5);
    expect(step.ms).toBeGreaterThan(100 * pureRooflineMs);
  });

  it('MoE decode reads only the experts the batch routes to', () => {
    const mixtral = MODELS['mixtral-8x7b'];
    const one = weightBytesRead(mixtral, 1, 'bf16');
    const many = weightBytesRead(mixtral, 256, 'bf16');
    expect(one).toBeLessThan(many);
    expect(many).toBeCloseTo(mixtral.layers > 0 ? weightBytesRead(mixtral, 10_000, 'bf16') : 0, -6);
  });
});

describe('KV transfer time', () => {
  const bytes = kvBytesForContext(llama70, 10_000);

  it('is bytes over the slower side plus latency (trn2.48xlarge EFA into four CS-3 systems)', () => {
    const t = kvTransferTime({ bytes, from: trn2x16, to: cs3x4, layers: 80 });
    const bandwidth = Math.min(LINKS['efa-trn2'].bandwidth, 4 * LINKS['cs3-io'].bandwidth);
    expect(t.bandwidth).toBe(bandwidth);
    const latency = Math.max(LINKS['efa-trn2'].latency, LINKS['cs3-io'].latency);
    expect(t.ms).toBeCloseTo((bytes / bandwidth + latency) * 1000, 9);
  });

  it('overlapped with prefill layer by layer, exposes at least one layer and at most the whole transfer', () => {
    const serial = kvTransferTime({ bytes, from: trn2x16, to: cs3x4, layers: 80 });
    const overlapped = kvTransferTime({ bytes, from: trn2x16, to: cs3x4, layers: 80, overlapWithPrefillMs: 500 });
    expect(overlapped.ms).toBeLessThan(serial.ms);
    expect(overlapped.ms).toBeGreaterThanOrEqual(serial.ms / 80);
    const slowPrefill = kvTransferTime({ bytes, from: trn2x16, to: cs3x4, layers: 80, overlapWithPrefillMs: 0 });
    expect(slowPrefill.ms).toBeCloseTo(serial.ms, 9);
  });

  it('a named link overrides the instance networks', () => {
    const tcp = kvTransferTime({ bytes, from: trn2x16, to: cs3x4, layers: 80, link: LINKS['tcp-100g'] });
    const efa = kvTransferTime({ bytes, from: trn2x16, to: cs3x4, layers: 80 });
    expect(tcp.ms).toBeGreaterThan(efa.ms * 10);
  });

  it('uses default compute options without being given them', () => {
    expect(DEFAULT_COMPUTE.weightDtype).toBe('bf16');
  });
});
