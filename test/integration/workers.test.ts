/**
 * `serve --workers`: the prefill and decode stages in threads of their own behind the same HTTP API.
 * Same answers as one thread; a killed decode thread's requests are taken over (each token reaches the
 * client once, in order, the KV recomputed); a killed prefill thread's queued requests run on its
 * replacement; with Redis, every thread uses it and nothing is left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../lib/adapters/redis-connection';
import { startServer, type RunningServer, type ServeOptions } from '../../lib/local/server';
import type { StageThreads } from '../../lib/local/stage-threads';
import { expectNoLeaksThenClean, testRedisPrefix } from '../redis-test-keys';

const TIMEOUT = 120_000;
const short = [{ role: 'user', content: 'Why split prefill from decode, and what crosses between them?' }];
// Long enough that its KV blob goes through the KV store by reference rather than inline in the descriptor.
const long = [
  {
    role: 'user',
    content: Array.from({ length: 400 }, (_, k) => 'prefill decode wafer cache token handoff'.split(' ')[k % 6]).join(
      ' ',
    ),
  },
];
type Messages = typeof short;

function serve(options: ServeOptions): Promise<RunningServer> {
  return startServer({ port: 0, apiKey: null, ...options });
}

async function complete(
  url: string,
  maxTokens: number,
  messages: Messages = short,
): Promise<{ text: string; id: string }> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'llama-3.3-70b', messages, max_tokens: maxTokens, temperature: 0 }),
  });
  const body = (await res.json()) as { id: string; choices: { message: { content: string } }[] };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return { text: body.choices[0]!.message.content, id: body.id };
}

/** A streaming request; `onPiece` sees the pieces so far after each one arrives. */
async function stream(
  url: string,
  maxTokens: number,
  messages: Messages,
  onPiece: (pieces: string[]) => void = () => undefined,
): Promise<{ pieces: string[]; id: string }> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'llama-3.3-70b', messages, max_tokens: maxTokens, temperature: 0, stream: true }),
  });
  expect(res.status).toBe(200);
  const pieces: string[] = [];
  let id = '';
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body!) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const event = JSON.parse(line.slice(6)) as {
        id: string;
        choices: { delta: { content?: string } }[];
        error?: unknown;
      };
      expect(event.error).toBeUndefined();
      id = event.id;
      const content = event.choices[0]?.delta.content;
      if (content) {
        pieces.push(content);
        onPiece(pieces);
      }
    }
  }
  return { pieces, id };
}

async function drained(server: RunningServer): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const o = server.runtime.occupancy();
    if (o.prefillQueue + o.decodeQueue + o.decodeBatch === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  expect(server.runtime.occupancy()).toEqual({ prefillQueue: 0, decodeQueue: 0, decodeBatch: 0 });
  expect(await server.kv.count()).toBe(0);
}

describe('serve --workers, memory stores', () => {
  let single: RunningServer;
  let workers: RunningServer;
  beforeAll(async () => {
    [single, workers] = await Promise.all([
      serve({ engine: { timeScale: 0 } }),
      // Decode on H100s at real time: slow enough (tens of ms a token) to kill a thread mid-generation.
      serve({ engine: { timeScale: 1, decode: 'h100x8' }, workers: true }),
    ]);
  }, TIMEOUT);
  afterAll(async () => {
    await Promise.all([single?.close(), workers?.close()]);
  });

  it(
    'answers as the one-thread server does, JSON and stream, and frees every KV blob',
    async () => {
      const expected = await complete(single.url, 24);
      expect((await complete(workers.url, 24)).text).toBe(expected.text);
      expect((await stream(workers.url, 24, short)).pieces.join('')).toBe(expected.text);
      await drained(workers);
    },
    TIMEOUT,
  );

  it(
    'a killed stage thread mid-decode: its request is taken over, each token reaches the client once, in order',
    async () => {
      const expected = await complete(single.url, 80, long);
      let killed: Promise<void> | null = null;
      const threads = workers.runtime as StageThreads;
      const { pieces, id } = await stream(workers.url, 80, long, (sofar) => {
        if (sofar.length === 20 && !killed) killed = threads.kill();
      });
      expect(killed).not.toBeNull();
      expect(pieces.join('')).toBe(expected.text);
      const after = (await workers.results.get(id))!;
      expect(after.state).toBe('completed');
      expect(after.pieces.join('')).toBe(expected.text);
      // The dead thread had consumed the KV blob (by reference, not inline): the replacement recomputed it.
      expect(after.timeline.find((t) => t.event === 'kv_put')?.detail?.inline).toBe(false);
      expect(after.attempt).toBe(2);
      await drained(workers);
    },
    TIMEOUT,
  );

  it(
    'a killed stage thread before the handoff: requests it held are queued again on its replacement and complete',
    async () => {
      const expected = await complete(single.url, 8);
      const threads = workers.runtime as StageThreads;
      const requests = Array.from({ length: 4 }, () => complete(workers.url, 8));
      // Killed once the requests are in the prefill thread (queued or prefilling: emulated prefill is slept).
      for (let i = 0; i < 400 && workers.runtime.occupancy().prefillQueue < 4; i++) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(workers.runtime.occupancy().prefillQueue).toBe(4);
      await threads.kill();
      for (const done of await Promise.all(requests)) expect(done.text).toBe(expected.text);
      await drained(workers);
    },
    TIMEOUT,
  );
});

describe('serve --workers with Redis', () => {
  const prefix = testRedisPrefix('workers');
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redis = createRedis({ url, connectionName: 'disagg-test-workers' });
  let server: RunningServer;
  beforeAll(async () => {
    server = await serve({ engine: { timeScale: 0 }, workers: true, redisUrl: url, redisPrefix: prefix });
  }, TIMEOUT);
  afterAll(async () => {
    await server?.close();
    await expectNoLeaksThenClean(redis, prefix);
    await redis.quit();
  });

  it(
    'keeps records and KV blobs in Redis from every thread, and leaves none behind',
    async () => {
      const results = await Promise.all(Array.from({ length: 6 }, () => complete(server.url, 16)));
      expect(new Set(results.map((r) => r.text)).size).toBe(1);
      const stored = await redis.get(`${prefix}result:${results[0]!.id}`);
      expect(JSON.parse(stored!).state).toBe('completed');
      await drained(server);
    },
    TIMEOUT,
  );
});
