/**
 * Fault injection: the two failure domains and the handoff between them. Each test breaks one thing
 * (a worker, a delivery, the store) and checks the request still ends exactly once, cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../lib/adapters/backend-reference';
import { MemoryClaimStore } from '../../lib/adapters/claims-memory';
import { RedisClaimStore } from '../../lib/adapters/claims-redis';
import { RealClock } from '../../lib/adapters/clock-real';
import { MemoryEventBus } from '../../lib/adapters/events-memory';
import { MemoryKvStore } from '../../lib/adapters/kv-memory';
import { RedisKvStore } from '../../lib/adapters/kv-redis';
import { MemoryQueue } from '../../lib/adapters/queue-memory';
import { createRedis } from '../../lib/adapters/redis-connection';
import { MemoryResultStore } from '../../lib/adapters/result-memory';
import { HANDOFF_RETRY, StoreUnavailableError } from '../../lib/core/engine/retry';
import { RedisResultStore } from '../../lib/adapters/result-redis';
import { chatPromptIds, llama3Tokenizer } from '../../lib/adapters/tokenizer-llama3';
import { engineConfig, type EngineConfigInput } from '../../lib/core/engine/config';
import type { CancellationMarker } from '../../lib/core/engine/decode-stage';
import type { RequestEvent, RequestRecord } from '../../lib/core/engine/record';
import type { ChatMessage, ClaimStore, KvStore, Queue, ResultStore } from '../../lib/core/ports';
import { EmbeddedRuntime } from '../../lib/local/runtime';
import { prompts } from './pipeline-harness';

const tokenizer = llama3Tokenizer();

interface Shared {
  queue: Queue & { close(): Promise<void> };
  kv: KvStore;
  results: ResultStore<RequestRecord>;
  cancellations: ResultStore<CancellationMarker>;
  claims: ClaimStore;
  events: MemoryEventBus<RequestEvent>;
}

function memoryShared(visibilityTimeoutMs = 60_000): Shared {
  return {
    queue: new MemoryQueue({ visibilityTimeoutMs, maxReceives: 5 }),
    kv: new MemoryKvStore(),
    results: new MemoryResultStore<RequestRecord>(),
    cancellations: new MemoryResultStore<CancellationMarker>(),
    claims: new MemoryClaimStore(),
    events: new MemoryEventBus<RequestEvent>(),
  };
}

/** A worker process: its own runtime over the shared queue and stores. */
function worker(shared: Shared, engine: EngineConfigInput = {}, claimLeaseMs = 10_000): EmbeddedRuntime {
  const config = engineConfig({ timeScale: 0, ...engine });
  const runtime = new EmbeddedRuntime(config, {
    clock: new RealClock({ timeScale: config.timeScale }),
    queue: shared.queue,
    kv: shared.kv,
    results: shared.results,
    cancellations: shared.cancellations,
    claims: shared.claims,
    claimLeaseMs,
    backend: new ReferenceBackend({ tokenizer }),
    events: shared.events,
    randomKey: () => randomBytes(18).toString('base64url'),
    wallClockMs: () => performance.timeOrigin + performance.now(),
  });
  runtime.start();
  return runtime;
}

/** What a client receives: token events deduplicated by index, as the streaming layers deliver them. */
class Client {
  readonly received: string[] = [];
  readonly resent: { index: number; same: boolean }[] = [];
  readonly done: Promise<RequestRecord>;

  constructor(events: MemoryEventBus<RequestEvent>, id: string) {
    let resolve!: (r: RequestRecord) => void;
    this.done = new Promise((r) => (resolve = r));
    events.subscribe(id, (e) => {
      if (e.type === 'token') {
        if (e.index < this.received.length)
          this.resent.push({ index: e.index, same: this.received[e.index] === e.text });
        else if (e.index === this.received.length) this.received.push(e.text);
        else throw new Error(`gap: token ${e.index} arrived after ${this.received.length}`);
      } else if (e.type === 'done') resolve(e.record);
    });
  }
}

async function submit(
  runtime: EmbeddedRuntime,
  shared: Shared,
  messages: ChatMessage[],
  maxTokens: number,
): Promise<{ id: string; client: Client }> {
  const id = `req-${randomUUID()}`;
  const client = new Client(shared.events, id);
  const result = await runtime.submit({
    id,
    model: runtime.config.model.id,
    promptIds: chatPromptIds(tokenizer, messages),
    messages,
    sampling: { temperature: 0.7, topP: 0.95, seed: 11, maxTokens },
    mode: 'disaggregated',
  });
  expect(result.accepted).toBe(true);
  return { id, client };
}

const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)),
  ]);

