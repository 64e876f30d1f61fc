/**
 * HTTP fuzz of the embedded API: 1,100 generated requests from a seeded PRNG (the same every run),
 * sent with raw node:http (and raw sockets for broken framing), one connection each so a broken
 * request can't poison the next. Every one must get a 4xx in the API's error format, never a 5xx, a
 * hang or a crash; afterwards the server is healthy and still serves a valid request.
 */
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../lib/local/server';

const API_KEY = 'fuzz-key';
const MODEL = 'llama-3.3-70b';
const LIMITS = { maxPromptTokens: 64, maxOutputTokens: 16, defaultMaxTokens: 4 };
/** Prompt text beyond this is refused before tokenizing (maxPromptTokens × 8). */
const MAX_PROMPT_CHARS = LIMITS.maxPromptTokens * 8;
const MAX_BODY_BYTES = 64 * 1024;
const SEED = 0x5eed;
/** A request unanswered after this is a hang. */
const TIMEOUT_MS = 5000;
const PARALLEL = 16;

const CHAT = '/v1/chat/completions';
const COMPLETIONS = '/v1/completions';
const AUTH = { authorization: `Bearer ${API_KEY}` };
const JSON_HEADERS = { 'content-type': 'application/json', ...AUTH };

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

type Rand = () => number;

/** mulberry32: deterministic, so a failing case is the same case on every run. */
function prng(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (rand: Rand, lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(rand: Rand, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

interface Case {
  readonly category: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Buffer | string;
  /** Send the body in pieces without Content-Length (chunked). */
  readonly chunked?: boolean;
  /** Bytes written to a raw socket instead (broken framing); the socket is half-closed after them. */
  readonly raw?: string;
  /** When the case knows it: the exact status, and the param the error must name. */
  readonly status?: number;
  readonly param?: string;
  readonly code?: string;
}

const chatBody = (extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  messages: [{ role: 'user', content: 'hello there' }],
  max_tokens: 2,
  ...extra,
});
const completionBody = (extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  prompt: 'hello there',
  max_tokens: 2,
  ...extra,
});

/** Something that makes an otherwise valid body a 4xx whatever the noise around it is. */
function defect(rand: Rand): Record<string, unknown> {
  return pick(rand, [{ model: 'no-such-model' }, { max_tokens: 0 }, { n: 2 }, { temperature: 3 }, { top_p: 0 }]);
}

function post(category: string, endpoint: 'chat' | 'completion', body: unknown, extra: Partial<Case> = {}): Case {
  return {
    category,
    method: 'POST',
    path: endpoint === 'chat' ? CHAT : COMPLETIONS,
    headers: JSON_HEADERS,
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    ...extra,
  };
}

const ODD = [
  '\ud800', // lone high surrogate
  '\udfff', // lone low surrogate
  '\u202e', // right-to-left override
  '\u200f', // right-to-left mark
  '\u200b\u200c\u200d\u2060', // zero-width space, non-joiner, joiner, word joiner
  '\ufeff', // byte-order mark
  '👩‍👩‍👧', // ZWJ sequence
  '🇺🇳',
  '👍🏽',
  'e\u0301\u0301\u0301', // stacked combining marks
  '\u0000',
  '\u0007',
  'שָׁלוֹם',
  'مرحبا',
  '漢字かなカナ',
  'ｆｕｌｌｗｉｄｔｈ',
  '\uffff',
  '\u{10ffff}',
  'plain ',
];

function oddString(rand: Rand, units: number): string {
  let s = '';
  while (s.length < units) s += pick(rand, ODD);
  return s.slice(0, units);
}

/** A JSON value of a random type, sometimes nested. */
function junk(rand: Rand, depth = 0): unknown {
  const kind = int(rand, 0, depth > 2 ? 5 : 7);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rand() < 0.5;
    case 2:
      return pick(rand, [0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 2, 5e-324, 42]);
    case 3:
      return oddString(rand, int(rand, 0, 12));
    case 4:
      return '';
    case 5:
      return 'x'.repeat(int(rand, 1, 64));
    case 6:
      return Array.from({ length: int(rand, 0, 3) }, () => junk(rand, depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: int(rand, 0, 3) }, (_, i) => [`k${i}`, junk(rand, depth + 1)]));
  }
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** A value whose JSON type is none of `allowed` (null is "absent" for optional fields, so never used). */
function wrongType(rand: Rand, allowed: readonly string[]): unknown {
  for (;;) {
    const v = junk(rand);
    if (v !== null && !allowed.includes(typeOf(v))) return v;
  }
}

