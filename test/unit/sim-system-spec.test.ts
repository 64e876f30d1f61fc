import { describe, expect, it } from 'vitest';
import {
  DEFAULT_COMPUTE,
  FitError,
  getModel,
  kvBytesForContext,
  parsePool,
  ProfileError,
  weightBytes,
} from '../../lib/core/emulator';
import {
  colocatedNextWork,
  fillBatch,
  fitsAlone,
  kvBudgetBytes,
  kvNeedBytes,
  TOO_LARGE_FOR_DECODE_MEMORY,
} from '../../lib/core/engine/batching';
import {
  formatSystemSpec,
  parseSystemSpec,
  simulate,
  SystemFitError,
  SystemSpecError,
  type Workload,
} from '../../lib/core/sim';

describe('system specs', () => {
  it('parse colocated and disaggregated systems, replicas defaulting to 1', () => {
    expect(parseSystemSpec('colocated:h100x8*4')).toEqual({
      kind: 'colocated',
      colocated: { pool: { device: 'h100', count: 8 }, replicas: 4 },
    });
    expect(parseSystemSpec('disagg:trn2x16*2+cs3x4')).toEqual({
      kind: 'disaggregated',
      prefill: { pool: { device: 'trn2', count: 16 }, replicas: 2 },
      decode: { pool: { device: 'cs3', count: 4 }, replicas: 1 },
    });
    expect(formatSystemSpec(parseSystemSpec('disagg:trn2x16*2+cs3x4'))).toBe('disagg:trn2x16*2+cs3x4*1');
    // A device without a count is one instance or system's worth.
    expect(formatSystemSpec(parseSystemSpec('colocated:h100'))).toBe('colocated:h100x8*1');
  });

  it.each([
    ['h100x8', /expected colocated:DEVxN/],
    ['hybrid:h100x8', /unknown kind "hybrid"/],
    ['colocated:h100x8+cs3x4', /one pool/],
    ['disagg:trn2x16', /a prefill and a decode pool/],
    ['disagg:trn2x16*0+cs3x4', /bad replica count/],
    ['colocated:tpu9x8', /unknown device "tpu9"/],
    ['colocated:h100x8**2', /bad pool/],
  ])('refuse %s with a message naming what is wrong', (spec, message) => {
    expect(() => parseSystemSpec(spec)).toThrow(message);
    expect(() => parseSystemSpec(spec)).toThrow(ProfileError);
  });

  it('are refused when a replica cannot hold the weights plus one request of the workload’s median size', () => {
    // cs3x4 keeps about 52,800 tokens of Llama 3.3 70B KV beside the weights; the median request is 60,100.
    const workload: Workload = {
      source: 't',
      requests: [
        { id: 'a', arrivalMs: 0, promptTokens: 60_000, outputTokens: 100 },
        { id: 'b', arrivalMs: 0, promptTokens: 60_000, outputTokens: 100 },
        { id: 'c', arrivalMs: 0, promptTokens: 1000, outputTokens: 100 },
      ],
    };
    const model = getModel('llama-3.3-70b');
    let caught: unknown;
    try {
      simulate(workload, parseSystemSpec('disagg:trn2x16+cs3x4'), { model });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SystemFitError);
    expect(caught).toBeInstanceOf(FitError);
    expect((caught as Error).message).toMatch(/does not fit: .*1 x 60100 tokens; cs3x4 holds 158\.4 GB/);
    expect((caught as Error).message).toContain('decode replica of disagg:trn2x16*1+cs3x4*1');
    expect((caught as Error).message).toContain("one request of 60100 tokens (the workload's median prompt + output)");
  });

  it('run a workload whose full batch would not fit: a stated smaller fit context lets it run, rejecting what cannot fit', () => {
    const workload: Workload = {
      source: 't',
      requests: [
        { id: 'a', arrivalMs: 0, promptTokens: 60_000, outputTokens: 100 },
        { id: 'c', arrivalMs: 0, promptTokens: 4000, outputTokens: 100 },
      ],
    };
    const run = simulate(workload, parseSystemSpec('disagg:trn2x16+cs3x4'), {
      model: getModel('llama-3.3-70b'),
      fitContextTokens: 4100,
    });
    expect(run.fit.contextTokens).toBe(4100);
    expect(run.metrics.completed).toBe(1);
    expect(run.metrics.rejectedReasons).toEqual({ [TOO_LARGE_FOR_DECODE_MEMORY]: 1 });
  });

  it('options out of range are refused by name', () => {
    const workload: Workload = {
      source: 't',
      requests: [{ id: 'a', arrivalMs: 0, promptTokens: 10, outputTokens: 1 }],
    };
    expect(() =>
      simulate(workload, parseSystemSpec('colocated:h100x8'), { model: getModel('llama-3.1-8b'), decodeBatchMax: 0 }),
    ).toThrow(SystemSpecError);
    expect(() =>
      simulate(workload, parseSystemSpec('colocated:h100x8'), {
        model: getModel('llama-3.1-8b'),
        slo: { ttftMs: -1, tpotMs: 1 },
      }),
    ).toThrow(/TTFT SLO/);
  });
});

