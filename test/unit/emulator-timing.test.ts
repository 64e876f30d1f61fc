import { describe, expect, it } from 'vitest';
import {
  DEFAULT_COMPUTE,
  DEVICES,
  decodeStepTime,
  estimateColocated,
  estimateDisaggregated,
  FITTED_FACTORS,
  contextAttentionFlops,
  kvBytesForContext,
  kvTransferTime,
  LINKS,
  MODELS,
  parameterCounts,
  parseStacks,
  DEFAULT_STACKS,
  DecodeStepTimer,
  resolveFactors,
  STACKS,
  stackFor,
  prefillTime,
  weightBytesRead,
  type HbmFactors,
  type WaferFactors,
} from '../../lib/core/emulator';

const llama70 = MODELS['llama-3.3-70b'];
const llama8 = MODELS['llama-3.1-8b'];
const trn2x16 = { device: 'trn2', count: 16 } as const;
const cs3x4 = { device: 'cs3', count: 4 } as const;
const h100 = (count: number) => ({ device: 'h100', count }) as const;

describe('prefill time', () => {
  it('grows faster than linearly with the prompt because attention grows with context', () => {
    const t1 = prefillTime(llama70, trn2x16, [{ newTokens: 8000, cachedTokens: 0 }]).kernelMs;
    const t2 = prefillTime(llama70, trn2x16, [{ newTokens: 16000, cachedTokens: 0 }]).kernelMs;
    expect(t2 / t1).toBeGreaterThan(2);
  });

  it('does not recompute a cached prefix, but still attends to it', () => {
    const full = prefillTime(llama70, trn2x16, [{ newTokens: 10_000, cachedTokens: 0 }]);
    const suffix = prefillTime(llama70, trn2x16, [{ newTokens: 1000, cachedTokens: 9000 }]);
    const fresh = prefillTime(llama70, trn2x16, [{ newTokens: 1000, cachedTokens: 0 }]);
    expect(suffix.ms).toBeLessThan(full.ms / 4);
    expect(suffix.flops).toBeGreaterThan(fresh.flops);
  });

  it('a batch of prompts costs the sum of their FLOPs', () => {
    const one = prefillTime(llama8, h100(1), [{ newTokens: 500, cachedTokens: 0 }]);
    const two = prefillTime(llama8, h100(1), [
      { newTokens: 500, cachedTokens: 0 },
      { newTokens: 500, cachedTokens: 0 },
    ]);
    expect(two.flops).toBe(2 * one.flops);
  });

  it('pays tensor-parallel all-reduces on more than one GPU, none on one', () => {
    expect(prefillTime(llama8, h100(1), [{ newTokens: 512, cachedTokens: 0 }]).communicationMs).toBe(0);
    expect(prefillTime(llama8, h100(8), [{ newTokens: 512, cachedTokens: 0 }]).communicationMs).toBeGreaterThan(0);
  });

  it("a prefill pays the stack's fixed prefill cost however short the prompt", () => {
    const f = FITTED_FACTORS['gpu-2025']?.h100 as HbmFactors;
    const short = prefillTime(llama8, h100(1), [{ newTokens: 16, cachedTokens: 0 }]);
    expect(short.overheadMs).toBeCloseTo(f.prefillOverheadUs / 1000, 9);
    expect(short.ms).toBeGreaterThan(short.overheadMs);
  });
});