/** Waits (bounded) until every message was acknowledged: nothing left waiting or in flight. */
async function drained(queue: Queue): Promise<void> {
  for (let i = 0; i < 200 && (await queue.depth()) > 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  expect(await queue.depth()).toBe(0);
}

describe('a decode worker dies mid-generation', () => {
  it('another worker takes the request over when the lease lapses; the client sees every token once, in order', async () => {
    const messages = prompts()[4]!;
    // The reference answer, from a run nothing interferes with.
    const cleanShared = memoryShared();
    const clean = worker(cleanShared);
    const reference = await (await submit(clean, cleanShared, messages, 120)).client.done;
    await clean.stop();

    // The lease outlasts the taker's recompute (prefill runs in slices, so timers fire during it, and on a loaded
    // machine 400 tokens take a good part of a second): one takeover, not a second one during the recompute.
    const shared = memoryShared(2500);
    const a = worker(shared, { timeScale: 1 }, 2000);
    const { client } = await submit(a, shared, messages, 120);
    // Mid-generation: some tokens out, most not (prefill runs off the submission, in slices, so wait for them).
    await expect.poll(() => client.received.length, { timeout: 20_000, interval: 5 }).toBeGreaterThan(1);
    expect(client.received.length).toBeLessThan(120);
    a.crash();
    const b = worker(shared, { timeScale: 1 }, 2000);
    try {
      const record = await within(client.done, 20_000, 'takeover');
      expect(record.state).toBe('completed');
      expect(record.attempt).toBe(2); // the KV was consumed by the dead worker: recomputed
      expect(client.received).toEqual(reference.pieces);
      expect(record.pieces).toEqual(reference.pieces);
      expect(client.resent.every((r) => r.same)).toBe(true);
      expect(await shared.kv.count()).toBe(0);
      await drained(shared.queue);
    } finally {
      await b.stop();
    }
  });
});

describe('the same descriptor delivered twice', () => {
  it.each([
    ['to one worker', 1],
    ['to two workers', 2],
  ])('produces its tokens once (%s)', async (_label, workers) => {
    const shared = memoryShared();
    const send = shared.queue.send.bind(shared.queue);
    shared.queue.send = async (body: string) => {
      await send(body);
      await send(body); // at-least-once delivery, at its worst
    };
    // A short lease, so the refused copy comes back soon and is seen to be a duplicate of a finished request.
    const runtimes = Array.from({ length: workers }, () => worker(shared, { timeScale: 1 }, 300));
    try {
      const { client } = await submit(runtimes[0]!, shared, prompts()[3]!, 40);
      const record = await within(client.done, 20_000, 'request');
      await drained(shared.queue);
      expect(record.state).toBe('completed');
      expect(record.pieces).toHaveLength(40);
      expect(client.received).toHaveLength(40);
      expect(client.resent).toEqual([]);
      expect(await shared.kv.count()).toBe(0);
    } finally {
      for (const r of runtimes) await r.stop();
    }
  });
});

describe('a KV blob whose lease expired before decode', () => {
  it('is reported missing by the real Redis TTL, and policy fail ends the request naming the cause', async () => {
    const redis = createRedis({
      url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      connectionName: 'disagg-expiry-test',
    });
    const prefix = `disagg-test:${randomUUID()}:`;
    const shared: Shared = { ...memoryShared(), kv: new RedisKvStore({ redis, prefix: `${prefix}kv:` }) };
    const config = engineConfig({ timeScale: 0, kvTtlMs: 1000, kvFailurePolicy: 'fail' });
    const runtime = new EmbeddedRuntime(config, {
      clock: new RealClock({ timeScale: 0 }),
      ...shared,
      backend: new ReferenceBackend({ tokenizer }),
      randomKey: () => randomBytes(18).toString('base64url'),
      wallClockMs: () => performance.timeOrigin + performance.now(),
    });
    try {
      // Prefill runs on submit; the decode worker is not started yet, so the blob waits in Redis.
      const { client } = await submit(runtime, shared, prompts()[5]!, 8);
      for (let i = 0; i < 100 && (await shared.kv.count()) === 0; i++)
        await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await shared.kv.count()).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 1300)); // past the 1 s lease
      expect(await shared.kv.count()).toBe(0);
      runtime.start();
      const record = await within(client.done, 10_000, 'request');
      expect(record.state).toBe('failed');
      expect(record.error?.code).toBe('kv_missing');
      expect(record.error?.message).toMatch(/missing or expired/);
    } finally {
      await runtime.stop();
      await redis.quit();
    }
  });
});

