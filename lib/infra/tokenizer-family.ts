/**
 * Which tokenizer family a bundle carries for the served model. The tokenizer adapter reads
 * `process.env.DISAGG_TOKENIZER_FAMILY`, which esbuild's `define` turns into a literal so the other
 * families' vocabularies (megabytes each) are dropped from the bundle. Infra may not import the adapter,
 * so the mapping is restated here; a test holds it equal to the adapter's.
 */
export const TOKENIZER_FAMILY_DEFINE = 'process.env.DISAGG_TOKENIZER_FAMILY';

const FAMILY_BY_MODEL: Readonly<Record<string, string>> = {
  'llama-3.1-8b': 'llama3',
  'llama-3.1-70b': 'llama3',
  'llama-3.3-70b': 'llama3',
  'llama-3.1-405b': 'llama3',
  'llama-2-70b': 'llama2',
  'qwen3-32b': 'qwen3',
  'mixtral-8x7b': 'mistral',
  'gpt-oss-120b': 'gpt-oss',
  'llama-4-maverick': 'llama3',
};

/** The family for a model id; undefined (every family bundled) for a model this table does not know yet. */
export function bundledTokenizerFamily(modelId: string): string | undefined {
  return FAMILY_BY_MODEL[modelId];
}
