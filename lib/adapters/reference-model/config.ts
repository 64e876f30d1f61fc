import { WORDS } from './words';

/** Shape of the reference transformer. Its weights come from a seed, never from a file. */
export interface ReferenceModelConfig {
  /** Names this shape; the model id is `${name}-s${seed}`, so a KV cache records which weights made it. */
  readonly name: string;
  readonly layers: number;
  /** Residual stream width; equals heads * headDim. */
  readonly dim: number;
  readonly heads: number;
  /** Grouped-query attention: heads / kvHeads query heads share each KV head. */
  readonly kvHeads: number;
  readonly headDim: number;
  /** SwiGLU hidden width. */
  readonly ffnHidden: number;
  readonly ropeTheta: number;
  /**
   * Sliding-window attention: each position attends to at most this many positions (itself included),
   * as in Mistral. Keeps prefill linear in prompt length; the KV cache still holds every position.
   */
  readonly attentionWindow: number;
  /** Input embedding rows; a token id selects row `id mod embedRows`, so 128k-id vocabularies stay cheap. */
  readonly embedRows: number;
  /** Output classes: one per word plus the end-of-sequence class. */
  readonly vocab: number;
  /** Multiplies the output head so the next-word distribution is peaked rather than flat. */
  readonly logitScale: number;
  /** The end-of-sequence logit sits this far below the best word, so greedy never ends and sampling rarely does. */
  readonly eosMargin: number;
  readonly normEps: number;
}

/** Output class meaning end of sequence; word classes are 0 .. WORDS.length - 1. */
export const EOS_INDEX = WORDS.length;

export const DEFAULT_MODEL_SEED = 1;

export const DEFAULT_REFERENCE_CONFIG: ReferenceModelConfig = {
  name: 'reference-tiny-v1',
  layers: 4,
  dim: 64,
  heads: 4,
  kvHeads: 2,
  headDim: 16,
  ffnHidden: 128,
  ropeTheta: 10000,
  attentionWindow: 256,
  embedRows: 4096,
  vocab: WORDS.length + 1,
  logitScale: 3,
  eosMargin: 4,
  normEps: 1e-5,
};

export function validateConfig(config: ReferenceModelConfig): void {
  const problems: string[] = [];
  if (config.dim !== config.heads * config.headDim) problems.push('dim must equal heads * headDim');
  if (config.heads % config.kvHeads !== 0) problems.push('heads must be a multiple of kvHeads');
  if (config.headDim % 2 !== 0) problems.push('headDim must be even for RoPE');
  if (!(config.attentionWindow >= 1)) problems.push('attentionWindow must be at least 1 (Infinity for full attention)');
  if (config.vocab < 2) problems.push('vocab needs at least one word and the end class');
  for (const key of ['layers', 'dim', 'heads', 'kvHeads', 'headDim', 'ffnHidden', 'embedRows', 'vocab'] as const) {
    if (!Number.isInteger(config[key]) || config[key] <= 0) problems.push(`${key} must be a positive integer`);
  }
  if (problems.length > 0) throw new Error(`invalid reference model config: ${problems.join('; ')}`);
}
