import { describe, expect, it } from 'vitest';
import { loadTraceFile } from '../../lib/adapters/trace-files';
import {
  decodeBatchTokenTime,
  DEFAULT_COMPUTE,
  getModel,
  kvBytesForContext,
  kvTransferTime,
  parsePool,
  prefillTime,
  stackSpeculation,
} from '../../lib/core/emulator';
import { kvBudgetBytes, TOO_LARGE_FOR_DECODE_MEMORY } from '../../lib/core/engine/batching';
import {
  agentWorkload,
  OUTCOME_COMPLETED,
  OUTCOME_REJECTED,
  parseSystemSpec,
  simulate,
  syntheticWorkload,
  type RequestTimes,
  type SimRequest,
  type Workload,
} from '../../lib/core/sim';

const llama70 = getModel('llama-3.3-70b');
const trn2 = parsePool('trn2x16');
const cs3 = parsePool('cs3x4');
const prefill = (tokens: number, cached = 0): number =>
  prefillTime(llama70, trn2, [{ newTokens: tokens - cached, cachedTokens: cached }]).ms;
const transfer = (tokens: number): number =>
  kvTransferTime({ bytes: kvBytesForContext(llama70, tokens), from: trn2, to: cs3, layers: llama70.layers }).ms;
// Per output token on the decode pool, with the speculative decoding its stack publishes for the model.
const step = (...contexts: number[]): number =>
  decodeBatchTokenTime(llama70, cs3, contexts, DEFAULT_COMPUTE, stackSpeculation(llama70, cs3, DEFAULT_COMPUTE));
const workload = (requests: SimRequest[]): Workload => ({ source: 'test', requests });
const MOONCAKE_SAMPLE = new URL('../../samples/mooncake-fast25-conversation-sample.jsonl', import.meta.url);

const poisson = (rate: number, requests: number, seed = 1): Workload =>
  syntheticWorkload({
    ratePerSecond: rate,
    promptTokens: { kind: 'lognormal', mean: 1000, sigma: 0.99 },
    outputTokens: { kind: 'lognormal', mean: 200, sigma: 0.86 },
    requests,
    seed,
  });

describe('simulator: a small disaggregated scenario computed by hand', () => {
  // A arrives at 0 (1000 prompt tokens, 3 output); B at 10 ms (500, 2) waits for A's prefill.
  const run = simulate(
    workload([
      { id: 'A', arrivalMs: 0, promptTokens: 1000, outputTokens: 3 },
      { id: 'B', arrivalMs: 10, promptTokens: 500, outputTokens: 2 },
    ]),
    parseSystemSpec('disagg:trn2x16*1+cs3x4*1'),
    { model: llama70, prefixCache: false },
  );
  const t = run.requests;
  const ttft = (i: number) => t.firstTokenMs[i]! - t.arrivalMs[i]!;

  it('A: TTFT = prefill (the first token leaves with it); then the KV transfer and one step per later token', () => {
    expect(ttft(0)).toBeCloseTo(prefill(1000), 9);
    expect(t.endMs[0]! - t.firstTokenMs[0]!).toBeCloseTo(transfer(1000) + step(1001) + step(1002), 9);
  });

  it('B: waits in the prefill queue until A’s prefill ends, then its prefill; then transfer + its own step', () => {
    // B's KV arrives after A has left the decode batch, so B decodes alone.
    expect(prefill(500) + transfer(500)).toBeGreaterThan(transfer(1000) + step(1001) + step(1002));
    expect(t.prefillStartMs[1]! - t.arrivalMs[1]!).toBeCloseTo(prefill(1000) - 10, 9);
    expect(ttft(1)).toBeCloseTo(prefill(1000) - 10 + prefill(500), 9);
    expect(t.endMs[1]! - t.firstTokenMs[1]!).toBeCloseTo(transfer(500) + step(501), 9);
    expect(run.metrics.queueWaitMs.prefill.p99).toBeCloseTo(prefill(1000) - 10, 3);
    expect(run.metrics.kvBytesMoved).toBe(kvBytesForContext(llama70, 1000) + kvBytesForContext(llama70, 500));
  });

  it('a request whose KV arrives mid-step joins between steps, and the batch then steps together', () => {
    const r = simulate(
      workload([
        { id: 'long', arrivalMs: 0, promptTokens: 1000, outputTokens: 400 },
        { id: 'late', arrivalMs: 0, promptTokens: 200, outputTokens: 5 },
      ]),
      parseSystemSpec('disagg:trn2x16*1+cs3x4*1'),
      { model: llama70, prefixCache: false },
    ).requests;
    const ready = r.decodeReadyMs[1]!;
    // Replay the long request's steps alone until the one in progress when the KV arrives ends.
    let now = r.decodeJoinMs[0]!;
    let context = 1001;
    while (now < ready) now += step(context++);
    expect(r.decodeJoinMs[1]).toBeCloseTo(now, 6);
    // Its first token left with its prefill; its four later ones come from steps shared with the long one.
    expect(r.firstTokenMs[1]).toBe(r.prefillEndMs[1]);
    for (let j = 0; j < 4; j++) now += step(context + j, 201 + j);
    expect(r.endMs[1]).toBeCloseTo(now, 6);
  });
});