describe('decode step time', () => {
  it("on an HBM device cannot beat reading the weights at the device's peak bandwidth", () => {
    const bytes = weightBytesRead(llama8, 1, 'bf16') + kvBytesForContext(llama8, 101);
    const floorMs = (bytes / DEVICES.h100.memoryBandwidth) * 1000;
    const step = decodeStepTime(llama8, h100(1), [100]).ms;
    expect(step).toBeGreaterThan(floorMs);
    expect(step).toBeLessThan(3 * floorMs);
  });

  it('scales with tensor parallelism far less than linearly: fixed costs and all-reduces do not shrink', () => {
    const tp2 = decodeStepTime(llama70, h100(2), [2000]).ms;
    const tp8 = decodeStepTime(llama70, h100(8), [2000]).ms;
    expect(tp2 / tp8).toBeGreaterThan(1.2);
    expect(tp2 / tp8).toBeLessThan(3.5);
  });

  it('grows with context (more KV to read) and with batch', () => {
    const pool = h100(8);
    expect(decodeStepTime(llama70, pool, [32_000]).ms).toBeGreaterThan(decodeStepTime(llama70, pool, [1000]).ms);
    expect(decodeStepTime(llama70, pool, new Array(64).fill(2000)).ms).toBeGreaterThan(
      decodeStepTime(llama70, pool, [2000]).ms,
    );
  });

  it('batching amortises the weight read: 64 requests cost far less than 64 single steps', () => {
    const pool = h100(8);
    const single = decodeStepTime(llama70, pool, [2000]).ms;
    expect(decodeStepTime(llama70, pool, new Array(64).fill(2000)).ms).toBeLessThan(single * 8);
  });

  it('on CS-3 is the walk through the layers: at least layers x the fitted per-layer latency, far above a bandwidth roofline', () => {
    const f = FITTED_FACTORS['cerebras-2025']?.cs3 as WaferFactors;
    const step = decodeStepTime(llama70, cs3x4, [1000]);
    expect(step.ms).toBeGreaterThan((llama70.layers * f.layerLatencyUs) / 1000);
    const rooflineMs = ((weightBytesRead(llama70, 1, 'bf16') / DEVICES.cs3.memoryBandwidth) * 1000) / 4;
    expect(step.ms).toBeGreaterThan(10 * rooflineMs);
  });

  it('MoE decode reads only the experts the batch routes to', () => {
    const mixtral = MODELS['mixtral-8x7b'];
    expect(weightBytesRead(mixtral, 1, 'bf16')).toBeLessThan(weightBytesRead(mixtral, 256, 'bf16'));
  });
});

describe('serving stacks', () => {
  it("the same H100s decode slower under SplitwiseSim's 2023 harness than under an optimised stack", () => {
    const optimised = decodeStepTime(llama70, h100(4), [1000]).ms;
    const harness = decodeStepTime(llama70, h100(4), [1000], {
      ...DEFAULT_COMPUTE,
      stacks: parseStacks('splitwise-2023'),
    }).ms;
    expect(harness).toBeGreaterThan(optimised * 1.3);
  });

  it('Cerebras at launch (Aug 2024) reproduces its published 450 tokens/s on Llama 3.1 70B', () => {
    const launch = estimateColocated(
      {
        model: MODELS['llama-3.1-70b'],
        promptTokens: 1000,
        outputTokens: 500,
        compute: { ...DEFAULT_COMPUTE, stacks: parseStacks('cerebras-2024-08') },
      },
      cs3x4,
    );
    expect(launch.tokensPerSecond).toBeGreaterThan(400);
    expect(launch.tokensPerSecond).toBeLessThan(500);
  });

  it("a device its family's default stack has no data for runs the newest stack that has; chosen stacks run as chosen", () => {
    expect(stackFor('trn1', DEFAULT_STACKS).id).toBe('tnx-2.18');
    expect(stackFor('trn2', DEFAULT_STACKS).id).toBe('nxdi');
    expect(stackFor('h200', DEFAULT_STACKS).id).toBe('gpu-2025');
    expect(stackFor('trn2', parseStacks('tnx-2.18')).id).toBe('tnx-2.18');
  });

  it('two stacks of one family are refused', () => {
    expect(() => parseStacks('gpu-2025,splitwise-2023')).toThrow(/both run gpu devices/);
    expect(() => parseStacks('vllm-9')).toThrow(/valid stacks/);
  });
});

