import { describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../../lib/adapters/backend-reference';
import { encodeKvBlob } from '../../lib/core/handoff/kv-blob';
import type { SamplingParams } from '../../lib/core/ports';
import { KV_BLOB_OVERHEAD_BYTES, REFERENCE_KV_BYTES_PER_TOKEN } from '../../lib/infra/sizing';

describe('the KV sizes the stack sizes the cache for', () => {
  it('match the reference backend: its blob is 1 KB per prompt token plus a header under the stated overhead', async () => {
    const backend = new ReferenceBackend({});
    const sampling: SamplingParams = { temperature: 0, topP: 1, maxTokens: 1, seed: 1 };
    for (const tokens of [64, 512]) {
      const output = await backend.prefill(
        Array.from({ length: tokens }, (_, k) => 100 + k),
        sampling,
      );
      const bytes = encodeKvBlob(output.kv!).length;
      expect(bytes - tokens * REFERENCE_KV_BYTES_PER_TOKEN).toBeGreaterThan(0);
      expect(bytes - tokens * REFERENCE_KV_BYTES_PER_TOKEN).toBeLessThanOrEqual(KV_BLOB_OVERHEAD_BYTES);
    }
  });
});
