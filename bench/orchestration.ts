/**
 * Orchestration overhead: wall time of a request through the HTTP API, prefill, KV handoff, decode and
 * response at timeScale 0 with a backend that does no model compute: 1,000 prompt tokens, 100 output tokens.
 */
import { randomUUID } from 'node:crypto';
import { llama3Tokenizer, completionPromptIds } from '../lib/adapters/tokenizer-llama3';
import { startServer } from '../lib/local/server';
import { NullBackend } from './null-backend';
import { median, percentile, type BenchRow } from './results';

/** The server's own stage times for a request (the response's `disagg.measured`). */
interface Measured {
  readonly queueMs: number;
  readonly prefillMs: number;
  readonly handoffMs: number;
  readonly decodeMs: number;
  readonly totalMs: number;
}

const PROMPT_TOKENS = 1000;
const OUTPUT_TOKENS = 100;

/** A prompt that is exactly PROMPT_TOKENS tokens with the BOS the completion template adds. */
function promptText(): string {
  const tokenizer = llama3Tokenizer();
  const text = ' hello'.repeat(PROMPT_TOKENS - 1);
  const n = completionPromptIds(tokenizer, text).length;
  if (n !== PROMPT_TOKENS) throw new Error(`bench prompt is ${n} tokens, expected ${PROMPT_TOKENS}`);
  return text;
}

async function timeRequests(
  url: string,
  prompt: string,
  concurrency: number,
  total: number,
): Promise<{ latencies: number[]; measured: Measured[]; seconds: number }> {
  const body = JSON.stringify({ model: 'llama-3.3-70b', prompt, max_tokens: OUTPUT_TOKENS, temperature: 0 });
  const latencies: number[] = [];
  const measured: Measured[] = [];
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < total) {
      issued += 1;
      const t0 = performance.now();
      const res = await fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      const json = (await res.json()) as { usage?: { completion_tokens: number }; disagg?: { measured: Measured } };
      if (res.status !== 200 || json.usage?.completion_tokens !== OUTPUT_TOKENS || !json.disagg) {
        throw new Error(`bench request failed: HTTP ${res.status} ${JSON.stringify(json).slice(0, 200)}`);
      }
      latencies.push(performance.now() - t0);
      measured.push(json.disagg.measured);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { latencies, measured, seconds: (performance.now() - start) / 1000 };
}

/** What the API spends tokenizing the bench prompt (Llama 3 BPE), which the server-measured total does not include. */
function tokenizationRow(prompt: string): BenchRow {
  const tokenizer = llama3Tokenizer();
  for (let i = 0; i < 20; i++) completionPromptIds(tokenizer, prompt); // warm up the JIT
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    completionPromptIds(tokenizer, prompt);
    times.push(performance.now() - t0);
  }
  return {
    section: 'orchestration (both stores)',
    metric: `tokenizing the ${PROMPT_TOKENS.toLocaleString('en-US')}-token prompt, p50`,
    value: median(times),
    unit: 'ms',
    target: '',
    pass: null,
    note: 'Llama 3 BPE in the API before the request is received by the engine; part of every request above',
  };
}

export async function orchestrationBench(
  redisUrl: string | null,
  progress: (line: string) => void,
): Promise<BenchRow[]> {
  const tokenizer = llama3Tokenizer();
  const prompt = promptText();
  const rows: BenchRow[] = [];
  rows.push(tokenizationRow(prompt));
  for (const store of ['memory', 'redis'] as const) {
    if (store === 'redis' && !redisUrl) continue;
    const server = await startServer({
      port: 0,
      apiKey: null,
      engine: { timeScale: 0, decodeBatchMax: 64, maxPrefillQueue: 1024, maxDecodeQueue: 1024 },
      redisUrl: store === 'redis' ? redisUrl : null,
      redisPrefix: `disagg-bench:${randomUUID()}:`,
      generationBackend: new NullBackend({ id: tokenizer.encode(' hello')[0]!, text: ' hello' }),
      prefillConcurrency: 4,
    });
    try {
      await timeRequests(server.url, prompt, 4, 100); // warm up the JIT, sockets and stores
      for (const concurrency of [1, 32]) {
        progress(`orchestration: ${store} adapters, concurrency ${concurrency}`);
        const { latencies, measured, seconds } = await timeRequests(
          server.url,
          prompt,
          concurrency,
          concurrency === 1 ? 400 : 1600,
        );
        const p50 = median(latencies);
        const target = concurrency === 1 ? (store === 'memory' ? 2 : 5) : null;
        const section = `orchestration (${store}, concurrency ${concurrency})`;
        rows.push({
          section,
          metric: 'p50 per request',
          value: p50,
          unit: 'ms',
          target: target === null ? '' : `<= ${target} ms`,
          pass: target === null ? null : p50 <= target,
        });
        rows.push({
          section,
          metric: 'p99 per request',
          value: percentile(latencies, 99),
          unit: 'ms',
          target: '',
          pass: null,
        });
        const p50Of = (key: keyof Measured): string => median(measured.map((m) => m[key])).toFixed(2);
        rows.push({
          section,
          metric: 'server-measured total, p50',
          value: median(measured.map((m) => m.totalMs)),
          unit: 'ms',
          target: '',
          pass: null,
          note: `received to completed inside the server; p50 ms: queue ${p50Of('queueMs')}, prefill ${p50Of('prefillMs')}, handoff ${p50Of('handoffMs')}, decode ${p50Of('decodeMs')}; the rest of p50 is HTTP, JSON and tokenizing`,
        });
        rows.push({
          section,
          metric: 'throughput',
          value: latencies.length / seconds,
          unit: 'req/s',
          target: '',
          pass: null,
        });
      }
      if ((await server.kv.count()) !== 0) throw new Error('bench left KV blobs behind');
    } finally {
      await server.close();
    }
  }
  return rows;
}