describe('simulator: determinism and conservation', () => {
  const system = parseSystemSpec('disagg:trn2x16*1+cs3x8*1');

  it('the same seed gives an identical result; another seed a different one', () => {
    const a = simulate(poisson(4, 800, 9), system, { model: llama70 }).metrics;
    const b = simulate(poisson(4, 800, 9), system, { model: llama70 }).metrics;
    const c = simulate(poisson(4, 800, 10), system, { model: llama70 }).metrics;
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.stringify(a)).not.toBe(JSON.stringify(c));
  });

  it('every request completes or is rejected with a reason, under overload', () => {
    const run = simulate(poisson(60, 1500), parseSystemSpec('colocated:h100x8*1'), {
      model: llama70,
      admissionPerReplica: { maxPrefillQueue: 8, maxDecodeQueue: 8 },
    });
    const m = run.metrics;
    expect(m.rejected).toBeGreaterThan(0);
    expect(m.completed + m.rejected).toBe(m.requests);
    expect(Object.values(m.rejectedReasons).reduce((a, b) => a + b, 0)).toBe(m.rejected);
    expect(Object.keys(m.rejectedReasons)).toEqual(['prefill queue is full (8 of 8 requests)']);
    for (const outcome of run.requests.outcome) expect([OUTCOME_COMPLETED, OUTCOME_REJECTED]).toContain(outcome);
  });

  it('a request longer than the model’s context is rejected, not run', () => {
    const m = simulate(
      workload([{ id: 'huge', arrivalMs: 0, promptTokens: 131_000, outputTokens: 500 }]),
      parseSystemSpec('colocated:h100x8*1'),
      { model: llama70, decodeBatchMax: 1, fitContextTokens: 1000 },
    ).metrics;
    expect(m.rejectedReasons).toEqual({ "prompt + output tokens exceed the model's 131072-token context": 1 });
  });
});

describe('simulator: steady Poisson load', () => {
  const rate = 3;
  const run = simulate(poisson(rate, 4000, 21), parseSystemSpec('disagg:trn2x16*1+cs3x8*1'), { model: llama70 });
  const t = run.requests;
  const n = t.arrivalMs.length;

  it("obeys Little's law: mean number in system = arrival rate x mean time in system (within 10%)", () => {
    let sojourn = 0;
    for (let i = 0; i < n; i++) sojourn += t.endMs[i]! - t.arrivalMs[i]!;
    const meanTime = sojourn / n;
    // Count requests in the system at 2000 instants spread over the steady middle of the run.
    const from = t.arrivalMs[Math.floor(n * 0.1)]!;
    const to = t.arrivalMs[Math.floor(n * 0.9)]!;
    let inSystem = 0;
    const samples = 2000;
    for (let k = 0; k < samples; k++) {
      const at = from + ((to - from) * (k + 0.5)) / samples;
      for (let i = 0; i < n; i++) if (t.arrivalMs[i]! <= at && at < t.endMs[i]!) inSystem += 1;
    }
    const meanInSystem = inSystem / samples;
    expect(Math.abs(meanInSystem / ((rate * meanTime) / 1000) - 1)).toBeLessThan(0.1);
  });

  it('prefill utilisation = arrival rate x mean prefill time per replica (within 10%)', () => {
    let busy = 0;
    for (let i = 0; i < n; i++) busy += t.prefillEndMs[i]! - t.prefillStartMs[i]!;
    const expected = (rate * (busy / n)) / 1000;
    expect(run.metrics.utilisation.prefill).toBeGreaterThan(0);
    expect(Math.abs(run.metrics.utilisation.prefill! / expected - 1)).toBeLessThan(0.1);
    expect(run.metrics.completed).toBe(n);
    expect(run.metrics.outputTokensPerSecond).toBeGreaterThan(0);
  });
});

