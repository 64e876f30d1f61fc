/**
 * Smoke check of any deployed disagg endpoint (API Gateway, LocalStack or the embedded server):
 *   npm run smoke -- --url <api url> [--api-key K] [--model M] [--timeout S]
 * Plain fetch only, so it needs nothing but the URL. Exit 0 when every check passes, 1 when any
 * fails, 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import { plainTable } from '../bin/commands/table';

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const DEFAULT_TIMEOUT_S = 60;

const USAGE = `usage: npm run smoke -- --url <api url> [--api-key K] [--model M] [--timeout S]
  --url       base URL of the API, with or without a trailing /v1 (e.g. https://abc.execute-api.us-east-1.amazonaws.com/prod)
  --api-key   API key (default: env DISAGG_API_KEY); sent as "Authorization: Bearer" and "x-api-key"
  --model     model to request (default: the first one GET /v1/models lists)
  --timeout   seconds each check may take (default ${DEFAULT_TIMEOUT_S})`;

interface Options {
  readonly base: string;
  readonly apiKey: string | null;
  readonly model: string | null;
  readonly timeoutMs: number;
}

interface CheckResult {
  readonly check: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly ms: number;
}

/** A failed expectation; its message is the detail shown in the table. */
class CheckFailed extends Error {}

function fail(message: string): never {
  throw new CheckFailed(message);
}

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options | string {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        'api-key': { type: 'string' },
        model: { type: 'string' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    return (err as Error).message;
  }
  if (values.help) return '';
  if (!values.url) return 'missing --url';
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    return `--url must be an absolute http(s) URL, got "${values.url}"`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `--url must be http or https, got ${url.protocol}`;
  const timeoutS = values.timeout === undefined ? DEFAULT_TIMEOUT_S : Number(values.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0 || timeoutS > 3600) {
    return `--timeout must be a number of seconds from 0 to 3600, got "${values.timeout}"`;
  }
  // Accept the stage URL or the /v1 URL: the checks add /v1/... themselves.
  const base = url.href.replace(/\/+$/, '').replace(/\/v1$/, '');
  const apiKey = values['api-key'] ?? env.DISAGG_API_KEY?.trim() ?? '';
  return { base, apiKey: apiKey === '' ? null : apiKey, model: values.model ?? null, timeoutMs: timeoutS * 1000 };
}

function headers(o: Options, json: boolean): Record<string, string> {
  const h: Record<string, string> = { accept: json ? 'application/json' : 'text/event-stream' };
  if (o.apiKey !== null) {
    // The embedded server reads the bearer token; API Gateway usage plans read x-api-key.
    h.authorization = `Bearer ${o.apiKey}`;
    h['x-api-key'] = o.apiKey;
  }
  return h;
}

async function request(
  o: Options,
  method: 'GET' | 'POST',
  path: string,
  body: string | undefined,
  signal: AbortSignal,
  accept: 'json' | 'sse' = 'json',
): Promise<Response> {
  return fetch(`${o.base}${path}`, {
    method,
    headers: {
      ...headers(o, accept === 'json'),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body }),
    signal,
  });
}

/** The body as JSON, or a failure that quotes the start of whatever came back instead. */
async function readJson(res: Response): Promise<Record<string, unknown>> {
  const text = await res.text();
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // Reported below with the body's start.
  }
  return fail(`HTTP ${res.status}, body is not a JSON object: ${snippet(text)}`);
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 117)}...` : flat || '(empty)';
}

/** The error message of an error body, or the start of the body. */
function readMessage(body: Record<string, unknown>): string {
  const error = body.error as { message?: unknown } | undefined;
  return typeof error?.message === 'string' ? error.message : snippet(JSON.stringify(body));
}

function expectStatus(res: Response, status: number, body: Record<string, unknown>): void {
  if (res.status !== status) fail(`HTTP ${res.status} (expected ${status}): ${readMessage(body)}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The `disagg` object: emulated and measured blocks of numbers and a non-empty timeline. Returns its mode. */
