/**
 * Tokenizer adapter: the real Llama 3 BPE (byte-level BPE over Meta's published ranks, read from the vocabulary
 * file on first use), and prompts under the Llama 3.1 chat template (the one Llama 3.1 and 3.3 publish).
 */
import type { ChatMessage, Tokenizer } from '../core/ports';
import { renderChat, renderedIds } from './chat-template';
import { ByteLevelTokenizer } from './tokenizer-byte-level';
import type { LruCache } from './tokenizer-pieces';
import { readVocabulary } from './tokenizer-vocabulary';
import { llama3PieceEnd } from './tokenizer-llama3-scan';

/** Llama 3 special-token ids (the same in Llama 3 and 3.1). */
export const LLAMA3_SPECIAL_IDS = {
  beginOfText: 128000,
  endOfText: 128001,
  startHeaderId: 128006,
  endHeaderId: 128007,
  eotId: 128009,
} as const;

/** Llama 3's pre-tokenizer split, as its tokenizer.json gives it (the case-insensitive contractions spelled out). */
export const LLAMA3_SPLIT =
  /(?:'([sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

export class Llama3Tokenizer implements Tokenizer {
  readonly name = 'llama3';

  /** `impl` is called on every use, so the vocabulary can load on first use rather than at construction. */
  constructor(private readonly impl: () => ByteLevelTokenizer) {}

  /** Plain text to ids: no BOS/EOS, and special-token spellings are tokenized as ordinary text. */
  encode(text: string): number[] {
    return this.impl().encode(text);
  }

  decode(ids: readonly number[]): string {
    return this.impl().decode(ids);
  }

  /** Id of a special token such as "<|eot_id|>", looked up in the vocabulary. */
  specialTokenId(token: string): number {
    return this.impl().specialTokenId(token);
  }

  /** Piece → ids cache of this process's prompts (its hit counts are the benchmark's). */
  get cache(): LruCache<readonly number[]> {
    return this.impl().cache;
  }
}

// The vocabulary file takes tens of ms to read and build, so it is loaded on first use, once per process.
let loaded: ByteLevelTokenizer | null = null;

function loadSync(): ByteLevelTokenizer {
  loaded ??= new ByteLevelTokenizer('llama3', readVocabulary('llama3'), {
    split: LLAMA3_SPLIT,
    scan: llama3PieceEnd,
  });
  return loaded;
}

const shared = new Llama3Tokenizer(loadSync);

/**
 * The process-wide Llama 3 tokenizer; cheap to call. The vocabulary loads on the first encode/decode unless
 * loadLlama3Tokenizer() already loaded it.
 */
export function llama3Tokenizer(): Llama3Tokenizer {
  return shared;
}

/** The same tokenizer with its vocabulary loaded now, so the first request does not pay for it. */
export async function loadLlama3Tokenizer(): Promise<Llama3Tokenizer> {
  loadSync();
  return Promise.resolve(shared);
}

/**
 * Prompt ids for a chat under the Llama 3.1 template: <|begin_of_text|>, the system block (knowledge cutoff and
 * date, then the system message), each turn between header tokens, ending with an open assistant header.
 */
export function chatPromptIds(tokenizer: Tokenizer, messages: readonly ChatMessage[], budget = Infinity): number[] {
  return renderedIds('llama3', renderChat('llama3', messages), (text) => tokenizer.encode(text), budget);
}

/** Prompt ids for a plain completion: BOS then the text. */
export function completionPromptIds(tokenizer: Tokenizer, prompt: string): number[] {
  const ids = [LLAMA3_SPECIAL_IDS.beginOfText];
  append(ids, tokenizer.encode(prompt));
  return ids;
}

// A loop, not push(...more): spreading a long document's ids can overflow the call stack.
function append(target: number[], more: readonly number[]): void {
  for (const id of more) target.push(id);
}
