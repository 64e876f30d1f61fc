/**
 * A generation backend that does no model compute, so a benchmark measures the orchestration alone:
 * prefill returns a preallocated KV cache of the reference model's shape (about 1 MB for 1,000 tokens),
 * decode returns a fixed word. The default export builds one; `serve --workers` loads it in each stage
 * thread by module URL.
 */
import type {
  DecodeInput,
  DecodeSession,
  GeneratedToken,
  GenerationBackend,
  KvCache,
  PrefillOutput,
} from '../lib/core/ports';

const LAYERS = 4;
const KV_HEADS = 2;
const HEAD_DIM = 16;
/** KV bytes a prompt token adds to the blob: keys and values of every layer, float32. */
export const KV_BYTES_PER_TOKEN = LAYERS * 2 * KV_HEADS * HEAD_DIM * Float32Array.BYTES_PER_ELEMENT;

export class NullBackend implements GenerationBackend {
  readonly name = 'null';
  private readonly token: GeneratedToken;
  private readonly buffers = new Map<number, Float32Array>();

  constructor(token: GeneratedToken) {
    this.token = token;
  }

  private buffer(tokens: number): Float32Array {
    let buf = this.buffers.get(tokens);
    if (!buf) {
      buf = new Float32Array(tokens * KV_HEADS * HEAD_DIM).fill(0.5);
      this.buffers.set(tokens, buf);
    }
    return buf;
  }

  async prefill(promptIds: readonly number[]): Promise<PrefillOutput> {
    const buf = this.buffer(promptIds.length);
    const kv: KvCache = {
      model: 'null',
      layers: LAYERS,
      kvHeads: KV_HEADS,
      headDim: HEAD_DIM,
      tokens: promptIds.length,
      keys: Array.from({ length: LAYERS }, () => buf),
      values: Array.from({ length: LAYERS }, () => buf),
    };
    return { kv, firstToken: this.token };
  }

  startDecode(input: DecodeInput): DecodeSession {
    let remaining = input.sampling.maxTokens - 1;
    const token = this.token;
    return {
      next: async () => (remaining-- > 0 ? token : null),
      close: () => undefined,
    };
  }
}

/** Llama 3's id for " hello" (the text the pieces carry); fixed here so a stage thread loads no vocabulary. */
const HELLO_ID = 24748;

export default function createNullBackend(): GenerationBackend {
  return new NullBackend({ id: HELLO_ID, text: ' hello' });
}
