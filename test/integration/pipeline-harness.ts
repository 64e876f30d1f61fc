/** Builds an embedded runtime over chosen adapters, for pipeline tests. */
import { randomBytes, randomUUID } from 'node:crypto';
import { ReferenceBackend } from '../../lib/adapters/backend-reference';
import { RealClock } from '../../lib/adapters/clock-real';
import { MemoryEventBus } from '../../lib/adapters/events-memory';
import { MemoryKvStore } from '../../lib/adapters/kv-memory';
import { MemoryQueue } from '../../lib/adapters/queue-memory';
import { MemoryResultStore } from '../../lib/adapters/result-memory';
import { chatPromptIds, llama3Tokenizer } from '../../lib/adapters/tokenizer-llama3';
import { engineConfig, type EngineConfigInput } from '../../lib/core/engine/config';
import type { CancellationMarker } from '../../lib/core/engine/decode-stage';
import type { RequestEvent, RequestRecord } from '../../lib/core/engine/record';
import type { RoutingRequest } from '../../lib/core/engine/routing';
import type { ChatMessage, KvStore, ResultStore, SamplingParams } from '../../lib/core/ports';
import { EmbeddedRuntime, type SubmitResult } from '../../lib/local/runtime';

export interface Harness {
  readonly runtime: EmbeddedRuntime;
  readonly kv: KvStore;
  readonly queue: MemoryQueue;
  readonly results: ResultStore<RequestRecord>;
  readonly events: MemoryEventBus<RequestEvent>;
  /** Submits and resolves with the terminal record (or the rejection). */
  run(messages: ChatMessage[], sampling?: Partial<SamplingParams>, mode?: RoutingRequest): Promise<RequestRecord>;
  submit(
    messages: ChatMessage[],
    sampling?: Partial<SamplingParams>,
    mode?: RoutingRequest,
  ): Promise<{ result: SubmitResult; done: Promise<RequestRecord> }>;
  close(): Promise<void>;
}

export function createHarness(
  engine: EngineConfigInput = {},
  stores: { kv?: KvStore; results?: ResultStore<RequestRecord>; cancellations?: ResultStore<CancellationMarker> } = {},
): Harness {
  const config = engineConfig({ timeScale: 0, ...engine });
  const tokenizer = llama3Tokenizer();
  const kv = stores.kv ?? new MemoryKvStore();
  const results = stores.results ?? new MemoryResultStore<RequestRecord>();
  const cancellations = stores.cancellations ?? new MemoryResultStore<CancellationMarker>();
  const queue = new MemoryQueue({ visibilityTimeoutMs: 60_000, maxReceives: 3 });
  const events = new MemoryEventBus<RequestEvent>();
  const runtime = new EmbeddedRuntime(config, {
    clock: new RealClock({ timeScale: config.timeScale }),
    queue,
    kv,
    results,
    cancellations,
    backend: new ReferenceBackend({ tokenizer }),
    events,
    randomKey: () => randomBytes(18).toString('base64url'),
    wallClockMs: () => performance.timeOrigin + performance.now(),
  });
  runtime.start();

  const submit: Harness['submit'] = async (messages, sampling = {}, mode = 'auto') => {
    const id = `req-${randomUUID()}`;
    let resolveDone!: (r: RequestRecord) => void;
    const done = new Promise<RequestRecord>((resolve) => (resolveDone = resolve));
    const unsubscribe = events.subscribe(id, (event) => {
      if (event.type === 'done') {
        unsubscribe();
        resolveDone(event.record);
      }
    });
    const result = await runtime.submit({
      id,
      model: config.model.id,
      promptIds: chatPromptIds(tokenizer, messages),
      messages,
      sampling: { temperature: 0, topP: 1, seed: 0, maxTokens: 16, ...sampling },
      mode,
    });
    return { result, done };
  };

  return {
    runtime,
    kv,
    queue,
    results,
    events,
    submit,
    async run(messages, sampling, mode) {
      return (await submit(messages, sampling, mode)).done;
    },
    async close() {
      await runtime.stop();
      await queue.close();
    },
  };
}

/** Deterministic prompts of varied length: short ones travel inline, long ones through the KV store. */
export function prompts(): ChatMessage[][] {
  const words = 'prefill decode wafer trainium cache token handoff latency bandwidth memory'.split(' ');
  return [3, 12, 40, 150, 260, 420].map((n, i) => [
    { role: 'system', content: `You are assistant number ${i}.` },
    { role: 'user', content: Array.from({ length: n }, (_, k) => words[(k * 7 + i) % words.length]).join(' ') },
  ]);
}

export const tokens = (r: RequestRecord): string => r.pieces.join('|');
