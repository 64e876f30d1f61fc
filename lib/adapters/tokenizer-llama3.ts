/**
 * Tokenizer adapter: the real Llama 3 BPE (llama3-tokenizer-js, vocabulary baked in), encoding piece by piece
 * through a bounded cache, and prompts under the Llama 3.1 chat template (the one Llama 3.1 and 3.3 publish).
 */
import { createRequire } from 'node:module';
import type { ChatMessage, Tokenizer } from '../core/ports';
import { renderChat, renderedIds } from './chat-template';
import { encodeByPieces, LruCache } from './tokenizer-pieces';

/** Llama 3 special-token ids (the same in Llama 3 and 3.1). */
export const LLAMA3_SPECIAL_IDS = {
  beginOfText: 128000,
  endOfText: 128001,
  startHeaderId: 128006,
  endHeaderId: 128007,
  eotId: 128009,
} as const;

/** The slice of the package's tokenizer this adapter uses. */
interface PackageTokenizer {
  vocabById: string[];
  encode(prompt: string, options: { bos: boolean; eos: boolean; specialTokenRegex?: RegExp }): number[];
  decode(tokenIds: number[]): string;
  getSpecialTokenId(tokenString: string): number;
}

// A regex that never matches: text is always plain text, so "<|eot_id|>" typed by a user cannot forge a turn.
const NO_SPECIAL_TOKENS = /(?!)/g;

/** Llama 3's pre-tokenizer split, as its tokenizer.json gives it (the case-insensitive contractions spelled out). */
export const LLAMA3_SPLIT =
  /(?:'([sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/** Piece → ids for every prompt this process encodes: 16,384 pieces of at most 64 characters, a few MB at most. */
export const LLAMA3_PIECE_CACHE = new LruCache<readonly number[]>(16_384);

export class Llama3Tokenizer implements Tokenizer {
  readonly name = 'llama3';

  /** `impl` is called on every use, so the vocabulary can load on first use rather than at construction. */
  constructor(private readonly impl: () => PackageTokenizer) {}

  /** Plain text to ids: no BOS/EOS, and special-token spellings are tokenized as ordinary text. */
  encode(text: string): number[] {
    const impl = this.impl();
    return encodeByPieces(text, {
      split: LLAMA3_SPLIT,
      encode: (piece) => impl.encode(piece, { bos: false, eos: false, specialTokenRegex: NO_SPECIAL_TOKENS }),
      cache: LLAMA3_PIECE_CACHE,
    });
  }

  decode(ids: readonly number[]): string {
    const impl = this.impl();
    const size = impl.vocabById.length;
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= size) {
        throw new RangeError(`llama3 tokenizer: token id ${id} is outside the vocabulary (0..${size - 1})`);
      }
    }
    return impl.decode([...ids]);
  }

  /** Id of a special token such as "<|eot_id|>", looked up in the package's vocabulary. */
  specialTokenId(token: string): number {
    return this.impl().getSpecialTokenId(token);
  }
}

// The package builds its few-MB vocabulary when its module is evaluated (seconds on a busy host), so it is loaded
// on first use, once per process, by whichever of the two loaders below runs first.
let loaded: PackageTokenizer | null = null;
let loading: Promise<PackageTokenizer> | null = null;

function loadSync(): PackageTokenizer {
  if (loaded === null) {
    // The package's CommonJS build, so a synchronous first use can load it without top-level await.
    const require = createRequire(import.meta.url);
    const cjs = require('llama3-tokenizer-js/bundle/commonjs-llama3-tokenizer-with-baked-data.cjs') as {
      llama3Tokenizer: PackageTokenizer;
    };
    loaded = cjs.llama3Tokenizer;
  }
  return loaded;
}

const shared = new Llama3Tokenizer(loadSync);

/**
 * The process-wide Llama 3 tokenizer; cheap to call. The vocabulary loads synchronously on the first
 * encode/decode unless loadLlama3Tokenizer() already loaded it.
 */
export function llama3Tokenizer(): Llama3Tokenizer {
  return shared;
}

/**
 * The same tokenizer, with the vocabulary loaded through a dynamic import: use this where code is bundled
 * (esbuild follows the import and keeps it lazy) or where the first request should not pay for loading.
 */
export async function loadLlama3Tokenizer(): Promise<Llama3Tokenizer> {
  if (loaded === null) {
    loading ??= import('llama3-tokenizer-js').then((mod) => mod.default as PackageTokenizer);
    const impl = await loading;
    loaded ??= impl;
  }
  return shared;
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
