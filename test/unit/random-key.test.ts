import { describe, expect, it } from 'vitest';
import { bufferedRandomKey } from '../../lib/local/random-key';

describe('bufferedRandomKey', () => {
  it('gives 144-bit base64url keys, all different across refills of its buffer', () => {
    const next = bufferedRandomKey();
    const keys = Array.from({ length: 1000 }, next);
    for (const key of keys) expect(key).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('draws each generator from its own buffer', () => {
    const a = bufferedRandomKey();
    const b = bufferedRandomKey();
    expect(a()).not.toBe(b());
  });
});
