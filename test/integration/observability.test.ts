/**
 * What `disagg serve` reports, checked from outside: /metrics parsed by a Prometheus text-format parser (not
 * this project's), in one thread and with `--workers`; one JSON log line per request that never carries a
 * prompt or a completion; and spans of one request joining one trace across the handoff descriptor, exported
 * over real OTLP/HTTP from the stage threads to a collector stand-in on 127.0.0.1.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import parsePrometheusTextFormat, { type MetricFamily } from 'parse-prometheus-text-format';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, describe, expect, it } from 'vitest';
import { tracingFromEnv } from '../../lib/adapters/telemetry';
import { createLogger } from '../../lib/local/request-log';
import { startServer, type RunningServer } from '../../lib/local/server';

const KEY = 'observability-key';
const MODEL = 'llama-3.3-70b';
const headers = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` };
const MARKER = 'OKAPI-NEBULA-4417';
const CLIENT_TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

const servers: RunningServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function chat(server: RunningServer, content: string, extra: Record<string, unknown> = {}): Promise<Response> {
  return fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { ...headers, traceparent: CLIENT_TRACEPARENT },
    body: JSON.stringify({ model: MODEL, max_tokens: 12, messages: [{ role: 'user', content }], ...extra }),
    signal: AbortSignal.timeout(30_000),
  });
}

/** The completion text of a JSON or SSE response. */
async function completionText(res: Response): Promise<string> {
  const body = await res.text();
  if (!body.startsWith('data:'))
    return (JSON.parse(body) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
  return body
    .split('\n')
    .filter((l) => l.startsWith('data: {'))
    .map(
      (l) =>
        (JSON.parse(l.slice(6)) as { choices: { delta?: { content?: string } }[] }).choices[0]?.delta?.content ?? '',
    )
    .join('');
}

interface Scrape {
  readonly families: Map<string, MetricFamily>;
  readonly text: string;
}

async function scrape(server: RunningServer): Promise<Scrape> {
  const res = await fetch(`${server.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  const text = await res.text();
  // The parser throws on any line that is not Prometheus text format.
  return { families: new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f])), text };
}

/**
 * A counter's or gauge's value summed over the series matching `labels`; for a histogram, its observation
 * count. The parser merges a labelled histogram's series into one set of buckets, so a histogram's count is
 * read from its `_count` series, given to the same parser as a counter of its own.
 */
function value(m: Scrape, name: string, labels: Record<string, string> = {}): number {
  const family = m.families.get(name);
  if (!family) throw new Error(`no metric family ${name}`);
  const series =
    family.type === 'HISTOGRAM'
      ? parsePrometheusTextFormat(
          [
            `# TYPE ${name}_count counter`,
            ...m.text.split('\n').filter((l) => l.startsWith(`${name}_count{`)),
            '',
          ].join('\n'),
        )[0]!.metrics
      : family.metrics;
  return series
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v))
    .reduce((sum, s) => sum + Number(s.value ?? 0), 0);
}