describe('prefill fails', () => {
  it('is retried with backoff and the request completes when a later try succeeds', async () => {
    const shared = memoryShared();
    const config = engineConfig({ timeScale: 0 });
    const real = new ReferenceBackend({ tokenizer });
    let calls = 0;
    const runtime = new EmbeddedRuntime(config, {
      clock: new RealClock({ timeScale: 0 }),
      ...shared,
      backend: {
        name: 'flaky',
        prefill: (ids, s) => (++calls <= 2 ? Promise.reject(new Error(`device blip ${calls}`)) : real.prefill(ids, s)),
        startDecode: (input) => real.startDecode(input),
      },
      randomKey: () => randomUUID(),
      wallClockMs: () => performance.timeOrigin + performance.now(),
    });
    runtime.start();
    try {
      const { client } = await submit(runtime, shared, prompts()[0]!, 8);
      const record = await within(client.done, 10_000, 'request');
      expect(record.state).toBe('completed');
      expect(record.timeline.filter((t) => t.event === 'prefill_start')).toHaveLength(3);
    } finally {
      await runtime.stop();
    }
  });

  it('ends failed after the stated number of tries', async () => {
    const shared = memoryShared();
    const config = engineConfig({ timeScale: 0 });
    const runtime = new EmbeddedRuntime(config, {
      clock: new RealClock({ timeScale: 0 }),
      ...shared,
      backend: {
        name: 'broken',
        prefill: () => Promise.reject(new Error('device fault')),
        startDecode: () => {
          throw new Error('unreachable');
        },
      },
      randomKey: () => randomUUID(),
      wallClockMs: () => performance.timeOrigin + performance.now(),
    });
    runtime.start();
    try {
      const { client } = await submit(runtime, shared, prompts()[0]!, 8);
      const record = await within(client.done, 10_000, 'request');
      expect(record.state).toBe('failed');
      expect(record.error?.code).toBe('prefill_failed');
      expect(record.error?.message).toMatch(/after 3 tries: device fault/);
      expect(await shared.kv.count()).toBe(0);
    } finally {
      await runtime.stop();
    }
  });
});

