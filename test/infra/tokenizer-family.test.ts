import { describe, expect, it } from 'vitest';
import { TOKENIZER_FAMILIES } from '../../lib/adapters/tokenizers';
import { MODEL_IDS } from '../../lib/core/emulator/models';
import { bundledTokenizerFamily } from '../../lib/infra/tokenizer-family';

describe('bundled tokenizer family', () => {
  it('names, for every emulated model, a family the tokenizer adapter can load', () => {
    for (const model of MODEL_IDS) expect(TOKENIZER_FAMILIES).toContain(bundledTokenizerFamily(model));
  });

  it('bundles every family (no define) for a model it does not know', () => {
    expect(bundledTokenizerFamily('some-future-model')).toBeUndefined();
  });
});