/** Every line the structured log wrote, parsed. */
function logCapture(): { stream: Writable; lines: Record<string, unknown>[]; raw: string[] } {
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      raw.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  return {
    stream,
    raw,
    get lines() {
      return raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
}

describe('metrics, request log and traces of one server', () => {
  const log = logCapture();
  const spans = new InMemorySpanExporter();
  let server: RunningServer;
  const completions: string[] = [];

  it('serves requests and accounts for each in /metrics, parsed as Prometheus text', async () => {
    server = await startServer({
      port: 0,
      engine: { timeScale: 0 },
      apiKey: KEY,
      logger: createLogger('debug', log.stream),
      tracing: tracingFromEnv({}, { serviceName: 'disagg-test', exporter: spans }),
    });
    servers.push(server);
    for (const stream of [false, true]) {
      const res = await chat(server, `${MARKER} why split prefill from decode?`, { stream, user: 'someone' });
      expect(res.status).toBe(200);
      completions.push(await completionText(res));
    }
    const colocated = await chat(server, `${MARKER} short one`, { disagg: { mode: 'colocated' } });
    expect(colocated.status).toBe(200);
    completions.push(await completionText(colocated));
    expect(completions.every((c) => c.length > 0)).toBe(true);
    expect((await fetch(`${server.url}/v1/models`)).status).toBe(401);

    const m = await scrape(server);
    for (const [name, type] of [
      ['vllm:time_to_first_token_seconds', 'HISTOGRAM'],
      ['vllm:request_time_per_output_token_seconds', 'HISTOGRAM'],
      ['vllm:e2e_request_latency_seconds', 'HISTOGRAM'],
      ['vllm:request_queue_time_seconds', 'HISTOGRAM'],
      ['disagg:requests_total', 'COUNTER'],
      ['vllm:num_requests_running', 'GAUGE'],
      ['disagg:queue_depth', 'GAUGE'],
      ['disagg:decode_batch_size', 'GAUGE'],
      ['disagg:pool_busy_ratio', 'GAUGE'],
      ['disagg:kv_handoff_bytes_total', 'COUNTER'],
      ['disagg:kv_blobs_held', 'GAUGE'],
    ] as const) {
      expect(m.families.get(name)?.type, name).toBe(type);
    }
    for (const clock of ['emulated', 'measured']) {
      expect(value(m, 'vllm:time_to_first_token_seconds', { clock }), clock).toBe(3);
      expect(value(m, 'vllm:e2e_request_latency_seconds', { clock }), clock).toBe(3);
      // The colocated request never crossed the handoff.
      expect(value(m, 'disagg:kv_transfer_time_seconds', { clock }), clock).toBe(2);
    }
    expect(value(m, 'disagg:requests_total', { outcome: 'completed', route: '/v1/chat/completions' })).toBe(3);
    expect(value(m, 'disagg:requests_total', { mode: 'colocated' })).toBe(1);
    expect(value(m, 'vllm:request_success_total', { finished_reason: 'length' })).toBe(3);
    expect(value(m, 'disagg:kv_handoff_blobs_total')).toBe(2);
    expect(value(m, 'disagg:kv_handoff_bytes_total')).toBeGreaterThan(0);
    expect(value(m, 'disagg:http_responses_total', { route: '/v1/models', status: '401' })).toBe(1);
    expect(value(m, 'disagg:pool_busy_seconds_total', { pool: 'prefill' })).toBeGreaterThan(0);
    expect(value(m, 'disagg:queue_depth')).toBe(0);
    expect(value(m, 'disagg:kv_blobs_held')).toBe(0);
  });

  it('logs one JSON line per request, with ids, devices, tokens and both clocks, and never the prompt or completion', async () => {
    // The log is asynchronous to its stream: wait for the three request lines.
    await expect.poll(() => log.lines.filter((l) => typeof l.outcome === 'string').length).toBe(3);
    const ended = log.lines.filter((l) => l.outcome === 'completed');
    expect(ended).toHaveLength(3);
    for (const line of ended) {
      expect(line).toMatchObject({ level: 'info', route: '/v1/chat/completions', promptTokens: expect.any(Number) });
      expect(String(line.id)).toMatch(/^chatcmpl-/);
      expect(String(line.requestId)).toMatch(/^req_/);
      expect(line.outputTokens).toBe(12);
      expect(Object.keys(line.emulatedMs as object)).toEqual(expect.arrayContaining(['ttftMs', 'tpotMs', 'e2eMs']));
      expect(Object.keys(line.measuredMs as object)).toEqual(expect.arrayContaining(['ttftMs', 'tpotMs', 'e2eMs']));
    }
    expect(ended.map((l) => l.devices)).toContainEqual({ colocated: 'h100x8' });
    const warnings = log.lines.filter((l) => l.msg === 'request fields accepted but not acted on');
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatchObject({ level: 'warn', fields: ['user'] });
    const everything = log.raw.join('\n');
    expect(everything).not.toContain(MARKER);
    // The reference model's completions are runs of words: none of them, whole or its first 24 characters, is logged.
    for (const text of completions) expect(everything).not.toContain(text.trim().slice(0, 24));
  });

  it("joins the request, prefill and decode spans of one request in the client's trace, through the descriptor", async () => {
    const finished = spans.getFinishedSpans();
    const requestSpans = finished.filter((s) => s.name === 'disagg.request');
    expect(requestSpans).toHaveLength(3);
    for (const root of requestSpans) {
      const { traceId, spanId } = root.spanContext();
      expect(traceId).toBe(CLIENT_TRACEPARENT.slice(3, 35));
      expect(root.parentSpanContext?.spanId).toBe(CLIENT_TRACEPARENT.slice(36, 52));
      const prefill = finished.find((s) => s.name === 'disagg.prefill' && s.parentSpanContext?.spanId === spanId);
      expect(prefill, 'a prefill span under the request span').toBeDefined();
      const decode = finished.find(
        (s) => s.name === 'disagg.decode' && s.parentSpanContext?.spanId === prefill!.spanContext().spanId,
      );
      expect(decode, 'a decode span under the prefill span').toBeDefined();
      expect(decode!.spanContext().traceId).toBe(traceId);
      expect(root.events.map((e) => e.name)).toEqual(expect.arrayContaining(['prefill_start', 'first_token']));
    }
  });
});

describe('admission rejections', () => {
  it('counts each 429 in /metrics by the queue that was full, and logs it', async () => {
    const log = logCapture();
    const server = await startServer({
      port: 0,
      engine: { timeScale: 1, maxPrefillQueue: 1 },
      apiKey: KEY,
      logger: createLogger('info', log.stream),
    });
    servers.push(server);
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => chat(server, `burst ${i}`)));
    const rejected = answers.filter((a) => a.status === 429).length;
    await Promise.all(answers.map((a) => a.text()));
    expect(rejected).toBeGreaterThan(0);
    const m = await scrape(server);
    expect(value(m, 'disagg:requests_total', { outcome: 'rejected', reason: 'prefill_queue_full' })).toBe(rejected);
    expect(value(m, 'disagg:requests_total', { outcome: 'completed' })).toBe(6 - rejected);
    await expect.poll(() => log.lines.filter((l) => l.outcome === 'rejected').length).toBe(rejected);
  });
});

