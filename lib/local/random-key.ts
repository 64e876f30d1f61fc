/** KV blob keys for the embedded pipeline, in this thread or a stage thread. */
import { randomFillSync } from 'node:crypto';

/** Random bytes in a KV key: 144 bits, as base64url (24 characters). */
const KEY_BYTES = 18;
/** Keys drawn from one fill of the buffer. */
const KEYS_PER_FILL = 128;

/**
 * KV blob keys, one per request: 18 random bytes each, drawn from a buffer the CSPRNG fills 128 keys at a time
 * (as node:crypto's randomUUID buffers its entropy), so a key costs a slice rather than a call into the CSPRNG.
 */
export function bufferedRandomKey(): () => string {
  const pool = Buffer.alloc(KEY_BYTES * KEYS_PER_FILL);
  let next = KEYS_PER_FILL;
  return () => {
    if (next === KEYS_PER_FILL) {
      randomFillSync(pool);
      next = 0;
    }
    const at = next * KEY_BYTES;
    next += 1;
    return pool.toString('base64url', at, at + KEY_BYTES);
  };
}