describe('simulator: prefill interference', () => {
  // One long answer, while eight 8k-token prompts arrive: colocated prefills stall its batch.
  const requests: SimRequest[] = [
    { id: 'answer', arrivalMs: 0, promptTokens: 100, outputTokens: 500 },
    ...Array.from({ length: 8 }, (_, k) => ({
      id: `prompt-${k}`,
      arrivalMs: 100 + k * 150,
      promptTokens: 8000,
      outputTokens: 1,
    })),
  ];
  const tpotOfAnswer = (spec: string, requestSet: SimRequest[]): number => {
    const r = simulate(workload(requestSet), parseSystemSpec(spec), { model: llama70, decodeBatchMax: 4 }).requests;
    return (r.endMs[0]! - r.firstTokenMs[0]!) / 499;
  };

  it('slows a colocated decode (TPOT up by over 30%) but barely a disaggregated one (under 10%)', () => {
    const alone = [requests[0]!];
    const colocated = tpotOfAnswer('colocated:h100x8*1', requests) / tpotOfAnswer('colocated:h100x8*1', alone);
    const disaggregated =
      tpotOfAnswer('disagg:trn2x16*1+cs3x4*1', requests) / tpotOfAnswer('disagg:trn2x16*1+cs3x4*1', alone);
    expect(colocated).toBeGreaterThan(1.3);
    expect(disaggregated).toBeLessThan(1.1);
  });

  it('conditional disaggregation puts short prompts on a decode replica, which stalls its batch', () => {
    const set: SimRequest[] = [
      { id: 'answer', arrivalMs: 0, promptTokens: 3000, outputTokens: 300 },
      ...Array.from({ length: 20 }, (_, k) => ({
        id: `short-${k}`,
        arrivalMs: 50 + k * 20,
        promptTokens: 1000,
        outputTokens: 1,
      })),
    ];
    const run = (colocateAtOrBelowTokens: number) =>
      simulate(workload(set), parseSystemSpec('disagg:trn2x16*1+cs3x4*1'), {
        model: llama70,
        decodeBatchMax: 4,
        colocateAtOrBelowTokens,
      });
    const split = run(0);
    const conditional = run(2000);
    expect(Array.from(conditional.requests.mode.slice(1))).toEqual(new Array(20).fill(1));
    expect(conditional.metrics.kvBytesMoved).toBe(kvBytesForContext(llama70, 3000));
    const tpot = (r: typeof split) => (r.requests.endMs[0]! - r.requests.firstTokenMs[0]!) / 299;
    expect(tpot(conditional)).toBeGreaterThan(tpot(split));
    const onDecode = prefillTime(llama70, cs3, [{ newTokens: 1000, cachedTokens: 0 }]).ms;
    expect(conditional.requests.prefillEndMs[1]! - conditional.requests.prefillStartMs[1]!).toBeCloseTo(onDecode, 9);
  });
});

