/**
 * Each family's vocabulary as a data file, not as JavaScript: data/tokenizers/<family>.json.br, brotli-compressed
 * JSON written by scripts/tokenizer-vocabularies.ts from the packages that publish the vocabularies. A Lambda
 * bundle ships the served family's file beside index.mjs (lib/infra/bundling-options.ts) and only the function that
 * counts prompts reads it, on first use; source runs read it from data/tokenizers/.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';

/** Byte-level BPE (tiktoken's model): mergeable tokens by rank, and the special tokens beside them. */
export interface ByteLevelVocabulary {
  readonly kind: 'byte-level';
  /** Where the vocabulary was taken from (model and package). */
  readonly source: string;
  /** tiktoken's text format: one "base64-of-the-token's-bytes rank" line per mergeable token. */
  readonly ranks: string;
  /** Special-token spelling → id. */
  readonly specials: Readonly<Record<string, number>>;
}

/** SentencePiece BPE, in the encoding llama-tokenizer-js reads: the vocabulary and the merges, each base64. */
export interface SentencePieceVocabulary {
  readonly kind: 'sentencepiece';
  readonly source: string;
  readonly vocab: string;
  readonly merges: string;
}

export type VocabularyFamily = 'llama3' | 'qwen3' | 'gpt-oss' | 'mistral';

/** The folder a bundle ships the vocabulary in, beside index.mjs. */
export const BUNDLED_VOCABULARY_DIR = 'tokenizers';

/** The file name of a family's vocabulary, in data/tokenizers/ and in a bundle's tokenizers/. */
export function vocabularyFileName(family: VocabularyFamily): string {
  return `${family}.json.br`;
}

/** Where the file can be: beside the bundle that imports this module, or in the repository's data/ folder. */
function candidates(family: VocabularyFamily): string[] {
  const name = vocabularyFileName(family);
  return [
    fileURLToPath(new URL(`./${BUNDLED_VOCABULARY_DIR}/${name}`, import.meta.url)),
    fileURLToPath(new URL(`../../data/tokenizers/${name}`, import.meta.url)),
  ];
}

/** Reads and decompresses a family's vocabulary (tens of ms: call once per process). */
export function readVocabulary(family: 'mistral'): SentencePieceVocabulary;
export function readVocabulary(family: Exclude<VocabularyFamily, 'mistral'>): ByteLevelVocabulary;
export function readVocabulary(family: VocabularyFamily): ByteLevelVocabulary | SentencePieceVocabulary {
  const paths = candidates(family);
  const path = paths.find((p) => existsSync(p));
  if (path === undefined) {
    throw new Error(
      `the ${family} tokenizer's vocabulary file is missing (looked for ${paths.join(' and ')}): ` +
        'a bundle must ship it beside index.mjs (see lib/infra/bundling-options.ts)',
    );
  }
  const vocabulary = JSON.parse(brotliDecompressSync(readFileSync(path)).toString('utf8')) as
    ByteLevelVocabulary | SentencePieceVocabulary;
  const expected = family === 'mistral' ? 'sentencepiece' : 'byte-level';
  if (vocabulary.kind !== expected) throw new Error(`${path}: a ${vocabulary.kind} vocabulary, expected ${expected}`);
  return vocabulary;
}

/**
 * The ranks as gpt-tokenizer's BPE core takes them: index = rank, a string where the token's bytes are valid
 * UTF-8, else the bytes.
 */
export function rankDecoder(ranks: string): (string | number[])[] {
  const out: (string | number[])[] = [];
  // Kept as spelled (ignoreBOM): a token that starts with U+FEFF must not collide with the one without it.
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  for (const line of ranks.split('\n')) {
    const space = line.indexOf(' ');
    const bytes = Buffer.from(line.slice(0, space), 'base64');
    const rank = Number(line.slice(space + 1));
    let token: string | number[];
    try {
      token = utf8.decode(bytes);
    } catch {
      token = [...bytes];
    }
    out[rank] = token;
  }
  return out;
}
