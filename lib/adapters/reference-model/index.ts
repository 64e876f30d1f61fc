/** The reference model: a tiny seeded transformer whose KV cache is real data. */
export { DEFAULT_MODEL_SEED, DEFAULT_REFERENCE_CONFIG, EOS_INDEX } from './config';
export type { ReferenceModelConfig } from './config';
export { ReferenceKvCache, ReferenceModel, referenceModel } from './model';
export type { PrefillResult, StepResult } from './model';
export {
  applyRepetitionPenalty,
  REPETITION_PENALTY,
  REPETITION_WINDOW,
  sampleToken,
  samplingUniform,
} from './sampling';
export type { SamplerParams } from './sampling';
export { WORDS } from './words';
