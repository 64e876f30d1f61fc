/**
 * Backpressure with memory adapters at timeScale 0, where no emulated time is slept: the stages must still give
 * the event loop back (a long prompt's prefill in slices, a turn between decode steps), so the server answers
 * while a burst runs and admission sees what is really queued: overload is a 429, never a timeout or a reset.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREFILL_SLICE_MS } from '../../lib/adapters/backend-reference';
import { startServer, type RunningServer } from '../../lib/local/server';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer({
    port: 0,
    apiKey: null,
    engine: { timeScale: 0, maxPrefillQueue: 6 },
  });
});

afterAll(async () => {
  await server.close({ drainMs: 0 });
});

/** About 6,000 prompt tokens: a prefill of seconds of compute on this CPU, in one piece before slicing. */
const LONG_PROMPT = 'prefill decode wafer cache handoff latency bandwidth memory token batch '.repeat(600);

function chat(content: string, maxTokens: number): Promise<number | string> {
  return fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'llama-3.3-70b', max_tokens: maxTokens, messages: [{ role: 'user', content }] }),
    signal: AbortSignal.timeout(120_000),
  }).then(
    async (res) => {
      await res.arrayBuffer();
      return res.status;
    },
    (err: Error) => err.name,
  );
}

/** Wall ms of each /healthz answer, probing every 50 ms until `until` settles. */
async function probeHealth(until: Promise<unknown>): Promise<number[]> {
  let settled = false;
  void until.finally(() => (settled = true));
  const latencies: number[] = [];
  while (!settled) {
    const started = performance.now();
    const res = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(30_000) });
    await res.arrayBuffer();
    latencies.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return latencies;
}

describe('a burst at timeScale 0 with memory adapters', () => {
  it('a long prompt prefill never holds /healthz for more than a bounded slice', async () => {
    const running = Promise.all([chat(LONG_PROMPT, 4), chat(LONG_PROMPT, 4)]);
    const latencies = await probeHealth(running);
    expect(await running).toEqual([200, 200]);
    expect(latencies.length).toBeGreaterThan(3);
    // Unsliced, one such prefill held the loop for seconds; sliced, a probe waits a slice or so (with slack for a
    // shared CI machine: this bounds a stall, it is not a latency measurement).
    expect(Math.max(...latencies)).toBeLessThan(PREFILL_SLICE_MS * 50);
  }, 120_000);

  it('answers every request of a burst over the queue limit: 200 or 429 with Retry-After, no timeout or reset', async () => {
    const burst = Promise.all(Array.from({ length: 40 }, (_, i) => chat(`${LONG_PROMPT.slice(0, 2000)} ${i}`, 64)));
    const latencies = await probeHealth(burst);
    const statuses = await burst;
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect(Math.max(...latencies)).toBeLessThan(PREFILL_SLICE_MS * 50);
  }, 120_000);
});
