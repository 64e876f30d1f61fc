/**
 * Load test of the embedded server over loopback: `npm run loadtest`.
 * Starts the server in this process with KV blobs and results in Redis (REDIS_URL or 127.0.0.1:6379),
 * timeScale 0, admission limits below the offered load, and fires every request at once with plain
 * fetch (keep-alive): half streamed (SSE), half JSON, chat and completions, varied prompt lengths and
 * max_tokens, from a seeded PRNG. Every response is checked; afterwards Redis is scanned for KV blobs
 * and unfinished records under the run's prefix and the server's health and occupancy are read.
 * Writes bench/load-results.json and bench/load-results.md; exits 1 when anything was wrong.
 */
import { mulberry32 } from '../lib/core/random';
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createRedis } from '../lib/adapters/redis-connection';
import { startServer } from '../lib/local/server';
import { deleteAllButLeaks, describeLeaks, leakCount } from './redis-leaks';

export interface LoadTestOptions {
  /** Requests fired at once. */
  readonly requests: number;
  readonly maxPrefillQueue: number;
  readonly maxDecodeQueue: number;
  readonly redisUrl: string;
  /** Every Redis key of the run starts with this. */
  readonly redisPrefix: string;
  readonly seed: number;
  /** Per request; a response not complete by then counts as an error, never a hang. */
  readonly requestTimeoutMs: number;
}

export const DEFAULT_LOAD: Omit<LoadTestOptions, 'redisUrl' | 'redisPrefix'> = {
  requests: 300,
  // Below what the pipeline drains while 300 requests arrive at one event loop, so admission really says no.
  maxPrefillQueue: 16,
  maxDecodeQueue: 16,
  seed: 20_240_611,
  requestTimeoutMs: 60_000,
};

type Endpoint = 'chat' | 'completion';

interface Outcome {
  readonly endpoint: Endpoint;
  readonly stream: boolean;
  readonly status: number | 'error';
  readonly ms: number;
  readonly completionTokens: number;
  /** Why the response was wrong; null when it was right for its status. */
  readonly problem: string | null;
  /** Retry-After of a 429, seconds. */
  readonly retryAfter: number | null;
}

export interface LoadTestResult {
  /** The options without the Redis URL and prefix (a URL may carry a password; results get committed). */
  readonly config: Omit<LoadTestOptions, 'redisUrl' | 'redisPrefix'> & {
    readonly timeScale: 0;
    readonly nodeVersion: string;
  };
  readonly counts: { total: number; ok: number; rejected: number; other: number };
  readonly byKind: Record<string, { ok: number; rejected: number }>;
  /** Accepted (200) requests, send to last byte. */
  readonly latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** 429s, send to response. */
  readonly rejectLatencyMs: { p50: number; p99: number };
  readonly retryAfterSeconds: { min: number; max: number } | null;
  readonly wallMs: number;
  /** How long the event loop was held at a time during the run: the reference model computes on it. */
  readonly eventLoopDelayMs: { p50: number; p99: number; max: number };
  readonly throughput: { completedPerS: number; completionTokensPerS: number };
  readonly after: {
    kvBlobs: number;
    openRecords: number;
    queuedMessages: number;
    healthStatus: number;
    occupancy: Record<string, number>;
  };
  /** Every anomaly, at most 20 listed; empty when the run was clean. */
  readonly problems: string[];
  readonly problemCount: number;
}

const MODEL = 'llama-3.3-70b';
const WORDS = 'prefill decode wafer trainium cache token handoff latency bandwidth memory batch queue'.split(' ');

interface Planned {
  readonly endpoint: Endpoint;
  readonly stream: boolean;
  readonly body: Record<string, unknown>;
}

