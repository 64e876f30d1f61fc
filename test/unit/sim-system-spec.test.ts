import { describe, expect, it } from 'vitest';
import { FitError, getModel, ProfileError } from '../../lib/core/emulator';
import { colocatedNextWork, fillBatch } from '../../lib/core/engine/batching';
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

  it('are refused when a replica cannot hold a full decode batch at the workload’s p99 context', () => {
    const workload: Workload = {
      source: 't',
      requests: [{ id: 'a', arrivalMs: 0, promptTokens: 4000, outputTokens: 100 }],
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
    expect((caught as Error).message).toMatch(/does not fit: .*32 x 4100 tokens; cs3x4 holds 158\.4 GB/);
    expect((caught as Error).message).toContain('decode replica of disagg:trn2x16*1+cs3x4*1');
    // Fewer slots fit.
    expect(
      simulate(workload, parseSystemSpec('disagg:trn2x16+cs3x4'), { model, decodeBatchMax: 8 }).metrics.completed,
    ).toBe(1);
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
  it('fills the running batch first in first out up to the limit', () => {
    expect(fillBatch(0, 5, 32)).toBe(5);
    expect(fillBatch(30, 5, 32)).toBe(2);
    expect(fillBatch(32, 5, 32)).toBe(0);
    expect(fillBatch(3, 0, 32)).toBe(0);
  });

  it('a colocated replica prefills first when the batch has room, else decodes', () => {
    expect(colocatedNextWork(1, 4, 32)).toBe('prefill');
    expect(colocatedNextWork(1, 32, 32)).toBe('decode');
    expect(colocatedNextWork(0, 4, 32)).toBe('decode');
    expect(colocatedNextWork(0, 0, 32)).toBe('idle');
  });
});