describe('TensorRT-LLM before XQA (trtllm-2023)', () => {
  const fp8 = { ...DEFAULT_COMPUTE, weightDtype: 'fp8', kvDtype: 'fp8' } as const;
  const current = { ...fp8, stacks: parseStacks('gpu-2025') };
  const preXqa = { ...fp8, stacks: parseStacks('trtllm-2023') };
  const contexts = Array.from({ length: 64 }, () => 2048);

  it("runs gpu-2025's fitted factors, so it has none of its own and a 16-bit KV cache's prefill is the same", () => {
    expect(resolveFactors('h100', preXqa).factors).toBe(FITTED_FACTORS['gpu-2025']?.h100);
    expect(resolveFactors('h200', preXqa)).toMatchObject({ source: 'h100', borrowed: true });
    const prompt = [{ newTokens: 2048, cachedTokens: 0 }];
    const model = MODELS['llama-2-70b'];
    const bf16Kv = (o: typeof fp8) => ({ ...o, kvDtype: 'bf16' }) as const;
    expect(prefillTime(model, h100(2), prompt, bf16Kv(preXqa)).ms).toBe(
      prefillTime(model, h100(2), prompt, bf16Kv(current)).ms,
    );
    // Over an FP8 KV cache gpu-2025 runs FP8 context attention; the pre-0.9 releases had no FP8 FMHA.
    expect(prefillTime(model, h100(2), prompt, preXqa).ms).toBeGreaterThan(
      prefillTime(model, h100(2), prompt, current).ms,
    );
  });

  it('decodes a grouped-query model slower by reading its KV cache once per query head instead of once', () => {
    const model = MODELS['llama-2-70b'];
    const pool = h100(2);
    const extraMs =
      decodeStepTime(model, pool, contexts, preXqa).ms - decodeStepTime(model, pool, contexts, current).ms;
    // Each request reads its context plus the new token; (heads / KV heads - 1) more reads over the pool's HBM.
    const kvBytes = contexts.reduce((sum, c) => sum + kvBytesForContext(model, c + 1, 'fp8'), 0);
    const f = FITTED_FACTORS['gpu-2025']?.h100 as HbmFactors;
    const bandwidth = pool.count * DEVICES.h100.memoryBandwidth * f.bandwidthEfficiency;
    const expectedMs = (((model.heads / model.kvHeads - 1) * kvBytes) / bandwidth) * 1000;
    expect(model.heads / model.kvHeads).toBe(8);
    expect(extraMs / expectedMs).toBeCloseTo(1, 6);
  });

  it('decodes a multi-head model exactly as gpu-2025 does, in the estimate and in the simulator alike', () => {
    const model = MODELS['llama-2-7b'];
    expect(model.kvHeads).toBe(model.heads);
    expect(decodeStepTime(model, h100(1), contexts, preXqa).ms).toBe(
      decodeStepTime(model, h100(1), contexts, current).ms,
    );
    const grouped = MODELS['falcon-180b'];
    const pool = h100(8);
    const step = decodeStepTime(grouped, pool, contexts, preXqa).ms;
    const timer = new DecodeStepTimer(grouped, pool, preXqa);
    expect(
      timer.stepMs(
        contexts.length,
        contexts.reduce((a, b) => a + b, 0),
      ),
    ).toBeCloseTo(step, 9);
    expect(step).toBeGreaterThan(decodeStepTime(grouped, pool, contexts, current).ms);
  });
});

