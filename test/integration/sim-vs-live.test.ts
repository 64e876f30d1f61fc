/**
 * One engine, two clocks: the embedded runtime at timeScale 0 and the simulator charge the same
 * emulated device time for the same requests.
 *
 * What is compared: emulated TTFT (the prefill: the first token leaves with it) and TPOT (the mean decode
 * step per later token; the KV transfer that delays the second token is compared on its own). The live
 * record's ttft excludes queue time, because the live runtime measures its queue waits rather than emulating
 * them; the requests here run one after another, so the simulator's queue waits are 0 and its TTFT (first
 * token - arrival) is the same.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { parseSystemSpec, simulate, type SimRequest } from '../../lib/core/sim';
import type { RequestRecord } from '../../lib/core/engine/record';
import { createHarness, prompts } from './pipeline-harness';

describe('live versus simulated agreement', () => {
  const harness = createHarness({ colocated: null });
  afterAll(() => harness.close());

  it('the embedded runtime and the simulator give the same emulated TTFT and TPOT per request', async () => {
    const records: RequestRecord[] = [];
    const maxTokens = [4, 9, 16, 12, 7, 20];
    for (const [k, messages] of prompts().entries()) {
      // One at a time: nothing overlaps, so no request waits for another.
      records.push(await harness.run(messages, { maxTokens: maxTokens[k]! }));
    }
    for (const r of records) {
      expect(r.state).toBe('completed');
      expect(r.finishReason).toBe('length');
    }
    const config = harness.runtime.config;
    const requests: SimRequest[] = records.map((r, k) => ({
      id: r.id,
      // Far apart: each request's decode has ended long before the next arrives.
      arrivalMs: k * 60_000,
      promptTokens: r.promptTokens,
      outputTokens: r.completionTokens,
    }));
    const sim = simulate(
      { source: 'live requests', requests },
      parseSystemSpec(
        `disagg:${config.prefillPool.device}x${config.prefillPool.count}+${config.decodePool.device}x${config.decodePool.count}`,
      ),
      { model: config.model, compute: config.compute, prefixCache: false, decodeBatchMax: config.decodeBatchMax },
    );
    const t = sim.requests;
    expect(sim.metrics.queueWaitMs.prefill.p99).toBe(0);
    records.forEach((r, i) => {
      expect(t.firstTokenMs[i]! - t.arrivalMs[i]!).toBeCloseTo(r.emulated.ttftMs, 6);
      const transfer = t.decodeReadyMs[i]! - t.prefillEndMs[i]!;
      const decodeSteps = t.endMs[i]! - t.firstTokenMs[i]! - transfer;
      expect(decodeSteps / (r.completionTokens - 1)).toBeCloseTo(r.emulated.tpotMs, 6);
      expect(t.prefillEndMs[i]! - t.prefillStartMs[i]!).toBeCloseTo(r.emulated.prefillMs, 6);
      expect(t.decodeReadyMs[i]! - t.prefillEndMs[i]!).toBeCloseTo(r.emulated.transferMs, 6);
    });
  });
});