/** Replaces the JSON string "@RAW@" with raw text (for numbers JSON.stringify can't write). */
function withRaw(body: Record<string, unknown>, raw: string): string {
  return JSON.stringify(body).replace('"@RAW@"', raw);
}

const generators: { category: string; count: number; make: (rand: Rand, i: number) => Case }[] = [
  {
    category: 'malformed or truncated JSON',
    count: 150,
    make: (rand) => {
      const endpoint = rand() < 0.5 ? 'chat' : 'completion';
      const text = JSON.stringify(endpoint === 'chat' ? chatBody({ stream: rand() < 0.5 }) : completionBody());
      const mutations: (() => string)[] = [
        () => text.slice(0, int(rand, 0, text.length - 1)),
        () => {
          const at = int(rand, 0, text.length - 1);
          return text.slice(0, at) + text.slice(at + 1);
        },
        () => {
          const at = int(rand, 0, text.length);
          return (
            text.slice(0, at) + pick(rand, ['{', '}', '[', ']', '"', ',', ':', '\\', '\u0001', 'x']) + text.slice(at)
          );
        },
        () => text.replaceAll('"', "'"),
        () => `${text.slice(0, -1)},}`,
        () => `${text} garbage`,
        () => text.replace('2', 'NaN'),
        () => `// comment\n${text}`,
        () => `\ufeff${text}`,
        () => pick(rand, ['', ' ', '\n\t', 'null null', '{', '"', 'undefined', '{"model":']),
      ];
      let candidate = pick(rand, mutations)();
      // Some mutations can land on valid JSON (a deleted digit); keep only what is broken.
      if (parses(candidate)) candidate = text.slice(0, text.length - 1);
      return post('malformed or truncated JSON', endpoint, candidate, { status: 400, code: 'invalid_json' });
    },
  },
  {
    category: 'deep nesting (up to 10,000 levels)',
    count: 40,
    make: (rand, i) => {
      const depth = i % 4 === 0 ? 10_000 : int(rand, 100, 10_000);
      const arrays = '['.repeat(depth) + ']'.repeat(depth);
      const objects = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
      const nest = rand() < 0.5 ? arrays : objects;
      const where = int(rand, 0, 3);
      if (where === 0) return post('deep nesting (up to 10,000 levels)', 'chat', nest, { status: 400 });
      if (where === 1) {
        return post('deep nesting (up to 10,000 levels)', 'chat', withRaw(chatBody({ messages: '@RAW@' }), nest), {
          status: 400,
          param: 'messages',
        });
      }
      if (where === 2) {
        return post(
          'deep nesting (up to 10,000 levels)',
          'completion',
          withRaw(completionBody({ prompt: '@RAW@' }), nest),
          {
            status: 400,
            param: 'prompt',
          },
        );
      }
      // An unknown field is ignored, so the defect decides; the nesting must still not hurt.
      return post(
        'deep nesting (up to 10,000 levels)',
        'chat',
        withRaw(chatBody({ ...defect(rand), extra: '@RAW@' }), nest),
      );
    },
  },
  {
    category: 'huge and odd numbers',
    count: 120,
    make: (rand) => {
      const raw = pick(rand, [
        '1e308',
        '-1e308',
        '1e309',
        '-1e309',
        '-0',
        '"NaN"',
        '"Infinity"',
        '-1',
        '1.5',
        '1e-320',
        '9007199254740993',
        '123456789012345678901234567890',
        '"1"',
        'NaN',
        'Infinity',
        '0x10',
      ]);
      const validJson = parses(raw);
      // Every value above is invalid for these three; temperature, top_p and seed accept some, so add an unknown model.
      const field = pick(rand, ['max_tokens', 'max_completion_tokens', 'n', 'temperature', 'top_p', 'seed']);
      const strict = ['max_tokens', 'max_completion_tokens', 'n'].includes(field);
      const body = chatBody({ ...(strict ? {} : { model: 'no-such-model' }), [field]: '@RAW@' });
      if (field === 'max_completion_tokens') delete (body as Record<string, unknown>).max_tokens;
      const expectation: Partial<Case> = !validJson
        ? { status: 400, code: 'invalid_json' }
        : strict
          ? { status: 400, param: field }
          : {};
      return post('huge and odd numbers', 'chat', withRaw(body, raw), expectation);
    },
  },
  {
    category: 'huge strings (up to the body limit)',
    count: 60,
    make: (rand) => {
      // At least 4 KiB: past every string limit (1,024 for stop and user) even as 3-byte characters.
      const size = int(rand, 4096, MAX_BODY_BYTES - 256);
      const huge = rand() < 0.7 ? 'x'.repeat(size) : '€'.repeat(Math.ceil(size / 3));
      const where = pick(rand, ['prompt', 'content', 'model', 'role', 'stop', 'user']);
      if (where === 'prompt')
        return post('huge strings (up to the body limit)', 'completion', completionBody({ prompt: huge }), {
          status: 400,
          param: 'prompt',
        });
      const body =
        where === 'content'
          ? chatBody({ messages: [{ role: 'user', content: huge }] })
          : where === 'role'
            ? chatBody({ messages: [{ role: huge, content: 'hi' }] })
            : chatBody({ [where]: huge });
      const param = where === 'content' ? 'messages' : where === 'role' ? 'messages[0].role' : where;
      return post('huge strings (up to the body limit)', 'chat', body, { status: 400, param });
    },
  },
  {
    category: 'odd unicode',
    count: 120,
    make: (rand, i) => {
      const where = i % 6;
      if (where <= 1) {
        // Under the character limit but over the token limit: this reaches the tokenizer, then is refused.
        const text = oddString(rand, int(rand, MAX_PROMPT_CHARS - 120, MAX_PROMPT_CHARS));
        return where === 0
          ? post('odd unicode', 'completion', completionBody({ prompt: text }), {
              status: 400,
              param: 'prompt',
              code: 'context_length_exceeded',
            })
          : post(
              'odd unicode',
              'chat',
              chatBody({
                messages: [
                  { role: 'system', content: text },
                  { role: 'user', content: 'x' },
                ],
              }),
              {
                status: 400,
                param: 'messages',
                code: 'context_length_exceeded',
              },
            );
      }
      if (where === 2)
        return post('odd unicode', 'chat', chatBody({ model: oddString(rand, int(rand, 1, 40)) }), {
          status: 404,
          param: 'model',
        });
      if (where === 3) {
        return post(
          'odd unicode',
          'chat',
          chatBody({ messages: [{ role: oddString(rand, int(rand, 1, 20)), content: 'hi' }] }),
          {
            status: 400,
            param: 'messages[0].role',
          },
        );
      }
      if (where === 4) {
        // Invalid UTF-8 bytes inside a JSON string: decoded as U+FFFD, a prompt over the token limit.
        const bad = [
          Buffer.from([0xff, 0xfe]),
          Buffer.from([0xc0, 0x80]),
          Buffer.from([0xed, 0xa0, 0x80]),
          Buffer.from([0xe2, 0x82]),
        ];
        const parts: Buffer[] = [Buffer.from('{"model":"' + MODEL + '","max_tokens":2,"prompt":"')];
        for (let k = 0; k < 120; k++) parts.push(pick(rand, bad), Buffer.from(pick(rand, ['a', ' ', 'é'])));
        parts.push(Buffer.from('"}'));
        return post('odd unicode', 'completion', Buffer.concat(parts), {
          status: 400,
          param: 'prompt',
          code: 'context_length_exceeded',
        });
      }
      return post(
        'odd unicode',
        'chat',
        chatBody({ ...defect(rand), [oddString(rand, int(rand, 1, 16))]: junk(rand) }),
      );
    },
  },
  {
    category: 'wrong content types',
    count: 80,
    make: (rand) => {
      const type = pick(rand, [
        'text/plain',
        'multipart/form-data; boundary=fuzz',
        null,
        'application/x-www-form-urlencoded',
        'application/jsonx',
        'application/json-seq',
        'text/json',
        'application/xml',
        '',
        'application/ld+json',
        'json',
        '*/*',
        'application/*',
        'text/plain; charset=utf-8',
      ]);
      const valid = JSON.stringify(chatBody());
      const body = type?.startsWith('multipart')
        ? `--fuzz\r\nContent-Disposition: form-data; name="body"\r\n\r\n${valid}\r\n--fuzz--\r\n`
        : type === 'application/x-www-form-urlencoded'
          ? `body=${encodeURIComponent(valid)}`
          : valid;
      const headers: Record<string, string> = { ...AUTH };
      if (type !== null) headers['content-type'] = type;
      return { ...post('wrong content types', 'chat', body), headers, status: 415 };
    },
  },
  {
    category: 'unknown fields',
    count: 80,
    make: (rand, i) => {
      if (i % 10 === 0) {
        // JSON.parse makes __proto__ an own key: it must not supply model and messages through the prototype.
        return post('unknown fields', 'chat', '{"__proto__":' + JSON.stringify(chatBody()) + '}', {
          status: 400,
          param: 'model',
        });
      }
      const names = [
        '__proto__',
        'constructor',
        'prototype',
        'toString',
        'logprobs',
        'functions',
        'tools',
        'x'.repeat(2000),
        '',
        ' ',
        'model ',
        'MODEL',
      ];
      const extra: Record<string, unknown> = {};
      for (let k = int(rand, 1, 5); k > 0; k--) extra[pick(rand, names)] = junk(rand);
      const text = JSON.stringify({ ...(rand() < 0.5 ? chatBody() : completionBody()), ...extra, ...defect(rand) });
      // Object spread skips __proto__ as a key; put it in the text itself half the time.
      const withProto = rand() < 0.5 ? text.replace('{', `{"__proto__":${JSON.stringify(junk(rand) ?? {})},`) : text;
      return post('unknown fields', text.includes('"messages"') ? 'chat' : 'completion', withProto);
    },
  },
  {
    category: 'bad max_tokens',
    count: 80,
    make: (rand) => {
      const value = pick(rand, [
        -1,
        -(2 ** 31),
        0,
        LIMITS.maxOutputTokens + 1,
        1e6,
        2 ** 31,
        2 ** 53,
        1e21,
        0.5,
        1.0001,
        15.9999,
        '10',
        true,
        [5],
        {},
        '',
      ]);
      const field = rand() < 0.75 ? 'max_tokens' : 'max_completion_tokens';
      if (field === 'max_tokens' && rand() < 0.5) {
        return post('bad max_tokens', 'completion', completionBody({ max_tokens: value }), {
          status: 400,
          param: 'max_tokens',
        });
      }
      const body = chatBody({ [field]: value });
      if (field === 'max_completion_tokens') delete (body as Record<string, unknown>).max_tokens;
      return post('bad max_tokens', 'chat', body, { status: 400, param: field });
    },
  },
  {
    category: 'wrong types everywhere',
    count: 150,
    make: (rand) => {
      const target = pick(rand, [
        { path: ['model'], ok: ['string'] },
        { path: ['messages'], ok: ['array'] },
        { path: ['messages', 0], ok: ['object'] },
        { path: ['messages', 0, 'role'], ok: ['string'] },
        { path: ['messages', 0, 'content'], ok: ['string', 'array'] },
        { path: ['temperature'], ok: ['number'] },
        { path: ['top_p'], ok: ['number'] },
        { path: ['seed'], ok: ['number'] },
        { path: ['n'], ok: ['number'] },
        { path: ['stream'], ok: ['boolean'] },
        { path: ['stream_options'], ok: ['object'] },
        { path: ['stop'], ok: ['string', 'array'] },
        { path: ['user'], ok: ['string'] },
        { path: ['disagg'], ok: ['object'] },
        { path: ['prompt'], ok: ['string', 'array'] },
      ] as const);
      const endpoint = target.path[0] === 'prompt' ? 'completion' : 'chat';
      const body = (endpoint === 'chat' ? chatBody() : completionBody()) as Record<string, unknown>;
      const value = wrongType(rand, target.ok);
      if (target.path.length === 1) body[target.path[0]] = value;
      else if (target.path.length === 2) body.messages = [value];
      else body.messages = [{ role: 'user', content: 'hi', [target.path[2]]: value }];
      // The param is the field, or a path inside it when the wrong value is a container.
      return post('wrong types everywhere', endpoint, body, { status: 400, param: String(target.path[0]) });
    },
  },
  {
    category: 'oversized bodies',
    count: 40,
    make: (rand, i) => {
      const size = int(rand, MAX_BODY_BYTES + 1, 4 * MAX_BODY_BYTES);
      const body = JSON.stringify(completionBody({ prompt: 'y'.repeat(size) }));
      return post('oversized bodies', 'completion', body, {
        chunked: i % 2 === 1,
        status: 413,
        code: 'body_too_large',
      });
    },
  },
  {
    category: 'wrong methods and paths',
    count: 80,
    make: (rand, i) => {
      const headers = JSON_HEADERS;
      if (i % 2 === 0) {
        const path = pick(rand, [
          CHAT,
          COMPLETIONS,
          `${CHAT}/`,
          `${COMPLETIONS}?stream=true`,
          '/v1/models',
          '/healthz',
        ]);
        const allowed = path === '/v1/models' || path === '/healthz' ? 'GET' : 'POST';
        // HEAD is GET without the body (RFC 9110 9.3.2), so it is allowed wherever GET is.
        const method = pick(
          rand,
          ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'POST'].filter(
            (m) => m !== allowed && !(m === 'HEAD' && allowed === 'GET'),
          ),
        );
        return {
          category: 'wrong methods and paths',
          method,
          path,
          headers,
          body: JSON.stringify(chatBody()),
          status: 405,
        };
      }
      const path = pick(rand, [
        '/',
        '/v1',
        '/v2/chat/completions',
        `${CHAT}/extra`,
        '/v1/chat',
        '/../etc/passwd',
        '/v1/%2e%2e/%2e%2e/etc/passwd',
        '//v1/completions',
        '/v1/requests/a/b',
        `/v1/requests/${'a'.repeat(129)}`,
        `/v1/requests/chatcmpl-${'0'.repeat(8)}`,
        `/v1/${'x'.repeat(4000)}`,
        `/v1/${percentEncoded(oddString(rand, 8))}`,
        '/v1/%ff%fe%zz%',
        '/v1/requests/%00',
        '/index.html',
      ]);
      // A well-formed request id is a real route (GET, DELETE): there, only an unknown id makes the 404.
      const method = pick(
        rand,
        path.startsWith('/v1/requests/chatcmpl-') ? ['GET', 'DELETE'] : ['GET', 'POST', 'DELETE'],
      );
      return {
        category: 'wrong methods and paths',
        method,
        path,
        headers,
        body: JSON.stringify(chatBody()),
        status: 404,
      };
    },
  },
  {
    category: 'missing or wrong API key',
    count: 40,
    make: (rand) => {
      const value = pick(rand, [
        null,
        'Bearer wrong',
        `Basic ${API_KEY}`,
        `Bearer ${API_KEY}x`,
        // The scheme is case-insensitive (RFC 9110), so `bearer <key>` is the right key, not a wrong one.
        `bearer ${API_KEY.slice(1)}`,
        'Bearer',
        `Bearer ${API_KEY} extra`,
        `Bearer ${'k'.repeat(4000)}`,
      ]);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (value !== null) headers.authorization = value;
      return { ...post('missing or wrong API key', 'chat', chatBody()), headers, status: 401, code: 'invalid_api_key' };
    },
  },
  {
    category: 'broken HTTP framing (raw socket)',
    count: 60,
    make: (rand) => {
      const body = JSON.stringify(completionBody());
      const head = (extra: string, requestLine = `POST ${COMPLETIONS} HTTP/1.1`) =>
        `${requestLine}\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\n${extra}\r\n`;
      const raw = pick(rand, [
        head(`Content-Length: ${body.length + int(rand, 1, 10_000)}\r\n`) + body,
        head(`Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n`) + body,
        head('Transfer-Encoding: chunked\r\n') + `zz\r\n${body}\r\n0\r\n\r\n`,
        head('Transfer-Encoding: chunked\r\n') + `${(body.length + 50).toString(16)}\r\n${body}`,
        head(`Content-Length: 5\r\nContent-Length: ${body.length}\r\n`) + body,
        head('Content-Length: -1\r\n') + body,
        head('Content-Length: abc\r\n') + body,
        head('Broken header line\r\n') + body,
        head(`X-Big: ${'a'.repeat(20_000)}\r\n`),
        'FOO / HTTP/1.1\r\nHost: x\r\n\r\n',
        'garbage\r\n\r\n',
        `POST ${COMPLETIONS} HTTP/9.9\r\nHost: x\r\n\r\n`,
        `\u0000\u0001\u0002\r\n\r\n`,
        head(`Content-Length: ${body.length}\r\n`).replace('Host: x', 'Ho st: x') + body,
      ]);
      return { category: 'broken HTTP framing (raw socket)', method: 'POST', path: COMPLETIONS, headers: {}, raw };
    },
  },
];

