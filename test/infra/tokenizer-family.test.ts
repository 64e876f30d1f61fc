import { describe, expect, it } from 'vitest';
import { tokenizerFamily } from '../../lib/adapters/tokenizers';
import { MODEL_IDS } from '../../lib/core/emulator/models';
import { bundledTokenizerFamily } from '../../lib/infra/tokenizer-family';

describe('bundled tokenizer family', () => {
  it('names, for every emulated model, the family the tokenizer adapter serves it with', () => {
    for (const model of MODEL_IDS)
      expect([model, bundledTokenizerFamily(model)]).toEqual([model, tokenizerFamily(model)]);
  });

  it('bundles every family (no define) for a model it does not know', () => {
    expect(bundledTokenizerFamily('some-future-model')).toBeUndefined();
  });
});
