/**
 * mulberry32: a small, fast, seedable PRNG (32-bit state), uniform in [0, 1), giving the same
 * sequence on every JS engine. The one source of reproducible randomness for the reference model's
 * weights, the simulator's workloads and the tests' generated inputs.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` bytes from `random` (a mulberry32 stream), for reproducible test data. */
export function randomBytesFrom(random: () => number, n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}
