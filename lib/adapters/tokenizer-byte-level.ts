/**
 * Byte-level BPE, the algorithm of Llama 3, Qwen3 and gpt-oss: one implementation (gpt-tokenizer's BPE core, the
 * tiktoken algorithm) reading each family's ranks from its vocabulary file, with the family's own pre-tokenizer
 * split. Encoding goes piece by piece through a bounded cache (tokenizer-pieces.ts); special-token spellings in the
 * text are always text, so a client cannot forge a turn.
 */
import { BytePairEncodingCore } from 'gpt-tokenizer/BytePairEncodingCore';
import type { Tokenizer } from '../core/ports';
import { encodeByPieces, LruCache, type PieceEncoderOptions } from './tokenizer-pieces';
import { rankDecoder, type ByteLevelVocabulary } from './tokenizer-vocabulary';

/**
 * The core merges a piece in time quadratic in its length (40 s for a 65,536-character run of CJK text, which
 * these splits keep as one piece), so pieces past 1,024 characters are encoded in 1,024-character chunks: at most
 * a token or two of difference per chunk boundary, and only in runs no spaced script produces.
 */
export const BYTE_LEVEL_CHUNK_CHARS = 1024;

/** Piece → ids per family: 16,384 pieces of at most 64 characters, a few MB at most. */
const PIECE_CACHE_ENTRIES = 16_384;

export interface ByteLevelOptions {
  /** The family's pre-tokenizer split, global and unicode (`gu`). */
  readonly split: RegExp;
  /** The family's normalizer (Qwen3: NFC), applied to each text run before it is split. */
  readonly normalize?: (text: string) => string;
  /** The split as a scan that gives the same pieces, where the family has one (PieceEncoderOptions.scan). */
  readonly scan?: (text: string, at: number) => number;
}

export class ByteLevelTokenizer implements Tokenizer {
  readonly cache = new LruCache<readonly number[]>(PIECE_CACHE_ENTRIES);
  private readonly core: BytePairEncodingCore;
  private readonly specialsById = new Map<number, string>();
  private readonly specials: ReadonlyMap<string, number>;
  /** One past the largest id, mergeable or special. */
  readonly vocabularySize: number;
  /** How encode splits and caches, made once. */
  private readonly pieces: PieceEncoderOptions;

  constructor(
    readonly name: string,
    vocabulary: ByteLevelVocabulary,
    private readonly options: ByteLevelOptions,
  ) {
    const ranks = rankDecoder(vocabulary.ranks);
    // No special tokens in the core: it never looks for them in text, and they are decoded here.
    this.core = new BytePairEncodingCore({
      bytePairRankDecoder: ranks,
      tokenSplitRegex: options.split,
      mergeCacheSize: 0,
    });
    this.specials = new Map(Object.entries(vocabulary.specials));
    for (const [spelling, id] of this.specials) if (!this.specialsById.has(id)) this.specialsById.set(id, spelling);
    this.vocabularySize = Math.max(ranks.length, ...this.specialsById.keys()) + 1;
    this.pieces = {
      split: options.split,
      encode: (piece) => this.core.encodeNative(piece),
      cache: this.cache,
      chunkChars: BYTE_LEVEL_CHUNK_CHARS,
      ...(options.scan ? { scan: options.scan } : {}),
    };
  }

  /** Plain text to ids: no BOS/EOS, and special-token spellings are encoded as ordinary text. */
  encode(text: string): number[] {
    const normalized = this.options.normalize ? this.options.normalize(text) : text;
    return encodeByPieces(normalized, this.pieces);
  }

  decode(ids: readonly number[]): string {
    let text = '';
    let run: number[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabularySize) {
        throw new RangeError(
          `${this.name} tokenizer: token id ${id} is outside the vocabulary (0..${this.vocabularySize - 1})`,
        );
      }
      const special = this.specialsById.get(id);
      if (special === undefined) {
        run.push(id);
        continue;
      }
      if (run.length > 0) text += this.core.decodeNative(run);
      run = [];
      text += special;
    }
    return run.length > 0 ? text + this.core.decodeNative(run) : text;
  }

  /** Id of a special token such as "<|eot_id|>"; throws for a spelling the vocabulary does not have. */
  specialTokenId(spelling: string): number {
    const id = this.specials.get(spelling);
    if (id === undefined) throw new Error(`${this.name} tokenizer: no special token ${spelling}`);
    return id;
  }
}