describe('batching policy (shared with the live decode stage)', () => {
  const plenty = { maxBatch: 32, kvBudgetBytes: Infinity };
  const each = (kv: number) => () => kv;

  it('fills the running batch first in first out up to the size limit', () => {
    expect(fillBatch(0, 0, 5, each(1), plenty)).toBe(5);
    expect(fillBatch(30, 0, 5, each(1), plenty)).toBe(2);
    expect(fillBatch(32, 0, 5, each(1), plenty)).toBe(0);
    expect(fillBatch(3, 0, 0, each(1), plenty)).toBe(0);
  });

  it('admits only while the batch’s KV need fits the budget, before the size limit binds', () => {
    const limits = { maxBatch: 32, kvBudgetBytes: 100 };
    expect(fillBatch(0, 0, 5, each(30), limits)).toBe(3);
    expect(fillBatch(2, 60, 5, each(30), limits)).toBe(1);
    expect(fillBatch(2, 80, 5, each(30), limits)).toBe(0);
    // Exactly full is allowed.
    expect(fillBatch(0, 0, 5, each(25), limits)).toBe(4);
  });

  it('is head of line: a small request never joins ahead of an older one that does not fit', () => {
    const needs = [10, 80, 5, 5];
    const limits = { maxBatch: 32, kvBudgetBytes: 100 };
    expect(fillBatch(0, 30, needs.length, (k) => needs[k]!, limits)).toBe(1);
  });

  it('sizes the KV budget as usable memory minus the weights, and the KV need at prompt + output', () => {
    const model = getModel('llama-3.3-70b');
    const budget = kvBudgetBytes(model, parsePool('cs3x4'), DEFAULT_COMPUTE);
    expect(budget).toBeCloseTo(4 * 44e9 * 0.9 - weightBytes(model, 'bf16'), 0);
    // About 52,800 tokens of KV: 17 GB beside 141 GB of weights.
    expect(Math.floor(budget / kvBytesForContext(model, 1))).toBeGreaterThan(52_000);
    expect(Math.floor(budget / kvBytesForContext(model, 1))).toBeLessThan(54_000);
    expect(kvNeedBytes(model, 1000, 200, DEFAULT_COMPUTE)).toBe(kvBytesForContext(model, 1200));
    expect(fitsAlone(kvNeedBytes(model, 50_000, 2000, DEFAULT_COMPUTE), { maxBatch: 1, kvBudgetBytes: budget })).toBe(
      true,
    );
    expect(fitsAlone(kvNeedBytes(model, 60_000, 100, DEFAULT_COMPUTE), { maxBatch: 1, kvBudgetBytes: budget })).toBe(
      false,
    );
    // A pool that cannot hold the weights has no KV budget at all.
    expect(kvBudgetBytes(model, parsePool('cs3x1'), DEFAULT_COMPUTE)).toBe(0);
  });

  it('a colocated replica prefills first when the batch has room and memory for the prompt, else decodes', () => {
    expect(colocatedNextWork(1, 1, 4, 0, plenty)).toBe('prefill');
    expect(colocatedNextWork(1, 1, 32, 0, plenty)).toBe('decode');
    expect(colocatedNextWork(0, 0, 4, 0, plenty)).toBe('decode');
    expect(colocatedNextWork(0, 0, 0, 0, plenty)).toBe('idle');
    const limits = { maxBatch: 32, kvBudgetBytes: 100 };
    expect(colocatedNextWork(1, 50, 4, 60, limits)).toBe('decode');
    expect(colocatedNextWork(1, 40, 4, 60, limits)).toBe('prefill');
  });
});
