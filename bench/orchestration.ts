/**
 * Orchestration overhead: wall time of a request through the HTTP API, prefill, KV handoff, decode and
 * response at timeScale 0 with a backend that does no model compute: 1,000 prompt tokens, 100 output tokens.
 */
import { randomUUID } from 'node:crypto';
import { llama3Tokenizer, completionPromptIds } from '../lib/adapters/tokenizer-llama3';
import { startServer } from '../lib/local/server';
import { NullBackend } from './null-backend';
import { median, percentile, type BenchRow } from './results';

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
): Promise<{ latencies: number[]; seconds: number }> {
  const body = JSON.stringify({ model: 'llama-3.3-70b', prompt, max_tokens: OUTPUT_TOKENS, temperature: 0 });
  const latencies: number[] = [];
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
      const json = (await res.json()) as { usage?: { completion_tokens: number } };
      if (res.status !== 200 || json.usage?.completion_tokens !== OUTPUT_TOKENS) {
        throw new Error(`bench request failed: HTTP ${res.status} ${JSON.stringify(json).slice(0, 200)}`);
      }
      latencies.push(performance.now() - t0);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { latencies, seconds: (performance.now() - start) / 1000 };
}

export async function orchestrationBench(
  redisUrl: string | null,
  progress: (line: string) => void,
): Promise<BenchRow[]> {
  const tokenizer = llama3Tokenizer();
  const prompt = promptText();
  const rows: BenchRow[] = [];
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
        const { latencies, seconds } = await timeRequests(
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