/** Request i: endpoint and streaming alternate so each of the four kinds is a quarter of the load. */
function plan(count: number, seed: number): Planned[] {
  const rand = mulberry32(seed);
  return Array.from({ length: count }, (_, i) => {
    const endpoint: Endpoint = i % 4 < 2 ? 'chat' : 'completion';
    const stream = i % 2 === 0;
    // Mostly short prompts, some long enough that their KV goes through Redis rather than inline.
    const words = rand() < 0.1 ? 150 + Math.floor(rand() * 100) : 3 + Math.floor(rand() * 40);
    const prompt = Array.from({ length: words }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ');
    const common = {
      model: MODEL,
      max_tokens: 1 + Math.floor(rand() * 24),
      temperature: Math.round(rand() * 100) / 100,
      seed: i,
      stream,
      // Streams end with a usage chunk, so completion tokens are counted the same for both kinds.
      ...(stream ? { stream_options: { include_usage: true } } : {}),
    };
    const body =
      endpoint === 'chat' ? { ...common, messages: [{ role: 'user', content: prompt }] } : { ...common, prompt };
    return { endpoint, stream, body };
  });
}

export async function runLoadTest(options: LoadTestOptions): Promise<LoadTestResult> {
  const server = await startServer({
    port: 0,
    apiKey: null,
    redisUrl: options.redisUrl,
    redisPrefix: options.redisPrefix,
    engine: { timeScale: 0, maxPrefillQueue: options.maxPrefillQueue, maxDecodeQueue: options.maxDecodeQueue },
  });
  const redis = createRedis({ url: options.redisUrl, connectionName: 'disagg-load-test' });
  try {
    const planned = plan(options.requests, options.seed);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const started = performance.now();
    const outcomes = await Promise.all(planned.map((p) => send(server.url, p, options.requestTimeoutMs)));
    const wallMs = performance.now() - started;
    loop.disable();

    // Everything has answered; let the pipeline's last record writes land before counting.
    await settle(() => server.runtime.occupancy(), 5000);
    const leaks = await deleteAllButLeaks(redis, options.redisPrefix);
    const health = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(5000) });
    const healthBody = (await health.json()) as Record<string, unknown>;
    const occupancy = Object.fromEntries(Object.entries(healthBody).filter(([, v]) => typeof v === 'number')) as Record<
      string,
      number
    >;

    const problems = outcomes.filter((o) => o.problem !== null).map((o) => o.problem!);
    if (leakCount(leaks) > 0) problems.push(`left in Redis: ${describeLeaks(leaks)}`);
    if (health.status !== 200) problems.push(`GET /healthz answered ${health.status}`);
    for (const [k, v] of Object.entries(occupancy)) if (v !== 0) problems.push(`occupancy ${k} is ${v} after the run`);

    const ok = outcomes.filter((o) => o.status === 200);
    const rejected = outcomes.filter((o) => o.status === 429);
    const retryAfter = rejected.map((o) => o.retryAfter ?? 0);
    const byKind: Record<string, { ok: number; rejected: number }> = {};
    for (const o of outcomes) {
      const kind = `${o.endpoint}${o.stream ? ' stream' : ''}`;
      byKind[kind] ??= { ok: 0, rejected: 0 };
      if (o.status === 200) byKind[kind].ok += 1;
      if (o.status === 429) byKind[kind].rejected += 1;
    }
    const tokens = ok.reduce((sum, o) => sum + o.completionTokens, 0);
    const okMs = ok.map((o) => o.ms);
    const rejectMs = rejected.map((o) => o.ms);
    return {
      config: {
        requests: options.requests,
        maxPrefillQueue: options.maxPrefillQueue,
        maxDecodeQueue: options.maxDecodeQueue,
        seed: options.seed,
        requestTimeoutMs: options.requestTimeoutMs,
        timeScale: 0,
        nodeVersion: process.version,
      },
      counts: {
        total: outcomes.length,
        ok: ok.length,
        rejected: rejected.length,
        other: outcomes.length - ok.length - rejected.length,
      },
      byKind,
      latencyMs: {
        p50: percentile(okMs, 50),
        p90: percentile(okMs, 90),
        p99: percentile(okMs, 99),
        max: percentile(okMs, 100),
      },
      rejectLatencyMs: { p50: percentile(rejectMs, 50), p99: percentile(rejectMs, 99) },
      retryAfterSeconds: retryAfter.length > 0 ? { min: Math.min(...retryAfter), max: Math.max(...retryAfter) } : null,
      wallMs: round(wallMs),
      eventLoopDelayMs: {
        p50: round(loop.percentile(50) / 1e6),
        p99: round(loop.percentile(99) / 1e6),
        max: round(loop.max / 1e6),
      },
      throughput: {
        completedPerS: round(ok.length / (wallMs / 1000)),
        completionTokensPerS: round(tokens / (wallMs / 1000)),
      },
      after: {
        kvBlobs: leaks.kvBlobs.length,
        openRecords: leaks.openRecords.length,
        queuedMessages: leaks.queuedMessages.length,
        healthStatus: health.status,
        occupancy,
      },
      problems: problems.slice(0, 20),
      problemCount: problems.length,
    };
  } finally {
    await redis.quit();
    await server.close();
  }
}