describe('simulator: prefix caching', () => {
  it('raises the hit rate and lowers TTFT on the Mooncake conversation sample', async () => {
    // The repository's Mooncake FAST'25 sample (Apache-2.0; Qin et al., FAST 2025): its first 300 requests.
    const w = (await loadTraceFile(MOONCAKE_SAMPLE)).workload;
    const system = parseSystemSpec('disagg:trn2x16*4+cs3x8*2');
    const options = { model: llama70, fitContextTokens: 8192 };
    const cached = simulate(w, system, options).metrics;
    const uncached = simulate(w, system, { ...options, prefixCache: false }).metrics;
    expect(uncached.prefixCacheHitRate).toBe(0);
    // The most any cache could hit: each prompt's leading blocks some earlier prompt sent (8.1% of the
    // sample's prompt tokens); four replicas' caches each see a quarter of the traffic, so less: routing by
    // load alone would find the earlier prompt's replica about one time in four, and the cache must beat that.
    const seen = new Set<number>();
    let reusable = 0;
    for (const r of w.requests) {
      const k = r.blockHashes!.findIndex((h) => !seen.has(h));
      reusable += Math.min((k === -1 ? r.blockHashes!.length : k) * 512, r.promptTokens - 1);
      for (const h of r.blockHashes!) seen.add(h);
    }
    const ideal = reusable / w.requests.reduce((sum, r) => sum + r.promptTokens, 0);
    expect(ideal).toBeCloseTo(0.081, 3);
    expect(cached.prefixCacheHitRate).toBeLessThanOrEqual(ideal);
    expect(cached.prefixCacheHitRate).toBeGreaterThan(ideal / 4);
    expect(cached.ttftMs.p50!).toBeLessThan(uncached.ttftMs.p50!);
  });

  it('a repeated prompt hits all but its last token, and the prefill charges only the rest', () => {
    const hashes = [1, 2, 3, 4];
    const r = simulate(
      workload([
        { id: 'first', arrivalMs: 0, promptTokens: 2048, outputTokens: 1, blockHashes: hashes },
        { id: 'again', arrivalMs: 5000, promptTokens: 2048, outputTokens: 1, blockHashes: hashes },
      ]),
      parseSystemSpec('disagg:trn2x16*1+cs3x8*1'),
      { model: llama70 },
    ).requests;
    expect(Array.from(r.cachedTokens)).toEqual([0, 2047]);
    expect(r.prefillEndMs[1]! - r.prefillStartMs[1]!).toBeCloseTo(prefill(2048, 2047), 9);
  });
});

describe('simulator: agent sessions', () => {
  it('send each turn a think time after the previous one completes, reusing the session’s prefix', () => {
    const w = agentWorkload({
      agents: 4,
      turns: 5,
      initialPromptTokens: { kind: 'fixed', tokens: 3000 },
      outputTokens: { kind: 'fixed', tokens: 100 },
      toolTokens: 300,
      thinkMs: 1500,
      seed: 2,
    });
    const run = simulate(w, parseSystemSpec('disagg:trn2x16*1+cs3x8*1'), { model: llama70 });
    const t = run.requests;
    for (let i = 1; i < w.requests.length; i++) {
      if (w.requests[i]!.sessionId !== w.requests[i - 1]!.sessionId) continue;
      expect(t.arrivalMs[i]).toBeCloseTo(t.endMs[i - 1]! + 1500, 9);
    }
    expect(run.metrics.completed).toBe(20);
    expect(run.metrics.prefixCacheHitRate).toBeGreaterThan(0.5);
  });

  it('end a session’s later turns as rejected when a turn is rejected', () => {
    const w = agentWorkload({
      agents: 40,
      turns: 3,
      initialPromptTokens: { kind: 'fixed', tokens: 4000 },
      outputTokens: { kind: 'fixed', tokens: 50 },
      toolTokens: 100,
      thinkMs: 10,
      startSpreadMs: 1,
      seed: 4,
    });
    const m = simulate(w, parseSystemSpec('disagg:trn2x16*1+cs3x8*1'), {
      model: llama70,
      admissionPerReplica: { maxPrefillQueue: 5, maxDecodeQueue: 100 },
    }).metrics;
    expect(m.rejectedReasons['an earlier turn of its session was rejected']).toBe(
      2 * m.rejectedReasons['prefill queue is full (5 of 5 requests)']!,
    );
    expect(m.completed + m.rejected).toBe(120);
  });
});