describe('with --workers', () => {
  let collector: Server;
  const received: { name: string; traceId: string; spanId: string; parentSpanId?: string }[] = [];

  afterAll(async () => {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    await new Promise((resolve) => collector?.close(resolve));
  });

  it(
    'reaches one /metrics endpoint from the stage threads, and their spans join one trace over OTLP',
    { timeout: 120_000 },
    async () => {
      // A stand-in OTLP/HTTP collector: it keeps the spans it is sent.
      collector = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString('utf8')));
        req.on('end', () => {
          const parsed = JSON.parse(body) as {
            resourceSpans: {
              scopeSpans: { spans: { name: string; traceId: string; spanId: string; parentSpanId?: string }[] }[];
            }[];
          };
          for (const rs of parsed.resourceSpans) for (const ss of rs.scopeSpans) received.push(...ss.spans);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        });
      });
      await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
      const server = await startServer({ port: 0, engine: { timeScale: 0 }, apiKey: KEY, workers: true });
      for (let i = 0; i < 3; i++) expect((await chat(server, `threads ${i}`)).status).toBe(200);
      const m = await scrape(server);
      expect(value(m, 'vllm:time_to_first_token_seconds', { clock: 'measured' })).toBe(3);
      expect(value(m, 'disagg:requests_total', { outcome: 'completed' })).toBe(3);
      expect(value(m, 'disagg:pool_busy_seconds_total', { pool: 'decode' })).toBeGreaterThan(0);
      // Closing flushes every thread's exporter.
      await server.close();
      const byName = (name: string) => received.filter((s) => s.name === name);
      expect(byName('disagg.request')).toHaveLength(3);
      expect(byName('disagg.prefill')).toHaveLength(3);
      expect(byName('disagg.decode')).toHaveLength(3);
      for (const decode of byName('disagg.decode')) {
        const prefill = received.find((s) => s.spanId === decode.parentSpanId);
        expect(prefill?.name).toBe('disagg.prefill');
        const root = received.find((s) => s.spanId === prefill!.parentSpanId);
        expect(root?.name).toBe('disagg.request');
        expect(new Set([decode.traceId, prefill!.traceId, root!.traceId]).size).toBe(1);
      }
    },
  );
});