/** Every UTF-8 byte percent-encoded (encodeURIComponent refuses lone surrogates; this writes them as U+FFFD). */
function percentEncoded(text: string): string {
  return [...Buffer.from(text)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function generate(): Case[] {
  const rand = prng(SEED);
  return generators.flatMap((g) => Array.from({ length: g.count }, (_, i) => g.make(rand, i)));
}

// ---------------------------------------------------------------------------------------------
// Sending and checking
// ---------------------------------------------------------------------------------------------

interface Answer {
  status: number | null;
  headers: IncomingHttpHeaders;
  body: string;
  /** No response: how the connection ended. */
  ended?: 'closed' | 'timeout' | string;
}

function send(server: RunningServer, c: Case): Promise<Answer> {
  const { hostname, port } = new URL(server.url);
  if (c.raw !== undefined) return sendRaw(hostname, Number(port), c.raw);
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { ...c.headers };
    const body = c.body === undefined ? undefined : Buffer.from(c.body);
    if (body && !c.chunked) headers['content-length'] = body.length;
    const req = request(
      { host: hostname, port, method: c.method, path: c.path, headers, agent: false, timeout: TIMEOUT_MS },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? null,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', (e) =>
          resolve({ status: res.statusCode ?? null, headers: res.headers, body: '', ended: e.message }),
        );
      },
    );
    req.on('timeout', () => {
      req.destroy();
      resolve({ status: null, headers: {}, body: '', ended: 'timeout' });
    });
    req.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ status: null, headers: {}, body: '', ended: e.code ?? e.message }),
    );
    if (body && c.chunked) for (let i = 0; i < body.length; i += 8192) req.write(body.subarray(i, i + 8192));
    else if (body) req.write(body);
    req.end();
  });
}

