/**
 * Generation backend over the reference model: real prefill, a real KV cache to hand over,
 * and decode that resumes from it. Text is common English words, not meaningful prose.
 */
import type {
  DecodeInput,
  DecodeSession,
  GeneratedToken,
  GenerationBackend,
  KvCache,
  PrefillOutput,
  SamplingParams,
  Tokenizer,
} from '../core/ports';
import {
  applyRepetitionPenalty,
  DEFAULT_MODEL_SEED,
  EOS_INDEX,
  REPETITION_WINDOW,
  referenceModel,
  sampleToken,
  WORDS,
} from './reference-model';
import type { ReferenceModel } from './reference-model';
import { LLAMA3_WORD_IDS } from './reference-word-ids';

export interface ReferenceBackendOptions {
  /**
   * Maps each output word to its token id; the words must be one token each with a leading space. Omitted, the
   * ids are Llama 3's from a generated table, so a process that never tokenizes need not load that vocabulary.
   */
  readonly tokenizer?: Tokenizer;
  /** Seed of the model weights (not of sampling, which SamplingParams.seed drives). */
  readonly seed?: number;
}

/** Each output word as a token of the tokenizer, and back. */
interface WordTokens {
  readonly tokens: readonly GeneratedToken[];
  readonly wordByTokenId: ReadonlyMap<number, number>;
}

const wordTokenCache = new WeakMap<Tokenizer, WordTokens>();

/** Longest stretch of prefill compute between two turns of the event loop (wall ms, measured). */
export const PREFILL_SLICE_MS = 20;

let llama3Table: WordTokens | null = null;

function wordTokens(tokenizer: Tokenizer | undefined): WordTokens {
  if (tokenizer === undefined) {
    if (LLAMA3_WORD_IDS.length !== WORDS.length) {
      throw new Error('reference backend: the Llama 3 word-id table is stale; run scripts/reference-word-ids.ts');
    }
    return (llama3Table ??= buildWordTokens('llama3 (generated table)', (_text, index) => [LLAMA3_WORD_IDS[index]!]));
  }
  const cached = wordTokenCache.get(tokenizer);
  if (cached) return cached;
  const result = buildWordTokens(tokenizer.name, (text) => tokenizer.encode(text));
  wordTokenCache.set(tokenizer, result);
  return result;
}

function buildWordTokens(name: string, encode: (text: string, index: number) => readonly number[]): WordTokens {
  const tokens: GeneratedToken[] = [];
  const wordByTokenId = new Map<number, number>();
  WORDS.forEach((word, index) => {
    const text = ` ${word}`;
    const ids = encode(text, index);
    const id = ids[0];
    if (ids.length !== 1 || id === undefined) {
      throw new Error(
        `reference backend: "${text}" is ${ids.length} tokens in tokenizer ${name}; every output word must be exactly one`,
      );
    }
    if (wordByTokenId.has(id)) throw new Error(`reference backend: two output words share token id ${id}`);
    wordByTokenId.set(id, index);
    tokens.push({ id, text });
  });
  return { tokens, wordByTokenId };
}

export class ReferenceBackend implements GenerationBackend {
  readonly name = 'reference';
  readonly model: ReferenceModel;
  private readonly words: WordTokens;

  constructor(options: ReferenceBackendOptions) {
    this.model = referenceModel(options.seed ?? DEFAULT_MODEL_SEED);
    this.words = wordTokens(options.tokenizer);
  }

  /** Id recorded in every KV cache this backend produces (and required of every cache it decodes from). */
  get modelId(): string {
    return this.model.id;
  }

  async prefill(promptIds: readonly number[], sampling: SamplingParams): Promise<PrefillOutput> {
    if (promptIds.length === 0) throw new Error('reference backend: prefill needs at least one prompt token');
    // In slices: a long prompt's compute (seconds at 8k tokens) must not stall every other request on this thread.
    const { kv, lastLogits } = await this.model.prefillSliced(promptIds, PREFILL_SLICE_MS);
    // The first token is never the end: a reply has at least one word, and PrefillOutput has no way to say "empty".
    lastLogits[EOS_INDEX] = -Infinity;
    const word = sampleToken(lastLogits, sampling, kv.tokens);
    return { kv, firstToken: this.words.tokens[word]! };
  }

  startDecode(input: DecodeInput): DecodeSession {
    if (input.kv === null) {
      throw new Error(
        'reference backend: decode needs the prompt KV cache, but input.kv is null; the reference model cannot decode without it (recompute the prefill instead)',
      );
    }
    if (input.firstToken === null || input.firstToken.id === null) {
      throw new Error('reference backend: decode needs the first token (with its id) that prefill sampled');
    }
    this.model.checkKv(input.kv);
    if (input.kv.tokens !== input.promptIds.length) {
      throw new Error(
        `reference backend: KV cache holds ${input.kv.tokens} tokens but the prompt has ${input.promptIds.length}`,
      );
    }
    return new ReferenceDecodeSession(this.model, this.words, input.kv, input.firstToken.id, input.sampling);
  }
}

class ReferenceDecodeSession implements DecodeSession {
  private kv: KvCache | null;
  private lastId: number;
  /** Tokens produced so far, the prefill's first token included (it counts toward maxTokens). */
  private generated = 1;
  /** Recently generated word indices, for the repetition penalty. */
  private readonly recent: number[] = [];

  constructor(
    private readonly model: ReferenceModel,
    private readonly words: WordTokens,
    kv: KvCache,
    firstTokenId: number,
    private readonly sampling: SamplingParams,
  ) {
    this.kv = kv;
    this.lastId = firstTokenId;
    const firstWord = words.wordByTokenId.get(firstTokenId);
    if (firstWord !== undefined) this.recent.push(firstWord);
  }

  async next(): Promise<GeneratedToken | null> {
    if (this.kv === null) return null;
    if (this.generated >= this.sampling.maxTokens) return this.finish();
    // Feed back the token just produced: the model hashes its id into the embedding table.
    const { kv, logits } = this.model.step(this.kv, this.lastId);
    this.kv = kv;
    applyRepetitionPenalty(logits, this.recent);
    const word = sampleToken(logits, this.sampling, kv.tokens);
    if (word === EOS_INDEX) return this.finish();
    const token = this.words.tokens[word]!;
    this.recent.push(word);
    if (this.recent.length > REPETITION_WINDOW) this.recent.shift();
    this.generated++;
    this.lastId = token.id!;
    return token;
  }

  close(): void {
    this.kv = null;
  }

  private finish(): null {
    this.kv = null;
    return null;
  }
}