function expectDisagg(disagg: unknown, where: string): string {
  if (!isObject(disagg)) fail(`${where} has no disagg object`);
  for (const block of ['emulated', 'measured'] as const) {
    const value = disagg[block];
    if (!isObject(value) || Object.keys(value).length === 0) fail(`${where}: disagg.${block} is missing`);
    for (const [key, n] of Object.entries(value)) {
      if (typeof n !== 'number' || !Number.isFinite(n)) fail(`${where}: disagg.${block}.${key} is not a number`);
    }
  }
  if (!Array.isArray(disagg.timeline) || disagg.timeline.length === 0) fail(`${where}: disagg.timeline is empty`);
  return String(disagg.mode);
}

function expectUsage(usage: unknown): { prompt: number; completion: number } {
  if (!isObject(usage)) fail('no usage in the response');
  const { prompt_tokens: prompt, completion_tokens: completion, total_tokens: total } = usage;
  if (typeof prompt !== 'number' || typeof completion !== 'number' || typeof total !== 'number') {
    fail(`usage is incomplete: ${JSON.stringify(usage)}`);
  }
  if (prompt <= 0 || completion <= 0 || total !== prompt + completion) {
    fail(`usage does not add up: ${JSON.stringify(usage)}`);
  }
  return { prompt, completion };
}

const ms = (n: number): string => `${Math.round(n)}`;

/** Server-sent event payloads of a response, in order; tolerates CRLF and multi-line data fields. */
async function readSse(res: Response): Promise<string[]> {
  if (!res.body) fail('stream response has no body');
  const payloads: string[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const flush = (event: string): void => {
    const data = event
      .split(/\r?\n/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).replace(/^ /, ''));
    if (data.length > 0) payloads.push(data.join('\n'));
  };
  for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(bytes, { stream: true });
    let end: RegExpExecArray | null;
    while ((end = /\r?\n\r?\n/.exec(buffer)) !== null) {
      flush(buffer.slice(0, end.index));
      buffer = buffer.slice(end.index + end[0].length);
    }
  }
  buffer += decoder.decode();
  if (buffer.trim() !== '') flush(buffer);
  return payloads;
}

const PROMPT = [{ role: 'user', content: 'In one sentence: why run prefill and decode on different hardware?' }];