/** Writes the bytes, half-closes, and reads whatever comes back until the server closes. */
function sendRaw(host: string, port: number, payload: string): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ status: null, headers: {}, body: '', ended: 'timeout' });
    }, TIMEOUT_MS);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      if (text === '') return resolve({ status: null, headers: {}, body: '', ended: 'closed' });
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: IncomingHttpHeaders = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
    socket.write(payload, 'latin1');
    socket.end();
  });
}

/** What is wrong with the answer to a case, or null. */
function problem(c: Case, a: Answer): string | null {
  if (a.status === null) {
    // A raw socket the server closes without a word is a clean end; anything else (timeout, reset) is not.
    return c.raw !== undefined && a.ended === 'closed' ? null : `no response (${a.ended})`;
  }
  if (a.status < 400 || a.status >= 500) return `status ${a.status}: ${a.body.slice(0, 200)}`;
  if (c.status !== undefined && a.status !== c.status)
    return `status ${a.status}, expected ${c.status}: ${a.body.slice(0, 200)}`;
  if (c.method === 'HEAD') return null; // a HEAD response has no body
  if (!String(a.headers['content-type'] ?? '').startsWith('application/json'))
    return `content-type ${String(a.headers['content-type'])}`;
  let body: { error?: Record<string, unknown> };
  try {
    body = JSON.parse(a.body) as { error?: Record<string, unknown> };
  } catch {
    return `body is not JSON: ${a.body.slice(0, 200)}`;
  }
  const e = body.error;
  if (!e || Object.keys(body).join() !== 'error') return `body is not {"error": …}: ${a.body.slice(0, 200)}`;
  if (Object.keys(e).sort().join() !== 'code,message,param,type') return `error keys ${Object.keys(e).join()}`;
  if (typeof e.message !== 'string' || e.message === '') return 'error.message is empty';
  if (typeof e.type !== 'string') return 'error.type is not a string';
  if (e.param !== null && typeof e.param !== 'string') return 'error.param is neither null nor a string';
  if (e.code !== null && typeof e.code !== 'string') return 'error.code is neither null nor a string';
  if (c.param !== undefined && !(typeof e.param === 'string' && e.param.startsWith(c.param)))
    return `param ${String(e.param)}, expected ${c.param}: ${e.message}`;
  if (c.code !== undefined && e.code !== c.code) return `code ${String(e.code)}, expected ${c.code}: ${e.message}`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

let server: RunningServer;
const logLines: string[] = [];

beforeAll(async () => {
  server = await startServer({
    port: 0,
    engine: { timeScale: 0 },
    apiKey: API_KEY,
    limits: LIMITS,
    maxBodyBytes: MAX_BODY_BYTES,
    log: (line) => logLines.push(line),
  });
});

afterAll(async () => {
  await server.close();
});

async function validRequestSucceeds(): Promise<void> {
  const res = await fetch(`${server.url}${CHAT}`, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify(chatBody()),
    signal: AbortSignal.timeout(10_000),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { choices: { message: { content: string } }[] };
  expect(body.choices[0]!.message.content.length).toBeGreaterThan(0);
}

describe('HTTP fuzz: 1,100 generated bad requests (seeded, deterministic)', () => {
  const cases = generate();

  it('generates the same cases on every run, at least 1,000, in every category', () => {
    expect(cases.length).toBeGreaterThanOrEqual(1000);
    expect(JSON.stringify(generate())).toBe(JSON.stringify(cases));
    for (const g of generators) expect(cases.filter((c) => c.category === g.category)).toHaveLength(g.count);
  });

  it('every one gets a 4xx in the API error format, never a 5xx, a hang or a crash', { timeout: 120_000 }, async () => {
    await validRequestSucceeds();
    const problems: string[] = [];
    for (let i = 0; i < cases.length; i += PARALLEL) {
      const batch = cases.slice(i, i + PARALLEL);
      const answers = await Promise.all(batch.map((c) => send(server, c)));
      batch.forEach((c, k) => {
        const p = problem(c, answers[k]!);
        if (p !== null) problems.push(`#${i + k} ${c.category} (${c.method} ${c.path.slice(0, 60)}): ${p}`);
      });
    }
    expect(problems.slice(0, 20), `${problems.length} problems`).toEqual([]);
    // Only bad requests were sent: nothing reached the pipeline, so nothing was logged.
    expect(logLines).toEqual([]);
  });

  it('leaves the server healthy, idle, and serving a valid request', async () => {
    const health = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(5000) });
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({
      status: 'ok',
      prefillQueue: 0,
      decodeQueue: 0,
      decodeBatch: 0,
      dependencies: { store: { status: 'ok', latencyMs: 0 } },
    });
    await validRequestSucceeds();
  });
});
