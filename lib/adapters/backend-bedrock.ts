import { ConverseCommand, ConverseStreamCommand } from '@aws-sdk/client-bedrock-runtime';
import type {
  BedrockRuntimeClient,
  ConverseStreamOutput,
  InferenceConfiguration,
  TokenUsage,
} from '@aws-sdk/client-bedrock-runtime';
import { toConverseMessages, toConverseToolConfig } from './bedrock-tools';
import type {
  DecodeInput,
  DecodeSession,
  GeneratedToken,
  GenerationBackend,
  PrefillOutput,
  SamplingParams,
} from '../core/ports';

export { toConverseMessages };

export interface BedrockBackendOptions {
  readonly client: BedrockRuntimeClient;
  readonly modelId: string;
  /** Monotonic wall clock in ms for measured latency (injectable for tests). */
  readonly now?: () => number;
}

export interface BedrockUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

/** A hosted model through the Converse API: real text, measured latency reported beside the emulated timing. */
export class BedrockBackend implements GenerationBackend {
  readonly name = 'bedrock';
  readonly modelId: string;
  private readonly client: BedrockRuntimeClient;
  private readonly now: () => number;
  /** Learned on the first refusal, so later sessions skip a request that is bound to fail. */
  private streamingUnsupported = false;

  constructor(options: BedrockBackendOptions) {
    this.client = options.client;
    this.modelId = options.modelId;
    this.now = options.now ?? (() => performance.now());
  }

  async prefill(_promptIds: readonly number[], _sampling: SamplingParams): Promise<PrefillOutput> {
    // A hosted model has no KV cache to hand over; the engine still charges the emulated prefill time.
    return { kv: null, firstToken: null };
  }

  startDecode(input: DecodeInput): BedrockDecodeSession {
    return new BedrockDecodeSession({
      client: this.client,
      modelId: this.modelId,
      input,
      now: this.now,
      streaming: !this.streamingUnsupported,
      onStreamingUnsupported: () => {
        this.streamingUnsupported = true;
      },
    });
  }
}

interface SessionOptions {
  readonly client: BedrockRuntimeClient;
  readonly modelId: string;
  readonly input: DecodeInput;
  readonly now: () => number;
  readonly streaming: boolean;
  readonly onStreamingUnsupported: () => void;
}

/**
 * One generation. The request starts on the first `next()`; each text delta from ConverseStream is one
 * "token" (Bedrock streams text chunks, not token ids). Usage and latency are filled in as they arrive.
 */
export class BedrockDecodeSession implements DecodeSession {
  /** Which API produced the text: ConverseStream, or Converse after streaming was refused. */
  mode: 'stream' | 'converse' | null = null;
  /** Token counts Bedrock reported (metadata event or Converse response); null until then. */
  usage: BedrockUsage | null = null;
  /** Measured wall time from sending the request to the end of the response. */
  measuredMs: number | null = null;
  /** Measured wall time from sending the request to the first text. */
  measuredFirstTokenMs: number | null = null;
  /** Bedrock's own latency figure (`metrics.latencyMs`). */
  serviceLatencyMs: number | null = null;
  stopReason: string | null = null;

  private readonly options: SessionOptions;
  private readonly abort = new AbortController();
  private started = false;
  private finished = false;
  private closed = false;
  private startedAt = 0;
  private events: AsyncIterator<ConverseStreamOutput> | null = null;
  /** Converse (non-streaming) output waiting to be handed out: the text as one chunk, then each tool call. */
  private pending: GeneratedToken[] | null = null;
  /** The tool call a stream is assembling, from its contentBlockStart to its contentBlockStop. */
  private streamingCall: { id: string; name: string; input: string } | null = null;

  constructor(options: SessionOptions) {
    this.options = options;
  }

