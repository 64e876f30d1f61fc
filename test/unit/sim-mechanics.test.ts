/**
 * The simulator's queueing mechanics: one queue discipline for every pool, chunked prefill on colocated
 * replicas, prefill batching on prefill replicas, per-pool decode batch caps, max_tokens reservations and
 * KV transfers sharing each link's bandwidth.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_COMPUTE,
  DEVICES,
  getModel,
  kvBytesForContext,
  kvTransferTime,
  LINKS,
  parsePool,
  poolBandwidth,
  prefillTime,
} from '../../lib/core/emulator';
import { kvBudgetBytes, kvNeedBytes } from '../../lib/core/engine/batching';
import { shortestQueue } from '../../lib/core/engine/routing';
import {
  jsonSafe,
  parseSystemSpec,
  servingDefaults,
  simulate,
  syntheticWorkload,
  type SimRequest,
  type Workload,
} from '../../lib/core/sim';

const llama70 = getModel('llama-3.3-70b');
const workload = (requests: SimRequest[]): Workload => ({ source: 'test', requests });
const ttft = (t: { firstTokenMs: Float64Array; arrivalMs: Float64Array }, i: number) =>
  t.firstTokenMs[i]! - t.arrivalMs[i]!;

describe('queue discipline', () => {
  it('shortestQueue picks the fewest pending tokens, the lowest index on ties', () => {
    expect(shortestQueue(3, (r) => [500, 100, 100][r]!)).toBe(1);
    expect(shortestQueue(2, () => 0)).toBe(0);
  });

  // A 30k-token prompt and a short one arrive together on two colocated replicas; a second short prompt
  // follows. Bound by request count it would wait behind the long prefill; shared or by tokens it does not.
  const requests: SimRequest[] = [
    { id: 'long', arrivalMs: 0, promptTokens: 30_000, outputTokens: 2 },
    { id: 'short', arrivalMs: 0, promptTokens: 100, outputTokens: 2 },
    { id: 'next', arrivalMs: 0.001, promptTokens: 100, outputTokens: 2 },
  ];
  const longPrefill = prefillTime(llama70, parsePool('h100x8'), [{ newTokens: 30_000, cachedTokens: 0 }]).ms;
  it.each(['shared', 'jsq-tokens'] as const)('%s: a short prompt never waits behind a long prefill', (routing) => {
    const run = simulate(workload(requests), parseSystemSpec('colocated:h100x8*2'), {
      model: llama70,
      routing,
      chunkTokens: 0,
    });
    expect(run.metrics.routing).toBe(routing);
    expect(ttft(run.requests, 2)).toBeLessThan(longPrefill / 4);
    expect(ttft(run.requests, 0)).toBeCloseTo(longPrefill, 6);
  });

  it('jsq-tokens binds a disaggregated prefill to the replica with the fewest pending prompt tokens', () => {
    const run = simulate(workload(requests), parseSystemSpec('disagg:trn2x16*2+cs3x8*1'), {
      model: llama70,
      routing: 'jsq-tokens',
    });
    const trn2Long = prefillTime(llama70, parsePool('trn2x16'), [{ newTokens: 30_000, cachedTokens: 0 }]).ms;
    expect(ttft(run.requests, 2)).toBeLessThan(trn2Long / 4);
  });

  it('refuses an unknown discipline', () => {
    expect(() =>
      simulate(workload(requests), parseSystemSpec('colocated:h100x8'), {
        model: llama70,
        routing: 'random' as 'shared',
      }),
    ).toThrow(/routing must be one of shared, jsq-tokens/);
  });
});

describe('chunked prefill and prefill batching', () => {
  // An answer a few tokens from its end when a 16k-token prompt arrives on the same colocated replica: unchunked,
  // its last tokens wait for the whole prefill; chunked, they ride along the first chunks. (Over a long answer the
  // two come out about even: each chunk pays a prefill pass's fixed cost, which grows with the TP group.)
  const set: SimRequest[] = [
    { id: 'answer', arrivalMs: 0, promptTokens: 200, outputTokens: 12 },
    { id: 'prompt', arrivalMs: 100, promptTokens: 16_000, outputTokens: 2 },
  ];
  const run = (chunkTokens: number) =>
    simulate(workload(set), parseSystemSpec('colocated:h100x8*1'), { model: llama70, chunkTokens }).requests;
  const tpot = (t: ReturnType<typeof run>) => (t.endMs[0]! - t.firstTokenMs[0]!) / 11;

  it('spreads a long prefill over steps, so the running answer stalls less, and the prompt waits longer', () => {
    const whole = run(0);
    const chunked = run(2048);
    const prefillWhole = prefillTime(llama70, parsePool('h100x8'), [{ newTokens: 16_000, cachedTokens: 0 }]).ms;
    // It waits at most for the decode step in progress when it arrives.
    expect(ttft(whole, 1)).toBeGreaterThanOrEqual(prefillWhole);
    expect(ttft(whole, 1)).toBeLessThan(prefillWhole + 20);
    // Eight steps of 2048 - 1 prompt tokens beside the answer's token.
    expect(ttft(chunked, 1)).toBeGreaterThan(prefillWhole);
    expect(tpot(chunked)).toBeLessThan(tpot(whole));
    expect(chunked.endMs[0]! - chunked.firstTokenMs[0]!).toBeLessThan(whole.endMs[0]! - whole.firstTokenMs[0]!);
  });

  it('defaults to vLLM V1 API-server budgets: 8192 tokens and 1024 sequences on an H100, 2048 and 256 elsewhere', () => {
    expect(servingDefaults(parsePool('h100x8'))).toMatchObject({ chunkTokens: 8192, maxSeqs: 1024 });
    expect(servingDefaults(parsePool('a100x8'))).toMatchObject({ chunkTokens: 2048, maxSeqs: 256 });
    expect(servingDefaults(parsePool('trn2x16'))).toMatchObject({ chunkTokens: 2048, maxSeqs: 256 });
  });

  it('batches waiting prompts into one prefill pass within the token budget', () => {
    const four = workload(
      Array.from({ length: 4 }, (_, k) => ({ id: `p${k}`, arrivalMs: 0, promptTokens: 500, outputTokens: 2 })),
    );
    const spec = parseSystemSpec('disagg:trn2x16*1+cs3x8*1');
    const batched = simulate(four, spec, { model: llama70, prefixCache: false });
    // The first arrival starts alone; the three behind it share the next pass (1500 <= 2048 tokens).
    expect(batched.counters.prefillPasses).toBe(2);
    expect(batched.metrics.prefillBatch).toEqual({ mean: 2, budgetTokens: 2048 });
    const pass = prefillTime(
      llama70,
      parsePool('trn2x16'),
      Array.from({ length: 3 }, () => ({ newTokens: 500, cachedTokens: 0 })),
    ).ms;
    const t = batched.requests;
    expect(t.prefillEndMs[3]! - t.prefillStartMs[3]!).toBeCloseTo(pass, 9);
    const single = simulate(four, spec, { model: llama70, prefixCache: false, chunkTokens: 0 });
    expect(single.counters.prefillPasses).toBe(4);
  });
});

describe('decode batch caps and max_tokens', () => {
  const w = workload(
    Array.from({ length: 20 }, (_, k) => ({ id: `r${k}`, arrivalMs: k, promptTokens: 1000, outputTokens: 100 + k })),
  );
  it('caps a pool at its stack default or what its KV memory holds at the median prompt + max_tokens', () => {
    for (const [spec, pool] of [
      ['colocated:h100x8*1', 'h100x8'],
      ['disagg:trn2x16*1+cs3x4*1', 'cs3x4'],
    ] as const) {
      const run = simulate(w, parseSystemSpec(spec), { model: llama70 });
      const byMemory = Math.floor(
        kvBudgetBytes(llama70, parsePool(pool), DEFAULT_COMPUTE) / kvNeedBytes(llama70, 1000, 119, DEFAULT_COMPUTE),
      );
      expect(run.metrics.maxTokens).toBe(119);
      expect(run.metrics.decodeBatch.cap).toBe(Math.min(servingDefaults(parsePool(pool)).maxSeqs, byMemory));
    }
    const fixed = simulate(w, parseSystemSpec('colocated:h100x8*1'), { model: llama70, decodeBatchMax: 8 });
    expect(fixed.metrics.decodeBatch.cap).toBe(8);
    expect(fixed.metrics.decodeBatch.max).toBeLessThanOrEqual(8);
  });

  it('holds the batch cap to the tokens per step, as vLLM requires, and refuses a cap the step cannot hold', () => {
    const run = simulate(w, parseSystemSpec('colocated:h100x8*1'), { model: llama70, chunkTokens: 16 });
    expect(run.metrics.decodeBatch.cap).toBe(16);
    expect(() =>
      simulate(w, parseSystemSpec('colocated:h100x8*1'), { model: llama70, chunkTokens: 16, decodeBatchMax: 32 }),
    ).toThrow(/--chunk-tokens 16 is below the decode batch cap 32/);
  });

  it('cuts answers at --max-tokens and counts them', () => {
    const run = simulate(w, parseSystemSpec('colocated:h100x8*1'), { model: llama70, maxTokens: 110 });
    expect(run.metrics.truncatedAnswers).toBe(9);
    expect(Math.max(...run.requests.outputTokens)).toBe(110);
  });
});

describe('KV transfers share link bandwidth', () => {
  it('two transfers from one prefill pass to one decode replica each take half the link', () => {
    // While a first prompt prefills, two more queue; they share the next pass, so they end together and
    // both cross the same send and receive links at once.
    const three = workload([
      { id: 'x', arrivalMs: 0, promptTokens: 1000, outputTokens: 2 },
      { id: 'a', arrivalMs: 1, promptTokens: 8000, outputTokens: 2 },
      { id: 'b', arrivalMs: 1, promptTokens: 8000, outputTokens: 2 },
    ]);
    const from = parsePool('trn2x16');
    const to = parsePool('cs3x8');
    const spec = parseSystemSpec('disagg:trn2x16*1+cs3x8*1');
    const run = simulate(three, spec, { model: llama70, prefixCache: false, chunkTokens: 16_000 });
    const t = run.requests;
    expect(t.prefillEndMs[1]).toBe(t.prefillEndMs[2]);
    const bytes = kvBytesForContext(llama70, 8000);
    const send = poolBandwidth(from, LINKS[DEVICES.trn2.interLink]);
    const receive = poolBandwidth(to, LINKS[DEVICES.cs3.interLink]);
    const latencyMs = kvTransferTime({ bytes: 0, from, to, layers: 1 }).ms;
    const shared = latencyMs + (bytes / (Math.min(send, receive) / 2)) * 1000;
    for (const i of [1, 2]) expect(t.decodeReadyMs[i]! - t.prefillEndMs[i]!).toBeCloseTo(shared, 6);
    const two = workload(three.requests.slice(1));
    // Alone, a transfer takes what kvTransferTime says.
    const alone = kvTransferTime({ bytes, from, to, layers: llama70.layers }).ms;
    const one = simulate(workload([two.requests[0]!]), spec, { model: llama70, prefixCache: false }).requests;
    expect(one.decodeReadyMs[0]! - one.prefillEndMs[0]!).toBeCloseTo(alone, 6);
    expect(shared).toBeGreaterThan(alone);
  });
});

describe('rejections in every percentile', () => {
  // About 10% rejected at this load with 8 admitted prompts at most.
  const overload = syntheticWorkload({
    ratePerSecond: 15,
    promptTokens: { kind: 'lognormal', mean: 1000, sigma: 0.99 },
    outputTokens: { kind: 'lognormal', mean: 200, sigma: 0.86 },
    requests: 1500,
    seed: 1,
  });
  const run = simulate(overload, parseSystemSpec('colocated:h100x8*1'), {
    model: llama70,
    admission: { maxPrefillQueue: 8, maxDecodeQueue: 8 },
  });
  const m = run.metrics;

  it('count a rejected request as +Infinity, so a tail among them reads "rejected", and as an SLO miss', () => {
    expect(m.rejectedShare).toBeGreaterThan(0.01);
    expect(m.rejectedShare).toBeLessThan(0.5);
    expect(m.rejectedShare).toBeCloseTo(m.rejected / m.requests, 6);
    expect(m.ttftMs.p99).toBe(Infinity);
    expect(m.e2eMs.p99).toBe(Infinity);
    expect(m.completedOnly.ttftMs.p99).toBeLessThan(Infinity);
    expect(m.sloAttainment).toBeLessThanOrEqual(1 - m.rejectedShare + 1e-9);
    const json = jsonSafe(m);
    expect(json.ttftMs.p99).toBe('rejected');
    expect(typeof json.ttftMs.p50).toBe('number');
  });

  it('a percentile below the rejected share is the same as over the completed requests alone', () => {
    // p50 over all requests sits among the completed ones: at most the completed-only p50's neighbour above.
    expect(m.ttftMs.p50!).toBeGreaterThanOrEqual(m.completedOnly.ttftMs.p50!);
  });

  it('admission limits are per system: the same for one replica and for four', () => {
    const four = simulate(overload, parseSystemSpec('colocated:h100x8*4'), {
      model: llama70,
      admission: { maxPrefillQueue: 8, maxDecodeQueue: 8 },
    });
    expect(four.metrics.admission).toEqual(m.admission);
    expect(four.metrics.admission).toEqual({ maxPrefillQueue: 8, maxDecodeQueue: 8 });
    // The earlier rule, per replica, scales with the count.
    const scaled = simulate(overload, parseSystemSpec('colocated:h100x8*4'), {
      model: llama70,
      admissionPerReplica: { maxPrefillQueue: 8, maxDecodeQueue: 8 },
    });
    expect(scaled.metrics.admission.maxPrefillQueue).toBe(32);
  });
});