/** A free TCP port on loopback. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const probe = createRedis({
        url: `redis://127.0.0.1:${port}`,
        lazyConnect: true,
        connectTimeoutMs: 200,
        onError: () => undefined,
      });
      probe
        .ping()
        .then(
          () => resolve(true),
          () => resolve(false),
        )
        .finally(() => probe.disconnect());
    });
    if (ok) return child;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server did not start on port ${port}`);
}

describe('Redis restarted in the middle of a run', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children) child.kill('SIGKILL');
  });

  it('in-flight requests finish or fail cleanly, new requests succeed once it is back, the runtime stays up', async () => {
    const port = await freePort();
    children.push(await startRedis(port));
    const redis = createRedis({
      url: `redis://127.0.0.1:${port}`,
      connectionName: 'disagg-fault-test',
      onError: () => undefined,
    });
    const shared: Shared = {
      ...memoryShared(),
      kv: new RedisKvStore({ redis, prefix: 'f:kv:' }),
      results: new RedisResultStore<RequestRecord>({ redis, prefix: 'f:result:' }),
      cancellations: new RedisResultStore<CancellationMarker>({ redis, prefix: 'f:cancel:' }),
      claims: new RedisClaimStore({ redis, prefix: 'f:claim:' }),
    };
    const runtime = worker(shared, { timeScale: 1, requestTimeoutMs: 15_000 });
    try {
      const inFlight = await Promise.all(
        Array.from({ length: 6 }, (_, i) => submit(runtime, shared, prompts()[i % 6]!, 200)),
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      children.shift()!.kill('SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, 400));
      children.push(await startRedis(port));
      const ended = await within(Promise.all(inFlight.map((r) => r.client.done)), 30_000, 'in-flight requests');
      for (const record of ended) {
        expect(['completed', 'failed']).toContain(record.state);
        if (record.state === 'failed') expect(record.error?.code).toBeTruthy();
      }
      // Back up: a new request succeeds.
      const fresh = await submit(runtime, shared, prompts()[1]!, 10);
      const record = await within(fresh.client.done, 15_000, 'request after restart');
      expect(record.state).toBe('completed');
      expect(await shared.kv.count()).toBe(0);
    } finally {
      await runtime.stop();
      await redis.quit().catch(() => redis.disconnect());
    }
  });
});

describe('KV handoff writes that fail', () => {
  /** A KV store whose first `failures` puts fail as an unreachable Redis does, with its own error text. */
  function flakyKv(shared: Shared, failures: number): { puts: () => number } {
    let puts = 0;
    const put = shared.kv.put.bind(shared.kv);
    shared.kv.put = async (key, bytes, ttlMs) => {
      puts += 1;
      if (puts <= failures) throw new StoreUnavailableError('kv', new Error('connect ECONNREFUSED 127.0.0.1:6379'));
      return put(key, bytes, ttlMs);
    };
    return { puts: () => puts };
  }

  it('are retried on their own budget: a store blip does not throw away a finished prefill', async () => {
    const shared = memoryShared();
    const kv = flakyKv(shared, 2);
    const runtime = worker(shared);
    try {
      const { client } = await submit(runtime, shared, prompts()[5]!, 8);
      const record = await within(client.done, 20_000, 'request');
      expect(record.state).toBe('completed');
      expect(record.attempt).toBe(1); // prefill ran once; only the write was tried again
      expect(kv.puts()).toBe(3);
      expect(await shared.kv.count()).toBe(0);
    } finally {
      await runtime.stop();
    }
  });

  it('end the request as a handoff failure naming the tries made, never as a prefill failure or with the store text', async () => {
    const shared = memoryShared();
    const kv = flakyKv(shared, Infinity);
    const runtime = worker(shared);
    try {
      const { client } = await submit(runtime, shared, prompts()[5]!, 8);
      const record = await within(client.done, 20_000, 'request');
      expect(record.state).toBe('failed');
      expect(record.error?.code).toBe('handoff_failed');
      expect(kv.puts()).toBe(HANDOFF_RETRY.attempts);
      expect(record.error?.message).toContain(`after ${HANDOFF_RETRY.attempts} tries`);
      expect(record.error?.message).not.toMatch(/prefill failed|ECONNREFUSED|6379/);
      expect(await shared.kv.count()).toBe(0);
    } finally {
      await runtime.stop();
    }
  });

  it('a prefill that fails once is reported with the one try it had, not the policy maximum', async () => {
    const shared = memoryShared();
    const backend = new ReferenceBackend({ tokenizer });
    // Fails after the request's deadline has passed, so the policy stops after this one try.
    backend.prefill = () => new Promise((_, reject) => setTimeout(() => reject(new Error('device lost')), 150));
    const config = engineConfig({ timeScale: 0, requestTimeoutMs: 100 });
    const runtime = new EmbeddedRuntime(config, {
      clock: new RealClock({ timeScale: 0 }),
      ...shared,
      backend,
      randomKey: () => randomBytes(18).toString('base64url'),
      wallClockMs: () => performance.timeOrigin + performance.now(),
    });
    runtime.start();
    try {
      const id = `req-${randomUUID()}`;
      const client = new Client(shared.events, id);
      const messages = prompts()[1]!;
      await runtime.submit({
        id,
        model: config.model.id,
        promptIds: chatPromptIds(tokenizer, messages),
        messages,
        sampling: { temperature: 0, topP: 1, seed: 1, maxTokens: 4 },
        mode: 'disaggregated',
      });
      const record = await within(client.done, 20_000, 'request');
      expect(record.state).toBe('failed');
      expect(record.error).toEqual({ code: 'prefill_failed', message: 'prefill failed after 1 try: device lost' });
    } finally {
      await runtime.stop();
    }
  });
});

describe('a record store that fails as a request arrives', () => {
  it('refuses the request with the store error and runs nothing of it, even once the store is back', async () => {
    const shared = memoryShared();
    const put = shared.results.put.bind(shared.results);
    let down = true;
    shared.results.put = async (id, record, ttlMs) => {
      if (down) throw new StoreUnavailableError('results', new Error('connect ECONNREFUSED'));
      return put(id, record, ttlMs);
    };
    const runtime = worker(shared, { timeScale: 1 });
    const events: string[] = [];
    try {
      const id = `req-${randomUUID()}`;
      shared.events.subscribe(id, (e) => events.push(e.type === 'state' ? `state:${e.state}` : e.type));
      const messages = prompts()[2]!;
      await expect(
        runtime.submit({
          id,
          model: runtime.config.model.id,
          promptIds: chatPromptIds(tokenizer, messages),
          messages,
          sampling: { temperature: 0, topP: 1, seed: 1, maxTokens: 8 },
          mode: 'disaggregated',
        }),
      ).rejects.toBeInstanceOf(StoreUnavailableError);
      down = false;
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await shared.results.get(id)).toBeNull();
      expect(events.filter((e) => e === 'token' || e === 'done' || e === 'state:handoff')).toEqual([]);
      expect(runtime.occupancy()).toEqual({ prefillQueue: 0, decodeQueue: 0, decodeBatch: 0 });
      expect(await shared.queue.depth()).toBe(0);
    } finally {
      await runtime.stop();
    }
  });
});