  async next(): Promise<GeneratedToken | null> {
    if (this.finished || this.closed) return null;
    try {
      if (!this.started) {
        this.started = true;
        await this.start();
        // close() may have run while the request was in flight; the stream it opened is not wanted.
        if (this.closed) {
          this.releaseEvents();
          return null;
        }
      }
      if (this.mode === 'converse') return this.takePending();
      return await this.nextFromStream();
    } catch (error) {
      // After close() the abort surfaces here as an error; the caller asked for it, so it is just the end.
      if (this.closed) return null;
      this.finished = true;
      throw error;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.releaseEvents();
  }

  private releaseEvents(): void {
    void this.events?.return?.()?.catch(() => undefined);
    this.events = null;
  }

  private async start(): Promise<void> {
    const { client, modelId, input } = this.options;
    const toolConfig = toConverseToolConfig(input.tools, input.messages);
    const request = {
      modelId,
      ...toConverseMessages(input.messages),
      inferenceConfig: toInferenceConfig(input.sampling),
      ...(toolConfig ? { toolConfig } : {}),
    };
    this.startedAt = this.options.now();
    if (this.options.streaming) {
      try {
        const out = await client.send(new ConverseStreamCommand(request), { abortSignal: this.abort.signal });
        if (out.stream === undefined) throw new Error('ConverseStream returned no event stream');
        this.mode = 'stream';
        this.events = out.stream[Symbol.asyncIterator]();
        return;
      } catch (error) {
        if (!isStreamingUnsupported(error)) throw error;
        this.options.onStreamingUnsupported();
      }
      this.startedAt = this.options.now();
    }
    const out = await client.send(new ConverseCommand(request), { abortSignal: this.abort.signal });
    this.mode = 'converse';
    const elapsed = this.options.now() - this.startedAt;
    this.measuredMs = elapsed;
    this.stopReason = out.stopReason ?? null;
    this.recordUsage(out.usage);
    this.serviceLatencyMs = out.metrics?.latencyMs ?? null;
    const blocks = out.output?.message?.content ?? [];
    const text = blocks.map((block) => block.text ?? '').join('');
    this.pending = [];
    if (text !== '') this.pending.push({ id: null, text });
    for (const block of blocks) {
      const use = block.toolUse;
      if (use?.toolUseId && use.name) {
        const call = { id: use.toolUseId, name: use.name, arguments: JSON.stringify(use.input ?? {}) };
        this.pending.push({ id: null, text: '', toolCall: call });
      }
    }
    if (this.pending.length > 0) this.measuredFirstTokenMs = elapsed;
  }

  private takePending(): GeneratedToken | null {
    const next = this.pending?.shift();
    if (next === undefined) {
      this.finished = true;
      return null;
    }
    return next;
  }

  private async nextFromStream(): Promise<GeneratedToken | null> {
    for (;;) {
      const events = this.events;
      if (events === null) return null;
      const step = await events.next();
      if (step.done) return this.finishStream();
      const event = step.value;
      throwIfStreamError(event);
      const started = event.contentBlockStart?.start?.toolUse;
      if (started?.toolUseId && started.name) {
        this.streamingCall = { id: started.toolUseId, name: started.name, input: '' };
        continue;
      }
      const partial = event.contentBlockDelta?.delta?.toolUse?.input;
      if (partial !== undefined && this.streamingCall) {
        this.streamingCall.input += partial;
        continue;
      }
      if (event.contentBlockStop && this.streamingCall) {
        const { id, name, input } = this.streamingCall;
        this.streamingCall = null;
        this.measuredFirstTokenMs ??= this.options.now() - this.startedAt;
        return { id: null, text: '', toolCall: { id, name, arguments: input === '' ? '{}' : input } };
      }
      if (event.contentBlockDelta) {
        const text = event.contentBlockDelta.delta?.text;
        if (text === undefined || text === '') continue;
        this.measuredFirstTokenMs ??= this.options.now() - this.startedAt;
        return { id: null, text };
      }
      if (event.metadata) {
        this.recordUsage(event.metadata.usage);
        this.serviceLatencyMs = event.metadata.metrics?.latencyMs ?? this.serviceLatencyMs;
        continue;
      }
      if (event.messageStop) {
        this.stopReason = event.messageStop.stopReason ?? null;
        // The metadata event (usage, latency) follows messageStop; read it before reporting the end.
        await this.drain(events);
        return this.finishStream();
      }
    }
  }

  private async drain(events: AsyncIterator<ConverseStreamOutput>): Promise<void> {
    for (let step = await events.next(); !step.done; step = await events.next()) {
      throwIfStreamError(step.value);
      if (step.value.metadata) {
        this.recordUsage(step.value.metadata.usage);
        this.serviceLatencyMs = step.value.metadata.metrics?.latencyMs ?? this.serviceLatencyMs;
      }
    }
  }

  private finishStream(): null {
    this.finished = true;
    this.events = null;
    this.measuredMs = this.options.now() - this.startedAt;
    return null;
  }

  private recordUsage(usage: TokenUsage | undefined): void {
    if (usage === undefined) return;
    this.usage = { inputTokens: usage.inputTokens ?? 0, outputTokens: usage.outputTokens ?? 0 };
  }
}

export function toInferenceConfig(sampling: SamplingParams): InferenceConfiguration {
  const config: InferenceConfiguration = { maxTokens: sampling.maxTokens, temperature: sampling.temperature };
  // topP 1 filters nothing, and some models refuse temperature and topP together, so only send a real cutoff.
  if (sampling.topP < 1) config.topP = sampling.topP;
  if (sampling.stop !== undefined && sampling.stop.length > 0) config.stopSequences = [...sampling.stop];
  return config;
}

/**
 * True for the refusals that mean "this model (or this role) cannot stream", where Converse may still work:
 * ValidationException "The model is unsupported for streaming." / "...doesn't support tool use in streaming mode.",
 * and AccessDeniedException for a role allowed bedrock:InvokeModel but not bedrock:InvokeModelWithResponseStream.
 */
export function isStreamingUnsupported(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, message } = error as { name?: unknown; message?: unknown };
  if (typeof message !== 'string') return false;
  if (name === 'ValidationException') return /stream/i.test(message);
  if (name === 'AccessDeniedException') return /InvokeModelWithResponseStream/i.test(message);
  return false;
}

const STREAM_ERROR_MEMBERS = [
  'internalServerException',
  'modelStreamErrorException',
  'validationException',
  'throttlingException',
  'serviceUnavailableException',
] as const;

/** Errors Bedrock reports inside the event stream, after the request itself succeeded. */
function throwIfStreamError(event: ConverseStreamOutput): void {
  for (const member of STREAM_ERROR_MEMBERS) {
    const detail = event[member] as { message?: string } | undefined;
    if (detail !== undefined) {
      const name = member.charAt(0).toUpperCase() + member.slice(1);
      const error = new Error(detail.message ?? name);
      error.name = name;
      throw error;
    }
  }
}