describe('FP8 context attention (TensorRT-LLM FP8 context FMHA)', () => {
  const gpu2025 = STACKS['gpu-2025'];
  const prompt = [{ newTokens: 20_000, cachedTokens: 0 }];
  const opts = (kvDtype: 'fp8' | 'bf16', stack = 'gpu-2025') =>
    ({ ...DEFAULT_COMPUTE, weightDtype: 'fp8', kvDtype, stacks: parseStacks(stack) }) as const;

  it('computes prefill attention at the FP8 rate only over an FP8 KV cache, on a device with an FP8 path, on gpu-2025', () => {
    expect(contextAttentionFlops(DEVICES.h100, gpu2025, 'fp8')).toBe(DEVICES.h100.fp8Flops);
    expect(contextAttentionFlops(DEVICES.h100, gpu2025, 'bf16')).toBe(DEVICES.h100.bf16Flops);
    expect(contextAttentionFlops(DEVICES.a100, gpu2025, 'fp8')).toBe(DEVICES.a100.bf16Flops);
    expect(contextAttentionFlops(DEVICES.h100, STACKS['trtllm-2023'], 'fp8')).toBe(DEVICES.h100.bf16Flops);
    expect(contextAttentionFlops(DEVICES.trn2, STACKS.nxdi, 'fp8')).toBe(DEVICES.trn2.bf16Flops);
  });

  it('shortens a long prompt by half its attention compute on H100, and leaves A100 and decode as they were', () => {
    const fast = prefillTime(llama8, h100(1), prompt, opts('fp8')).ms;
    const slow = prefillTime(llama8, h100(1), prompt, opts('fp8', 'trtllm-2023')).ms;
    // The same KV bytes and factors: the difference is the attention FLOPs at half the time per FLOP.
    const f = FITTED_FACTORS['gpu-2025']?.h100 as HbmFactors;
    const causalKeys = (20_000 * 20_001) / 2;
    const flops = 4 * llama8.layers * llama8.heads * llama8.headDim * causalKeys;
    const rate = (peak: number) => peak * f.attentionEfficiency;
    const expectedMs = (flops / rate(DEVICES.h100.bf16Flops) - flops / rate(DEVICES.h100.fp8Flops!)) * 1000;
    expect((slow - fast) / expectedMs).toBeCloseTo(1, 2);
    const a100 = { device: 'a100', count: 1 } as const;
    expect(prefillTime(llama8, a100, prompt, opts('fp8')).ms).toBe(
      prefillTime(llama8, a100, prompt, opts('fp8', 'trtllm-2023')).ms,
    );
    // Decode attention reads the KV cache; its compute stays at the 16-bit rate (a multi-head model reads the same
    // KV bytes on both stacks, so its decode step is the same).
    const mha = MODELS['llama-2-7b'];
    expect(decodeStepTime(mha, h100(1), [4000], opts('fp8')).ms).toBe(
      decodeStepTime(mha, h100(1), [4000], opts('fp8', 'trtllm-2023')).ms,
    );
  });
});

