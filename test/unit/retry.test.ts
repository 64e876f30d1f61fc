import { describe, expect, it } from 'vitest';
import { PREFILL_RETRY, retryDelayMs, withRetries } from '../../lib/core/engine/retry';

describe('prefill retry policy', () => {
  it('backs off exponentially between tries, capped', () => {
    expect(retryDelayMs(2, PREFILL_RETRY)).toBe(100);
    expect(retryDelayMs(3, PREFILL_RETRY)).toBe(200);
    expect(retryDelayMs(20, PREFILL_RETRY)).toBe(2000);
  });

  it('succeeds on a later try after sleeping the backoff', async () => {
    const slept: number[] = [];
    let tries = 0;
    const result = await withRetries(
      async () => {
        tries += 1;
        if (tries < 3) throw new Error(`flaky ${tries}`);
        return 'ok';
      },
      PREFILL_RETRY,
      async (ms) => void slept.push(ms),
    );
    expect(result).toBe('ok');
    expect(slept).toEqual([100, 200]);
  });

  it('gives up after the stated number of tries with the last error', async () => {
    let tries = 0;
    await expect(
      withRetries(
        async () => {
          tries += 1;
          throw new Error(`down ${tries}`);
        },
        PREFILL_RETRY,
        async () => undefined,
      ),
    ).rejects.toThrow('down 3');
    expect(tries).toBe(PREFILL_RETRY.attempts);
  });

  it('stops early when told not to retry', async () => {
    let tries = 0;
    await expect(
      withRetries(
        async () => {
          tries += 1;
          throw new Error('cancelled');
        },
        PREFILL_RETRY,
        async () => undefined,
        () => false,
      ),
    ).rejects.toThrow('cancelled');
    expect(tries).toBe(1);
  });
});
