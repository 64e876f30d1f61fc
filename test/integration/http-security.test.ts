/**
 * Two security properties of the API: prompt text is bounded in characters before any tokenizer
 * work (embedded server and Lambda API alike), and the embedded server never logs prompts or
 * completions, only error lines.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../lib/adapters/backend-reference';
import { llama3Tokenizer } from '../../lib/adapters/tokenizer-llama3';
import type { GenerationBackend } from '../../lib/core/ports';
import { normalizePath } from '../../lib/core/api/http-edge';
import { startServer, type RunningServer } from '../../lib/local/server';
import { apiEvent, createStack } from './lambda-fixtures';

const API_KEY = 'security-key';
const MODEL = 'llama-3.3-70b';
const LIMITS = { maxPromptTokens: 64, maxOutputTokens: 32, defaultMaxTokens: 8 };
/** maxPromptTokens × 8. */
const CHAR_LIMIT = 512;
const headers = { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` };

const servers: RunningServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(options: Parameters<typeof startServer>[0] = {}): Promise<RunningServer> {
  const server = await startServer({ port: 0, engine: { timeScale: 0 }, apiKey: API_KEY, limits: LIMITS, ...options });
  servers.push(server);
  return server;
}

function post(server: RunningServer, path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
    signal: signal ?? AbortSignal.timeout(15_000),
  });
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

describe('prompt character limit (maxPromptTokens × 8), checked before tokenizing', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await serve();
  });

  it('a prompt one character over is a 400 naming the character and token limits, without a token count', async () => {
    for (const [path, body, param] of [
      ['/v1/completions', { model: MODEL, prompt: 'a'.repeat(CHAR_LIMIT + 1) }, 'prompt'],
      [
        '/v1/chat/completions',
        {
          model: MODEL,
          messages: [
            { role: 'system', content: 'a'.repeat(CHAR_LIMIT / 2) },
            { role: 'user', content: 'b'.repeat(CHAR_LIMIT / 2 + 1) },
          ],
        },
        'messages',
      ],
    ] as const) {
      const res = await post(server, path, body);
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as ErrorBody;
      expect(error).toMatchObject({ type: 'invalid_request_error', param, code: 'context_length_exceeded' });
      // Refused on characters: the message has no token count, because nothing was tokenized.
      expect(error.message).toBe(
        `prompt text is ${CHAR_LIMIT + 1} characters; this server accepts at most 64 prompt tokens, ` +
          `so at most ${CHAR_LIMIT} characters of prompt text (8 per token, checked before tokenizing)`,
      );
    }
  });

  it('a prompt at the character limit is tokenized, and refused on its token count instead', async () => {
    const res = await post(server, '/v1/completions', { model: MODEL, prompt: 'ab '.repeat(CHAR_LIMIT / 3) });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as ErrorBody;
    expect(error.code).toBe('context_length_exceeded');
    expect(error.message).toMatch(/^prompt is \d+ tokens; this server accepts at most 64 prompt tokens/);
  });

  it('a million-character prompt under the 1 MiB body limit is refused on characters, never tokenized', async () => {
    const res = await post(server, '/v1/completions', { model: MODEL, prompt: 'word '.repeat(200_000) });
    expect(res.status).toBe(400);
    // A tokenized prompt would be refused as "prompt is N tokens"; this one never got that far.
    expect(((await res.json()) as ErrorBody).error.message).toMatch(/^prompt text is 1,000,000 characters/);
  });

  it('the Lambda API uses the same parser, so it refuses the same prompt before creating a request', async () => {
    const stack = await createStack({ env: { DISAGG_MAX_PROMPT_TOKENS: '64' } });
    const res = await stack.api(
      apiEvent('POST', '/v1/chat/completions', {
        body: { model: MODEL, messages: [{ role: 'user', content: 'c'.repeat(CHAR_LIMIT + 1) }] },
      }),
    );
    expect(res.statusCode).toBe(400);
    const { error } = JSON.parse(res.body) as ErrorBody;
    expect(error.code).toBe('context_length_exceeded');
    expect(error.message).toMatch(/^prompt text is 513 characters/);
    expect(stack.invoked).toEqual([]);
  });
});

/** The reference backend, except that a request with seed 13 fails in prefill: an error path that logs. */
function failingOnSeed13(): GenerationBackend {
  const inner = new ReferenceBackend({ tokenizer: llama3Tokenizer() });
  return {
    name: inner.name,
    prefill: (ids, sampling) =>
      sampling.seed === 13 ? Promise.reject(new Error('injected prefill failure')) : inner.prefill(ids, sampling),
    startDecode: (input) => inner.startDecode(input),
  };
}

describe('prompts and completions are not logged', () => {
  const MARKER = 'ZEBRA-QUASAR-7731';
  const prompt = `${MARKER} explain why prefill and decode run on different hardware`;
  const lines: string[] = [];
  let server: RunningServer;
  beforeAll(async () => {
    server = await serve({ log: (line) => lines.push(line), generationBackend: failingOnSeed13() });
  });

  it('the log holds only error lines, none with the prompt or any completion text, on success and error paths', async () => {
    const completions: string[] = [];
    // Success: chat and completions, JSON and streamed.
    for (const stream of [false, true]) {
      const chat = await post(server, '/v1/chat/completions', {
        model: MODEL,
        messages: [{ role: 'user', content: prompt }],
        max_tokens: 12,
        stream,
      });
      const text = await post(server, '/v1/completions', { model: MODEL, prompt, max_tokens: 12, stream });
      for (const res of [chat, text]) {
        expect(res.status).toBe(200);
        const body = await res.text();
        if (!stream) {
          const json = JSON.parse(body) as { choices: { message?: { content: string }; text?: string }[] };
          completions.push(json.choices[0]!.message?.content ?? json.choices[0]!.text!);
        } else {
          let content = '';
          for (const event of body.split('\n\n').filter((e) => e.startsWith('data: {'))) {
            const chunk = JSON.parse(event.slice(6)) as {
              choices: { delta?: { content?: string }; text?: string }[];
            };
            content += chunk.choices[0]?.delta?.content ?? chunk.choices[0]?.text ?? '';
          }
          completions.push(content);
        }
      }
    }
    // Error paths: a prefill that fails (logged), an invalid request echoing nothing, a client that goes away.
    const failed = await post(server, '/v1/chat/completions', {
      model: MODEL,
      messages: [{ role: 'user', content: prompt }],
      seed: 13,
    });
    expect(failed.status).toBe(500);
    expect(await failed.text()).not.toContain(MARKER);
    const invalid = await post(server, '/v1/completions', { model: MODEL, prompt, temperature: 9 });
    expect(invalid.status).toBe(400);
    const controller = new AbortController();
    const gone = await post(
      server,
      '/v1/completions',
      { model: MODEL, prompt, max_tokens: 32, stream: true },
      controller.signal,
    );
    expect(gone.status).toBe(200);
    controller.abort();
    await new Promise((resolve) => setTimeout(resolve, 200));

    // The failure was logged, so the log function really was in use; nothing else was.
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes('injected prefill failure'))).toBe(true);
    for (const line of lines) expect(line).toMatch(/^(error while|internal error)/);
    const log = lines.join('\n');
    expect(log).not.toContain(MARKER);
    expect(log).not.toContain('different hardware');
    for (const completion of completions) {
      expect(completion.trim().length).toBeGreaterThan(0);
      expect(log).not.toContain(completion.trim());
    }
  });
});

describe('the edge of every request: path, key, CORS', () => {
  it('strips trailing slashes in linear time: a path of a million slashes is normalised in well under a second', () => {
    expect(normalizePath('http://h/x' + '/'.repeat(15_000))).toBe('/x');
    expect(normalizePath('http://h/v1/models/?a=/b//')).toBe('/v1/models');
    expect(normalizePath('http://h')).toBe('/');
    expect(normalizePath('http://h/////')).toBe('/');
    // A quadratic scan (the /\/+$/ regex) of 10^6 slashes takes minutes; a linear one, milliseconds.
    const started = performance.now();
    expect(normalizePath('http://h/x' + '/'.repeat(1_000_000) + 'y' + '/'.repeat(1_000_000))).toHaveLength(1_000_003);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('answers /x and 15,000 slashes with a 404 before authentication, and /healthz stays fast meanwhile', async () => {
    const server = await serve();
    const hostile = Array.from({ length: 100 }, () =>
      fetch(`${server.url}/x${'/'.repeat(15_000)}`, { signal: AbortSignal.timeout(15_000) }),
    );
    const answers = await Promise.all(hostile);
    for (const res of answers) {
      expect(res.status).toBe(404);
      const body = (await res.json()) as ErrorBody;
      expect(body.error.code).toBe('route_not_found');
      // The path is cut short in the message, not echoed whole.
      expect(body.error.message.length).toBeLessThan(300);
    }
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('takes the key as Bearer in any case or as x-api-key, and refuses anything else', async () => {
    const server = await serve();
    const status = async (h: Record<string, string>) =>
      (await fetch(`${server.url}/v1/models`, { headers: h, signal: AbortSignal.timeout(5000) })).status;
    expect(await status({ authorization: `Bearer ${API_KEY}` })).toBe(200);
    expect(await status({ authorization: `bearer ${API_KEY}` })).toBe(200);
    expect(await status({ authorization: `BEARER   ${API_KEY}` })).toBe(200);
    expect(await status({ 'x-api-key': API_KEY })).toBe(200);
    expect(await status({})).toBe(401);
    expect(await status({ authorization: `Basic ${API_KEY}` })).toBe(401);
    expect(await status({ 'x-api-key': `${API_KEY}x` })).toBe(401);
    expect(await status({ authorization: `Bearer ${API_KEY} ${API_KEY}` })).toBe(401);
  });

  it('sends CORS headers only for allowed origins, and answers a preflight without a key', async () => {
    const server = await serve({ corsOrigins: ['http://localhost:3000'] });
    const preflight = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://localhost:3000',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    const allowed = String(preflight.headers.get('access-control-allow-headers')).toLowerCase();
    for (const header of ['authorization', 'x-api-key', 'x-request-id', 'content-type']) {
      expect(allowed).toContain(header);
    }
    const other = await fetch(`${server.url}/v1/models`, {
      headers: { origin: 'http://evil.example', authorization: `Bearer ${API_KEY}` },
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const plain = await serve();
    const none = await fetch(`${plain.url}/v1/models`, {
      headers: { origin: 'http://localhost:3000', authorization: `Bearer ${API_KEY}` },
    });
    expect(none.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('a prompt at the character limit in an unspaced script is a 400, never a 500, in every family', () => {
  // 65,536 characters: 8,192 prompt tokens × 8, the limit checked before tokenizing, so these reach the tokenizer.
  const scripts = {
    chinese: '预填充在一个芯片上运行解码在另一个芯片上运行键值缓存在两者之间传递',
    'japanese, korean and thai': 'プレフィルとデコードを分けると프리필과디코드를분리하면การแยกพรีฟิลและดีโคด',
  };
  // gpt-oss-120b's weights need six CS-3s.
  const models = [
    ['llama-3.3-70b', 'cs3x4'],
    ['llama-2-70b', 'cs3x4'],
    ['mixtral-8x7b', 'cs3x4'],
    ['qwen3-32b', 'cs3x4'],
    ['gpt-oss-120b', 'cs3x8'],
  ];

  it.each(models)(
    '%s',
    async (model, decode) => {
      const server = await startServer({ port: 0, engine: { timeScale: 0, model, decode }, apiKey: API_KEY });
      servers.push(server);
      for (const [script, sentence] of Object.entries(scripts)) {
        const content = sentence.repeat(Math.ceil(65_536 / sentence.length)).slice(0, 65_536);
        const res = await post(server, '/v1/chat/completions', { model, messages: [{ role: 'user', content }] });
        const body = (await res.json()) as ErrorBody;
        expect([script, res.status, body.error.code]).toEqual([script, 400, 'context_length_exceeded']);
        expect(body.error.message).toMatch(
          /^prompt is [\d,]+ tokens; this server accepts at most [\d,]+ prompt tokens/,
        );
      }
    },
    60_000,
  );
});
