import type { ReferenceModelConfig } from './config';
import { mulberry32 } from '../../core/random';

/** All parameters, row-major: a [out][in] matrix maps an `in`-vector to an `out`-vector. */
export interface LayerWeights {
  readonly wq: Float32Array; // [heads * headDim][dim]
  readonly wk: Float32Array; // [kvHeads * headDim][dim]
  readonly wv: Float32Array; // [kvHeads * headDim][dim]
  readonly wo: Float32Array; // [dim][heads * headDim]
  readonly wGate: Float32Array; // [ffnHidden][dim]
  readonly wUp: Float32Array; // [ffnHidden][dim]
  readonly wDown: Float32Array; // [dim][ffnHidden]
}

export interface ModelWeights {
  readonly embed: Float32Array; // [embedRows][dim]
  readonly layers: readonly LayerWeights[];
  readonly head: Float32Array; // [vocab - 1][dim]: words only, the end class is derived from them
}

/** 32-bit avalanche mix (murmur3 finalizer), used to derive independent seeds. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Splits a (possibly > 32-bit or negative) integer seed into two 32-bit words. */
export function seedWords(seed: number): [number, number] {
  const s = Math.trunc(seed);
  return [s >>> 0, Math.floor(s / 4294967296) >>> 0];
}

// Each tensor gets its own stream, so adding a tensor never shifts the values of the others.
function tensor(seed: number, index: number, size: number, variance: number): Float32Array {
  const [lo, hi] = seedWords(seed);
  const rand = mulberry32(mix32(lo ^ mix32(hi ^ mix32(index + 0x9e3779b9))));
  // Uniform on [-a, a] has variance a^2 / 3.
  const a = Math.sqrt(3 * variance);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = (rand() * 2 - 1) * a;
  return out;
}

export function generateWeights(config: ReferenceModelConfig, seed: number): ModelWeights {
  const { dim, heads, kvHeads, headDim, ffnHidden, embedRows, vocab } = config;
  const qDim = heads * headDim;
  const kvDim = kvHeads * headDim;
  let index = 0;
  // Variance 1/fan_in keeps each projection's output near unit scale.
  const next = (rows: number, cols: number, variance = 1 / cols) => tensor(seed, index++, rows * cols, variance);
  const embed = next(embedRows, dim, 1);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.layers; l++) {
    layers.push({
      wq: next(qDim, dim),
      wk: next(kvDim, dim),
      wv: next(kvDim, dim),
      wo: next(dim, qDim),
      wGate: next(ffnHidden, dim),
      wUp: next(ffnHidden, dim),
      wDown: next(dim, ffnHidden),
    });
  }
  const head = next(vocab - 1, dim);
  return { embed, layers, head };
}
