import { describe, expect, it } from 'vitest';
import {
  agentWorkload,
  BLOCK_TOKENS,
  contextQuantile,
  limit,
  MAX_AGENT_REQUESTS,
  meanArrivalRate,
  mulberry32,
  rateScale,
  sampleLength,
  syntheticWorkload,
  WorkloadError,
} from '../../lib/core/sim';

describe('synthetic workloads', () => {
  it('are Poisson at the asked rate with lognormal lengths of the asked means', () => {
    const w = syntheticWorkload({
      ratePerSecond: 5,
      promptTokens: { kind: 'lognormal', mean: 1000, sigma: 0.99 },
      outputTokens: { kind: 'lognormal', mean: 200, sigma: 0.86 },
      requests: 20_000,
      seed: 7,
    });
    expect(w.requests).toHaveLength(20_000);
    expect(meanArrivalRate(w)).toBeGreaterThan(4.85);
    expect(meanArrivalRate(w)).toBeLessThan(5.15);
    const meanPrompt = w.requests.reduce((s, r) => s + r.promptTokens, 0) / w.requests.length;
    const meanOutput = w.requests.reduce((s, r) => s + r.outputTokens, 0) / w.requests.length;
    expect(Math.abs(meanPrompt / 1000 - 1)).toBeLessThan(0.05);
    expect(Math.abs(meanOutput / 200 - 1)).toBeLessThan(0.05);
  });

  it('are reproducible from the seed and differ between seeds', () => {
    const make = (seed: number) =>
      syntheticWorkload({
        ratePerSecond: 2,
        promptTokens: { kind: 'fixed', tokens: 10 },
        outputTokens: { kind: 'fixed', tokens: 3 },
        requests: 50,
        seed,
      });
    expect(make(1)).toEqual(make(1));
    expect(make(1).requests[0]!.arrivalMs).not.toBe(make(2).requests[0]!.arrivalMs);
  });

  it('stop at a duration when given one instead of a count', () => {
    const w = syntheticWorkload({
      ratePerSecond: 10,
      promptTokens: { kind: 'fixed', tokens: 1 },
      outputTokens: { kind: 'fixed', tokens: 1 },
      durationMs: 60_000,
      seed: 3,
    });
    expect(w.requests.at(-1)!.arrivalMs).toBeLessThanOrEqual(60_000);
    expect(w.requests.length).toBeGreaterThan(500);
    expect(w.requests.length).toBeLessThan(700);
  });

  it('refuse a non-positive rate or a missing size', () => {
    const fixed = { kind: 'fixed', tokens: 1 } as const;
    expect(() =>
      syntheticWorkload({ ratePerSecond: 0, promptTokens: fixed, outputTokens: fixed, requests: 1, seed: 1 }),
    ).toThrow(WorkloadError);
    expect(() => syntheticWorkload({ ratePerSecond: 1, promptTokens: fixed, outputTokens: fixed, seed: 1 })).toThrow(
      /number of requests or a duration/,
    );
  });

  it('lognormal samples are at least one token', () => {
    const random = mulberry32(1);
    for (let i = 0; i < 1000; i++)
      expect(sampleLength({ kind: 'lognormal', mean: 2, sigma: 3 }, random)).toBeGreaterThanOrEqual(1);
  });
});

describe('agent sessions', () => {
  const w = agentWorkload({
    agents: 3,
    turns: 4,
    initialPromptTokens: { kind: 'fixed', tokens: 1200 },
    outputTokens: { kind: 'fixed', tokens: 100 },
    toolTokens: 300,
    thinkMs: 2000,
    seed: 5,
  });

  it('re-send a context that grows by the output and the tool result each turn', () => {
    const agent0 = w.requests.filter((r) => r.sessionId === 'agent-0');
    expect(agent0.map((r) => r.promptTokens)).toEqual([1200, 1600, 2000, 2400]);
    expect(agent0[0]!.thinkMs).toBeUndefined();
    expect(agent0.slice(1).every((r) => r.thinkMs === 2000)).toBe(true);
  });

  it('keep the ids of full prefix blocks, so a later turn reuses an earlier turn’s KV', () => {
    const [t0, t1, t2] = w.requests.filter((r) => r.sessionId === 'agent-1');
    // 1200 tokens: two full blocks and a partial one; 1600: three full blocks and a partial one.
    expect(t0!.blockHashes).toHaveLength(Math.ceil(1200 / BLOCK_TOKENS));
    expect(t1!.blockHashes!.slice(0, 2)).toEqual(t0!.blockHashes!.slice(0, 2));
    expect(t1!.blockHashes![2]).not.toBe(t0!.blockHashes![2]);
    expect(t2!.blockHashes!.slice(0, 3)).toEqual(t1!.blockHashes!.slice(0, 3));
    const other = w.requests.find((r) => r.sessionId === 'agent-2')!;
    expect(other.blockHashes![0]).not.toBe(t0!.blockHashes![0]);
  });

  it('refuse agents x turns over the limit before building anything, naming the limit', () => {
    const build = (agents: number, turns: number) => () =>
      agentWorkload({
        agents,
        turns,
        initialPromptTokens: { kind: 'fixed', tokens: 1200 },
        outputTokens: { kind: 'fixed', tokens: 100 },
        toolTokens: 300,
        thinkMs: 2000,
        seed: 5,
      });
    expect(build(100_000, 1000)).toThrow(
      'agents x turns is 100,000,000 requests; the limit is 1,000,000 (each turn is a request held in memory)',
    );
    expect(build(MAX_AGENT_REQUESTS + 1, 1)).toThrow(WorkloadError);
    expect(build(MAX_AGENT_REQUESTS / 10, 10)().requests).toHaveLength(MAX_AGENT_REQUESTS);
  });
});

describe('workload transforms', () => {
  const w = syntheticWorkload({
    ratePerSecond: 1,
    promptTokens: { kind: 'fixed', tokens: 5 },
    outputTokens: { kind: 'fixed', tokens: 5 },
    requests: 10,
    seed: 1,
  });

  it('rate scale X > 1 compresses arrival times by 1/X', () => {
    const fast = rateScale(w, 4);
    expect(fast.requests.map((r) => r.arrivalMs)).toEqual(w.requests.map((r) => r.arrivalMs / 4));
    expect(() => rateScale(w, -1)).toThrow(WorkloadError);
  });

  it('limit keeps the first N requests', () => {
    expect(limit(w, 3).requests).toEqual(w.requests.slice(0, 3));
    expect(() => limit(w, 0)).toThrow(WorkloadError);
  });

  it('the fit context is the nearest-rank quantile of prompt + output tokens', () => {
    const mixed = {
      source: 't',
      requests: [1, 2, 3, 4].map((k) => ({ id: `${k}`, arrivalMs: 0, promptTokens: k * 100, outputTokens: 1 })),
    };
    expect(contextQuantile(mixed, 0.5)).toBe(201);
    expect(contextQuantile(mixed, 0.99)).toBe(401);
  });
});