describe('TTFT is the prefill', () => {
  const shape = { model: llama70, promptTokens: 2000, outputTokens: 300 };

  it('colocated: TTFT equals prefill, and end to end adds the remaining output tokens', () => {
    const c = estimateColocated(shape, h100(8));
    expect(c.ttftMs).toBe(c.prefillMs);
    expect(c.e2eMs).toBeCloseTo(c.prefillMs + 299 * c.tpotMs, 6);
  });

  it('disaggregated: the first token leaves with the prefill; the KV transfer delays the second', () => {
    const d = estimateDisaggregated(shape, trn2x16, cs3x4);
    expect(d.ttftMs).toBe(d.prefillMs);
    expect(d.e2eMs).toBeCloseTo(d.prefillMs + d.transferMs + 299 * d.tpotMs, 6);
    const one = estimateDisaggregated({ ...shape, outputTokens: 1 }, trn2x16, cs3x4);
    expect(one.e2eMs).toBe(one.prefillMs);
  });

  it('the error band brackets the estimate: low < mid < high', () => {
    const mid = estimateColocated(shape, h100(8)).tpotMs;
    const low = estimateColocated({ ...shape, compute: { ...DEFAULT_COMPUTE, band: 'low' } }, h100(8)).tpotMs;
    const high = estimateColocated({ ...shape, compute: { ...DEFAULT_COMPUTE, band: 'high' } }, h100(8)).tpotMs;
    expect(low).toBeLessThan(mid);
    expect(high).toBeGreaterThan(mid);
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
});

describe("NxD Inference's MoE dispatch (neuronx-distributed ExpertMLPsV2.forward)", () => {
  const oss = MODELS['gpt-oss-120b'];
  const trn2x4 = { device: 'trn2', count: 4 } as const;
  const nxd = { ...DEFAULT_COMPUTE, weightDtype: 'bf16' } as const;
  // transformers-neuronx on trn2 (borrowed factors) routes MoE as one grouped multiply: the reference here.
  const grouped = { ...nxd, stacks: parseStacks('tnx-2.18') };
  const { expertParams, moeLayers } = parameterCounts(oss);
  const E = oss.moe!.experts;
  const k = oss.moe!.activeExperts;
  /** FLOPs the NxD path runs beyond exact routing, as routed rows of one expert. */
  const extraRows = (nxdFlops: number, groupedFlops: number): number =>
    (nxdFlops - groupedFlops) / (2 * expertParams * moeLayers);

  it('loads selectively when there are fewer routed rows than experts (batch-1 decode, short verification)', () => {
    for (const contexts of [[1000], [1000, 1000, 1000, 1000]]) {
      const a = decodeStepTime(oss, trn2x4, contexts, nxd);
      const b = decodeStepTime(oss, trn2x4, contexts, grouped);
      expect(extraRows(a.flops, b.flops)).toBeCloseTo(0, 6);
    }
    const verify = prefillTime(oss, trn2x4, [{ newTokens: 16, cachedTokens: 1000 }], nxd);
    const verifyGrouped = prefillTime(oss, trn2x4, [{ newTokens: 16, cachedTokens: 1000 }], grouped);
    expect(extraRows(verify.flops, verifyGrouped.flops)).toBeCloseTo(0, 6);
  });

  it('runs every token through every expert in a decode step with at least one routed row per expert', () => {
    const contexts = Array.from({ length: 32 }, () => 1000); // 32 x 4 routed rows = 128 experts
    const a = decodeStepTime(oss, trn2x4, contexts, nxd);
    const b = decodeStepTime(oss, trn2x4, contexts, grouped);
    expect(extraRows(a.flops, b.flops)).toBeCloseTo(32 * E - 32 * k, 3);
  });

  it('runs every expert over a short prompt, and pads a longer one to whole blocks of 512 per expert', () => {
    const short = 64; // 256 routed rows: fewer than a block
    const a = prefillTime(oss, trn2x4, [{ newTokens: short, cachedTokens: 0 }], nxd);
    const b = prefillTime(oss, trn2x4, [{ newTokens: short, cachedTokens: 0 }], grouped);
    expect(extraRows(a.flops, b.flops)).toBeCloseTo(short * E - short * k, 3);

    // 512 tokens route 2,048 rows over (almost surely) all 128 experts: one padded block each, 32x the rows.
    const c = prefillTime(oss, trn2x4, [{ newTokens: 512, cachedTokens: 0 }], nxd);
    const d = prefillTime(oss, trn2x4, [{ newTokens: 512, cachedTokens: 0 }], grouped);
    const touched = E * (1 - Math.pow(1 - k / E, 512));
    expect(extraRows(c.flops, d.flops)).toBeCloseTo(touched * 512 - 512 * k, 0);
    expect(c.ms).toBeGreaterThan(d.ms);

    // 40,960 tokens: 1,280 rows per expert, three blocks each (1,536 rows).
    const long = 40_960;
    const e = prefillTime(oss, trn2x4, [{ newTokens: long, cachedTokens: 0 }], nxd);
    const f = prefillTime(oss, trn2x4, [{ newTokens: long, cachedTokens: 0 }], grouped);
    expect(extraRows(e.flops, f.flops)).toBeCloseTo(E * 3 * 512 - long * k, 0);
  });

  it('leaves dense models alone', () => {
    const a = prefillTime(llama8, trn2x4, [{ newTokens: 2048, cachedTokens: 0 }], nxd);
    const b = prefillTime(llama8, trn2x4, [{ newTokens: 2048, cachedTokens: 0 }], grouped);
    expect(a.flops).toBe(b.flops);
  });
});