async function main(): Promise<number> {
  const parsed = parseOptions(process.argv.slice(2), process.env);
  if (typeof parsed === 'string') {
    if (parsed !== '') process.stderr.write(`smoke: ${parsed}\n`);
    process.stderr.write(`${USAGE}\n`);
    return parsed === '' ? 0 : EXIT_USAGE;
  }
  const o = parsed;
  const results: CheckResult[] = [];
  let model = o.model;

  async function check(name: string, run: (signal: AbortSignal) => Promise<string>): Promise<void> {
    const started = performance.now();
    const signal = AbortSignal.timeout(o.timeoutMs);
    let ok = false;
    let detail: string;
    try {
      detail = await run(signal);
      ok = true;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (e instanceof CheckFailed) detail = e.message;
      else if (e.name === 'TimeoutError') detail = `no answer within ${o.timeoutMs / 1000} s`;
      // fetch wraps the network failure (ECONNREFUSED, ENOTFOUND, TLS) in its cause.
      else detail = `${e.message}${e.cause ? `: ${e.cause.code ?? e.cause.message ?? ''}` : ''}`;
    }
    results.push({ check: name, ok, detail, ms: performance.now() - started });
  }

  const needModel = (): string =>
    model ?? fail('no model to request: GET /v1/models did not name one (pass --model to choose)');

  await check('GET /v1/models', async (signal) => {
    const res = await request(o, 'GET', '/v1/models', undefined, signal);
    const body = await readJson(res);
    expectStatus(res, 200, body);
    const ids = Array.isArray(body.data)
      ? body.data.map((m: unknown) => (isObject(m) ? m.id : undefined)).filter((id) => typeof id === 'string')
      : [];
    if (ids.length === 0) fail('the model list is empty');
    if (model === null) model = ids[0]!;
    else if (!ids.includes(model)) fail(`--model ${model} is not served; served: ${ids.join(', ')}`);
    return `serves ${ids.join(', ')}`;
  });

  await check('chat completion', async (signal) => {
    const body = JSON.stringify({ model: needModel(), messages: PROMPT, max_tokens: 16 });
    const res = await request(o, 'POST', '/v1/chat/completions', body, signal);
    const json = await readJson(res);
    expectStatus(res, 200, json);
    const choice = Array.isArray(json.choices) && isObject(json.choices[0]) ? json.choices[0] : fail('no choices');
    const content = isObject(choice.message) ? choice.message.content : undefined;
    if (typeof content !== 'string' || content.length === 0) fail('the message content is empty');
    const usage = expectUsage(json.usage);
    const mode = expectDisagg(json.disagg, 'the response');
    const emulated = (json.disagg as { emulated: { ttftMs: number } }).emulated;
    return `${usage.completion} tokens (${usage.prompt} prompt), ${mode}, emulated TTFT ${ms(emulated.ttftMs)} ms`;
  });

  await check('chat completion, stream', async (signal) => {
    const body = JSON.stringify({ model: needModel(), messages: PROMPT, max_tokens: 16, stream: true });
    const res = await request(o, 'POST', '/v1/chat/completions', body, signal, 'sse');
    if (res.status !== 200) expectStatus(res, 200, await readJson(res));
    const type = res.headers.get('content-type') ?? '';
    if (!type.startsWith('text/event-stream')) fail(`content-type is "${type}", expected text/event-stream`);
    const payloads = await readSse(res);
    if (payloads.at(-1) !== '[DONE]') fail(`the stream did not end with data: [DONE] (${payloads.length} events)`);
    let content = '';
    let finishing: Record<string, unknown> | null = null;
    for (const payload of payloads.slice(0, -1)) {
      let chunk: unknown;
      try {
        chunk = JSON.parse(payload);
      } catch {
        fail(`an event is not JSON: ${snippet(payload)}`);
      }
      if (!isObject(chunk)) fail(`an event is not a JSON object: ${snippet(payload)}`);
      if (isObject(chunk.error)) fail(`the stream reported an error: ${String(chunk.error.message)}`);
      const choice = Array.isArray(chunk.choices) && isObject(chunk.choices[0]) ? chunk.choices[0] : null;
      if (choice === null) continue;
      const delta = isObject(choice.delta) ? choice.delta : {};
      if (typeof delta.content === 'string') content += delta.content;
      if (choice.finish_reason) finishing = chunk;
    }
    if (content.length === 0) fail('the streamed content is empty');
    if (finishing === null) fail('no chunk carried a finish_reason');
    const mode = expectDisagg(finishing.disagg, 'the finishing chunk');
    return `${payloads.length - 1} chunks, ${content.length} characters, ${mode}`;
  });

  const rejects = (name: string, body: () => string, status: string): Promise<void> =>
    check(name, async (signal) => {
      const res = await request(o, 'POST', '/v1/chat/completions', body(), signal);
      const json = await readJson(res);
      if (res.status < 400 || res.status >= 500) fail(`HTTP ${res.status}, expected ${status}`);
      // These say nothing about input validation: the request was turned away before it was read.
      if ([401, 403, 429].includes(res.status)) fail(`HTTP ${res.status} (expected ${status}): ${readMessage(json)}`);
      const error = json.error;
      if (!isObject(error) || !['message', 'type', 'param', 'code'].every((k) => k in error)) {
        fail(`HTTP ${res.status} but not in the error format {"error": {message, type, param, code}}`);
      }
      if (typeof error.message !== 'string' || error.message === '') fail('error.message is empty');
      return `HTTP ${res.status} ${String(error.type)}: ${snippet(error.message)}`;
    });

  await rejects('rejects invalid JSON', () => '{"model": ', '400');
  await rejects(
    'rejects max_tokens: 0',
    () => JSON.stringify({ model: needModel(), messages: PROMPT, max_tokens: 0 }),
    '400',
  );
  await rejects(
    'rejects an unknown model',
    () => JSON.stringify({ model: 'no-such-model-smoke', messages: PROMPT, max_tokens: 4 }),
    '404',
  );

  const table = plainTable(['check', 'result', 'detail', 'ms']);
  for (const r of results) table.push([r.check, r.ok ? 'PASS' : 'FAIL', r.detail, ms(r.ms)]);
  const passed = results.filter((r) => r.ok).length;
  process.stdout.write(`smoke test of ${o.base}\n${table.toString()}\n`);
  process.stdout.write(`${passed} of ${results.length} checks passed\n`);
  return passed === results.length ? 0 : EXIT_FAILED;
}

process.exitCode = await main();