async function send(base: string, p: Planned, timeoutMs: number): Promise<Outcome> {
  const path = p.endpoint === 'chat' ? '/v1/chat/completions' : '/v1/completions';
  const started = performance.now();
  const outcome = (
    status: number | 'error',
    completionTokens: number,
    problem: string | null,
    retryAfter: number | null = null,
  ): Outcome => ({
    endpoint: p.endpoint,
    stream: p.stream,
    status,
    ms: round(performance.now() - started),
    completionTokens,
    problem: problem === null ? null : `${p.stream ? 'streamed ' : ''}${p.endpoint} (${status}): ${problem}`,
    retryAfter,
  });
  try {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(p.body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (res.status === 429) {
      const retryAfter = res.headers.get('retry-after') ?? '';
      const problem =
        !/^\d+$/.test(retryAfter) || Number(retryAfter) < 1
          ? `Retry-After is ${JSON.stringify(retryAfter)}, not an integer >= 1`
          : apiErrorProblem(text, 'rate_limit_error');
      return outcome(429, 0, problem, Number(retryAfter));
    }
    if (res.status !== 200) return outcome(res.status, 0, `unexpected status: ${text.slice(0, 200)}`);
    const checked = p.stream ? checkStream(text, p.endpoint) : checkJson(text, p.endpoint);
    return outcome(200, checked.tokens, checked.problem);
  } catch (e) {
    return outcome('error', 0, (e as Error).message);
  }
}

function checkJson(text: string, endpoint: Endpoint): { tokens: number; problem: string | null } {
  const body = JSON.parse(text) as {
    choices?: { message?: { content?: unknown }; text?: unknown }[];
    usage?: { completion_tokens?: number };
    disagg?: { state?: string };
  };
  const choice = body.choices?.[0];
  const content = endpoint === 'chat' ? choice?.message?.content : choice?.text;
  const tokens = body.usage?.completion_tokens ?? 0;
  if (typeof content !== 'string' || content.length === 0) return { tokens, problem: 'no content' };
  if (tokens < 1) return { tokens, problem: 'usage.completion_tokens < 1' };
  if (body.disagg?.state !== 'completed') return { tokens, problem: `disagg.state ${body.disagg?.state}` };
  return { tokens, problem: null };
}

function checkStream(text: string, endpoint: Endpoint): { tokens: number; problem: string | null } {
  const events = text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
  if (events.at(-1) !== '[DONE]') return { tokens: 0, problem: 'stream did not end with data: [DONE]' };
  let content = '';
  let tokens = 0;
  for (const data of events.slice(0, -1)) {
    const chunk = JSON.parse(data) as {
      error?: { message?: string };
      choices?: { delta?: { content?: string }; text?: string }[];
      disagg?: { state?: string };
      usage?: { completion_tokens?: number } | null;
    };
    if (chunk.error) return { tokens, problem: `in-band error: ${chunk.error.message}` };
    const choice = chunk.choices?.[0];
    content += (endpoint === 'chat' ? choice?.delta?.content : choice?.text) ?? '';
    if (chunk.disagg?.state !== undefined && chunk.disagg.state !== 'completed')
      return { tokens, problem: `disagg.state ${chunk.disagg.state}` };
    if (chunk.usage) tokens = chunk.usage.completion_tokens ?? 0;
  }
  if (content.length === 0) return { tokens, problem: 'stream carried no content' };
  if (tokens < 1) return { tokens, problem: 'no usage chunk with completion_tokens >= 1' };
  return { tokens, problem: null };
}

function apiErrorProblem(text: string, type: string): string | null {
  try {
    const body = JSON.parse(text) as { error?: Record<string, unknown> };
    const e = body.error;
    if (!e || Object.keys(body).length !== 1) return 'body is not {"error": …}';
    if (typeof e.message !== 'string' || e.message === '') return 'error.message is empty';
    if (e.type !== type) return `error.type is ${String(e.type)}, not ${type}`;
    if (!('param' in e) || !('code' in e)) return 'error lacks param or code';
    return null;
  } catch {
    return `body is not JSON: ${text.slice(0, 100)}`;
  }
}

async function settle(occupancy: () => Record<string, number>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Object.values(occupancy()).some((v) => v !== 0) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // Records are written after the events that answer the client; give those writes a moment.
  await new Promise((resolve) => setTimeout(resolve, 100));
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return round(sorted[index]!);
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

export function loadResultsMarkdown(r: LoadTestResult): string {
  const c = r.config;
  const kinds = Object.entries(r.byKind)
    .map(([kind, v]) => `| ${kind} | ${v.ok} | ${v.rejected} |`)
    .join('\n');
  return `# Load test: the embedded server under ${c.requests} concurrent requests

\`npm run loadtest\`: one process, loopback, ${c.requests} requests fired at once with plain fetch
(keep-alive), half streamed, half JSON, chat and completions, prompts of 3 to 250 words, max_tokens 1 to 24.
timeScale 0 (emulated device time is not slept: this measures the software, reference model included),
KV blobs and results in Redis, admission limits ${c.maxPrefillQueue} waiting for prefill and
${c.maxDecodeQueue} waiting for decode. Node ${c.nodeVersion}.

| outcome | requests |
| --- | --- |
| 200, complete (content; streams end with \`[DONE]\`) | ${r.counts.ok} |
| 429 with Retry-After (${r.retryAfterSeconds ? `${r.retryAfterSeconds.min} to ${r.retryAfterSeconds.max} s` : 'none'}) | ${r.counts.rejected} |
| anything else (5xx, timeout, malformed) | ${r.counts.other} |

| kind | 200 | 429 |
| --- | --- | --- |
${kinds}

| measure | value |
| --- | --- |
| latency of accepted requests, p50 | ${r.latencyMs.p50} ms |
| latency of accepted requests, p90 | ${r.latencyMs.p90} ms |
| latency of accepted requests, p99 | ${r.latencyMs.p99} ms |
| latency of accepted requests, max | ${r.latencyMs.max} ms |
| time to a 429, p50 / p99 | ${r.rejectLatencyMs.p50} / ${r.rejectLatencyMs.p99} ms |
| wall time | ${r.wallMs} ms |
| event loop delay, p50 / p99 / max | ${r.eventLoopDelayMs.p50} / ${r.eventLoopDelayMs.p99} / ${r.eventLoopDelayMs.max} ms |
| throughput | ${r.throughput.completedPerS} completed requests/s, ${r.throughput.completionTokensPerS} completion tokens/s |

After the run: ${r.after.kvBlobs} KV blobs and ${r.after.openRecords} non-terminal records in Redis under the
run's prefix (counted by SCAN), \`GET /healthz\` ${r.after.healthStatus}, occupancy
${Object.entries(r.after.occupancy)
  .map(([k, v]) => `${k} ${v}`)
  .join(', ')}. Problems: ${r.problemCount === 0 ? 'none' : r.problems.join('; ')}.

Latency is the whole response, send to last byte, measured by the client in the same process as the
server (figures move with whatever else the machine is running), so it includes the reference model's CPU time for every request ahead in the queue; it says how
this process behaves under overload, not what the emulated hardware would do.

Fired at once is not arrived at once: on a 2-core machine, opening ${c.requests} connections and sending
${c.requests} requests takes about a second even against a server that does nothing, and here the client, the
server's per-request work and the reference model share one event loop (its delay is above). Requests are
read over seconds and the prefill queue drains meanwhile (${r.counts.ok} admitted against a limit of ${c.maxPrefillQueue}), and the
time to a 429 is mostly the wait to be read; the refusal itself needs no model work.
`;
}

/** Writes load-results.json and load-results.md into dir, formatted as `prettier --check` expects. */
export async function writeLoadResults(result: LoadTestResult, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  // A dev dependency, loaded only here; it keeps re-generated results passing `npm run lint`.
  const prettier = await import('prettier');
  const write = async (name: string, text: string) => {
    const file = join(dir, name);
    const config = (await prettier.resolveConfig(file)) ?? {};
    await writeFile(file, await prettier.format(text, { ...config, filepath: file }));
  };
  await write('load-results.json', JSON.stringify(result));
  await write('load-results.md', loadResultsMarkdown(result));
}

async function main(): Promise<void> {
  const result = await runLoadTest({
    ...DEFAULT_LOAD,
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    redisPrefix: `disagg-load:${randomUUID()}:`,
  });
  const dir = fileURLToPath(new URL('../bench/', import.meta.url));
  await writeLoadResults(result, dir);
  console.log(loadResultsMarkdown(result));
  if (result.problemCount > 0 || result.counts.other > 0) process.exitCode = 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
