/**
 * Which tokenizer family a bundle carries for the served model. The tokenizer adapter reads
 * `process.env.DISAGG_TOKENIZER_FAMILY`, which esbuild's `define` turns into a literal so the other
 * families' vocabularies (megabytes each) are dropped from the bundle. The family is model data, read
 * from the emulator's model profiles like the rest of the config's validation.
 */
import { MODEL_IDS, MODELS, type ModelId } from '../core/emulator/models';

export const TOKENIZER_FAMILY_DEFINE = 'process.env.DISAGG_TOKENIZER_FAMILY';

/** The family for a model id; undefined (every family bundled) for a model the profiles do not know. */
export function bundledTokenizerFamily(modelId: string): string | undefined {
  return (MODEL_IDS as readonly string[]).includes(modelId) ? MODELS[modelId as ModelId].tokenizer : undefined;
}
