/**
 * Ports: the interfaces the core defines and lib/adapters implements.
 * The engine only ever talks to these, so the same stage logic runs embedded,
 * in Lambda, and (with a virtual clock) in the simulator.
 */

/** Time as the pipeline sees it. Emulated device time and measured wall time are kept apart. */
export interface Clock {
  /** Measured wall time in ms (monotonic where the implementation can). */
  nowMs(): number;
  /**
   * Charge `emulatedMs` of modelled device time. A real clock sleeps `emulatedMs * timeScale`
   * (timeScale 0 never sleeps); a virtual clock advances its own time instead.
   */
  charge(emulatedMs: number): Promise<void>;
}

/** One message taken from a queue, with the handle needed to acknowledge it. */
export interface QueueMessage {
  readonly body: string;
  /** Opaque handle for ack/release (an SQS receipt handle, a Redis stream id, ...). */
  readonly receipt: string;
  /** How many times this message has been received, this time included (1 on first delivery). */
  readonly receiveCount: number;
}

/**
 * At-least-once work queue (the KV handoff queue). A message received but neither acked
 * nor released becomes visible again after the visibility timeout; after `maxReceives`
 * receives it moves to the dead-letter list instead.
 */
export interface Queue {
  send(body: string): Promise<void>;
  receive(maxMessages: number, waitMs: number): Promise<QueueMessage[]>;
  /** Done with it: remove for good. */
  ack(receipt: string): Promise<void>;
  /** Give it back now (or after `delayMs`), counting as a failed receive. */
  release(receipt: string, delayMs?: number): Promise<void>;
  /** Messages waiting or in flight (not dead-lettered). */
  depth(): Promise<number>;
  /** Bodies moved to the dead-letter list. */
  deadLetters(): Promise<string[]>;
}

/** Blob store for KV caches, with a TTL lease on every key (the backstop for leaks). */
export interface KvStore {
  /**
   * Stores `bytes` under `key`. The pipeline hands the bytes over: it neither reads nor writes them after
   * the call, so an adapter may keep them as they are, or move their buffer to another thread.
   */
  put(key: string, bytes: Uint8Array, ttlMs: number): Promise<void>;
  /**
   * True when a put that resolved is done with its `bytes` (it copied or sent them and keeps no reference),
   * so the pipeline may reuse their memory for the next blob. Absent or false: the store may keep them.
   */
  readonly copiesOnPut?: boolean;
  /** The bytes, or null when missing or expired. */
  get(key: string): Promise<Uint8Array | null>;
  /**
   * The bytes, deleted from the store as they are read (one request where the store has such a command); null
   * when missing or expired. Optional: without it a reader gets, then deletes.
   */
  take?(key: string): Promise<Uint8Array | null>;
  delete(key: string): Promise<void>;
  /** Number of live KV blobs this store holds (for leak checks). */
  count(): Promise<number>;
}

/** Where the API reads what the stages wrote: request records and their tokens. */
export interface ResultStore<TRecord = unknown> {
  put(id: string, record: TRecord, ttlMs: number): Promise<void>;
  get(id: string): Promise<TRecord | null>;
  delete(id: string): Promise<void>;
}

export interface SamplingParams {
  /** 0 = greedy. */
  readonly temperature: number;
  readonly topP: number;
  /** Seed for the sampler; with the same seed the same prompt yields the same tokens. */
  readonly seed: number;
  readonly maxTokens: number;
  readonly stop?: readonly string[];
}

export interface Tokenizer {
  readonly name: string;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
}

/**
 * A model's KV cache for a prompt: per layer, keys and values laid out [token][kvHead][headDim].
 * This is the data that crosses the prefill → decode handoff (see handoff/kv-blob.ts for the wire format).
 */
export interface KvCache {
  /** Model id of the network that produced it (the reference model's id, not the emulated target's). */
  readonly model: string;
  readonly layers: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly tokens: number;
  /** keys[layer] and values[layer] each hold tokens * kvHeads * headDim floats. */
  readonly keys: readonly Float32Array[];
  readonly values: readonly Float32Array[];
}

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant' | 'tool';
  readonly content: string;
  /** Function calls an assistant turn made (for backends that call tools). */
  readonly toolCalls?: readonly FunctionCall[];
  /** On a tool turn: the call it answers. */
  readonly toolCallId?: string;
}

/** A function call as the model made it: the arguments are the JSON text it wrote. */
export interface FunctionCall {
  readonly id: string;
  readonly name: string;
  readonly arguments: string;
}

/** A function a backend may let the model call. */
export interface FunctionTool {
  readonly name: string;
  readonly description?: string;
  /** JSON Schema of the arguments. */
  readonly parameters?: Readonly<Record<string, unknown>>;
}

/** The tools offered to a generation and how the model may use them. */
export interface ToolOffer {
  readonly tools: readonly FunctionTool[];
  readonly choice: 'auto' | 'none' | 'required' | { readonly name: string };
}

/** One generated token: its id in the tokenizer's vocabulary (null when the backend gives text only) and text. */
export interface GeneratedToken {
  readonly id: number | null;
  readonly text: string;
  /** A function call the model made instead of (or after) text; `text` is then ''. */
  readonly toolCall?: FunctionCall;
}

export interface PrefillOutput {
  /** The prompt's KV cache; null where the backend has no KV to hand over (a hosted model). */
  readonly kv: KvCache | null;
  /** The first output token, sampled from the prompt's last logits; null where decode produces it. */
  readonly firstToken: GeneratedToken | null;
}

export interface DecodeInput {
  readonly promptIds: readonly number[];
  readonly messages: readonly ChatMessage[];
  /**
   * The prompt's KV. Its arrays may view memory the pipeline reuses for another request once the session is
   * closed: a backend reads them only while its session is open, and copies what it keeps past close().
   */
  readonly kv: KvCache | null;
  readonly firstToken: GeneratedToken | null;
  readonly sampling: SamplingParams;
  /** Tools the model may call, for backends that call them. */
  readonly tools?: ToolOffer;
}

/** A running generation, advanced one token per decode step so the engine can batch continuously. */
export interface DecodeSession {
  /** The next token, or null at end of sequence. Never returns the prefill's first token again. */
  next(): Promise<GeneratedToken | null>;
  close(): void;
}

export interface GenerationBackend {
  readonly name: string;
  prefill(promptIds: readonly number[], sampling: SamplingParams): Promise<PrefillOutput>;
  startDecode(input: DecodeInput): DecodeSession;
}

/**
 * Live notifications of a request's progress (tokens as they are produced, terminal state).
 * In one process an in-memory bus; across processes the API polls the ResultStore instead.
 */
export interface EventBus<TEvent = unknown> {
  publish(requestId: string, event: TEvent): void;
  /** Returns the unsubscribe function. */
  subscribe(requestId: string, listener: (event: TEvent) => void): () => void;
}

/**
 * Exclusive, expiring ownership of a piece of work (which decode worker runs a request). A claim is
 * taken atomically; the owner renews it while working; it lapses on its own if the owner dies, so a
 * redelivered message can be taken over.
 */
export interface ClaimStore {
  /** Takes the claim, or renews it when `owner` already holds it. False when someone else holds it. */
  claim(key: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Gives the claim up if `owner` holds it. */
  release(key: string, owner: string): Promise<void>;
}