describe('simulator: cost', () => {
  it('is null with the reason when a CS-3 price is missing, and priced per device-hour when given', () => {
    const w = poisson(2, 200);
    const system = parseSystemSpec('disagg:trn2x16*1+cs3x8*1');
    const free = simulate(w, system, { model: llama70 }).metrics;
    expect(free.costPerMillionOutputTokens).toBeNull();
    expect(free.costNote).toMatch(/--cs3-price-per-hour/);
    const priced = simulate(w, system, { model: llama70, cs3PricePerHour: 50 }).metrics;
    // trn2.48xlarge at $46.98/h plus 8 CS-3 at $50/h, for the run's duration.
    const usd = ((46.98 + 8 * 50) * priced.durationMs) / 3_600_000;
    expect(priced.costPerMillionOutputTokens).toBeCloseTo((usd / priced.outputTokens) * 1e6, 2);
  });
});

describe('simulator: memory-aware decode batching', () => {
  /** Largest sum of KV need (at final context) over requests decoding at one instant: leaving frees before joining. */
  const peakKv = (t: RequestTimes): { bytes: number; requests: number } => {
    const events: [number, number, number][] = [];
    for (let i = 0; i < t.arrivalMs.length; i++) {
      if (t.outcome[i] !== OUTCOME_COMPLETED) continue;
      const kv = kvBytesForContext(llama70, t.promptTokens[i]! + t.outputTokens[i]!);
      events.push([t.decodeJoinMs[i]!, 1, kv], [t.endMs[i]!, -1, kv]);
    }
    events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let bytes = 0;
    let requests = 0;
    const peak = { bytes: 0, requests: 0 };
    for (const [, sign, kv] of events) {
      bytes += sign * kv;
      requests += sign;
      peak.bytes = Math.max(peak.bytes, bytes);
      peak.requests = Math.max(peak.requests, requests);
    }
    return peak;
  };
  const budget = (pool: string) => kvBudgetBytes(llama70, parsePool(pool), DEFAULT_COMPUTE);

  it('limits a batch by KV memory before the size limit: cs3x4 runs two 25k-token requests at once, cs3x8 all six', () => {
    // 20k prompt + 5k output = 25k tokens of KV each; cs3x4 holds about 52.8k beside the weights.
    const six = workload(
      Array.from({ length: 6 }, (_, k) => ({
        id: `long-${k}`,
        arrivalMs: 0,
        promptTokens: 20_000,
        outputTokens: 5000,
      })),
    );
    const small = simulate(six, parseSystemSpec('disagg:trn2x16*6+cs3x4*1'), { model: llama70 });
    const large = simulate(six, parseSystemSpec('disagg:trn2x16*6+cs3x8*1'), { model: llama70 });
    expect(small.metrics.completed).toBe(6);
    expect(small.metrics.decodeBatch.max).toBe(2);
    expect(peakKv(small.requests)).toEqual({ bytes: 2 * kvBytesForContext(llama70, 25_000), requests: 2 });
    expect(peakKv(small.requests).bytes).toBeLessThanOrEqual(budget('cs3x4'));
    expect(large.metrics.decodeBatch.max).toBe(6);
    // The third joins the moment the first to finish leaves, not before.
    const t = small.requests;
    const joins = Array.from(t.decodeJoinMs).sort((a, b) => a - b);
    const firstEnd = Math.min(...Array.from(t.endMs));
    expect(joins[2]).toBe(firstEnd);
    expect(small.metrics.queueWaitMs.decode!.p99!).toBeGreaterThan(large.metrics.queueWaitMs.decode!.p99!);
  });

  it('limits a colocated replica’s batch the same way: no prefill starts whose KV would not fit', () => {
    // h100x2 (2 x 81,559 MiB, 90% usable) holds about 39,000 tokens of KV beside Llama 3.3 70B: two
    // 15,300-token requests, not three.
    const four = workload(
      Array.from({ length: 4 }, (_, k) => ({ id: `r-${k}`, arrivalMs: 0, promptTokens: 15_000, outputTokens: 300 })),
    );
    const run = simulate(four, parseSystemSpec('colocated:h100x2*1'), { model: llama70 });
    expect(run.metrics.completed).toBe(4);
    expect(run.metrics.decodeBatch.max).toBe(2);
    expect(peakKv(run.requests).bytes).toBeLessThanOrEqual(budget('h100x2'));
    const t = run.requests;
    const thirdPrefill = Array.from(t.prefillStartMs).sort((a, b) => a - b)[2]!;
    expect(thirdPrefill).toBe(Math.min(...Array.from(t.endMs)));
  });

  it.each([
    ['disagg:trn2x16*1+cs3x4*1', 60_000],
    ['colocated:h100x2*1', 45_000],
  ])(
    '%s rejects a request whose own KV exceeds the replica’s budget, before prefill, and runs the rest',
    (spec, prompt) => {
      const run = simulate(
        workload([
          { id: 'small', arrivalMs: 0, promptTokens: 1000, outputTokens: 100 },
          { id: 'huge', arrivalMs: 5, promptTokens: prompt, outputTokens: 100 },
          { id: 'after', arrivalMs: 10, promptTokens: 1000, outputTokens: 100 },
        ]),
        parseSystemSpec(spec),
        { model: llama70 },
      );
      expect(run.metrics.rejectedReasons).toEqual({ [TOO_LARGE_FOR_DECODE_MEMORY]: 1 });
      expect(Array.from(run.requests.outcome)).toEqual([OUTCOME_COMPLETED, OUTCOME_REJECTED, OUTCOME_COMPLETED]);
      expect(run.requests.prefillStartMs[1]).toBeNaN();
      expect(run.requests.endMs[1]).toBe(5);
    },
  );

  describe('Mooncake conversation sample (300 requests), decode on cs3x4 versus cs3x8', async () => {
    // The repository's Mooncake FAST'25 sample (Apache-2.0; Qin et al., FAST 2025): long contexts.
    const w = (await loadTraceFile(MOONCAKE_SAMPLE)).workload;
    const cs3x4 = simulate(w, parseSystemSpec('disagg:trn2x16*2+cs3x4*1'), { model: llama70 });
    const cs3x8 = simulate(w, parseSystemSpec('disagg:trn2x16*2+cs3x8*1'), { model: llama70 });

    it('runs on cs3x4 (no longer refused), rejecting exactly the requests that cannot fit alone, and conserves requests', () => {
      // Each request reserves prompt + max_tokens: the workload's longest answer unless told, within the context.
      const maxTokens = Math.max(...w.requests.map((r) => r.outputTokens));
      expect(cs3x4.limits.maxTokens).toBe(maxTokens);
      const reserved = (r: SimRequest) =>
        r.promptTokens + Math.max(r.outputTokens, Math.min(maxTokens, llama70.maxContext - r.promptTokens));
      const tooLarge = w.requests.filter((r) => kvBytesForContext(llama70, reserved(r)) > budget('cs3x4')).length;
      // More than the answers' true lengths would turn away: the simulator knows no more than the client sent.
      const byTrueLength = w.requests.filter(
        (r) => kvBytesForContext(llama70, r.promptTokens + r.outputTokens) > budget('cs3x4'),
      ).length;
      expect(tooLarge).toBeGreaterThan(byTrueLength);
      expect(tooLarge).toBeGreaterThan(0);
      const m = cs3x4.metrics;
      // Prefill admission may turn some away at this load too; the memory rejections are exactly these.
      expect(m.rejectedReasons[TOO_LARGE_FOR_DECODE_MEMORY]).toBe(tooLarge);
      expect(m.completed + m.rejected).toBe(w.requests.length);
      expect(peakKv(cs3x4.requests).bytes).toBeLessThanOrEqual(budget('cs3x4'));
      // On cs3x8 the same trace holds more KV at once than cs3x4 could.
      expect(peakKv(cs3x8.requests).bytes).toBeGreaterThan(budget('cs3x4'));
    });
  });
});
