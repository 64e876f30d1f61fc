import type { SamplingParams } from '../../core/ports';
import { EOS_INDEX } from './config';
import { mix32, seedWords } from './weights';

export type SamplerParams = Pick<SamplingParams, 'temperature' | 'topP' | 'seed'>;

/**
 * A uniform number in [0, 1) that depends only on (seed, position). No sampler state is carried,
 * so decode on another machine, resuming from a handed-over KV cache, draws the same numbers.
 */
export function samplingUniform(seed: number, position: number): number {
  const [lo, hi] = seedWords(seed);
  const h = mix32(mix32(lo ^ 0x5851f42d) ^ mix32(hi ^ 0x4c957f2d) ^ mix32((position >>> 0) + 0x9e3779b9));
  return h / 4294967296;
}

/**
 * Picks an output class from logits for the token at `position`: argmax when temperature is 0,
 * otherwise temperature-scaled softmax restricted to the top-p nucleus. Ties go to the lower index.
 */
export function sampleToken(logits: Float32Array, sampling: SamplerParams, position: number): number {
  const n = logits.length;
  let best = 0;
  for (let i = 1; i < n; i++) if (logits[i]! > logits[best]!) best = i;
  const t = sampling.temperature;
  if (!(t > 0) || !Number.isFinite(t)) return best;

  const max = logits[best]!;
  const probs = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    probs[i] = Math.exp((logits[i]! - max) / t);
    total += probs[i]!;
  }
  const u = samplingUniform(sampling.seed, position);
  const topP = sampling.topP;

  if (!(topP < 1)) {
    const target = u * total;
    let cum = 0;
    for (let i = 0; i < n; i++) {
      cum += probs[i]!;
      if (cum > target && probs[i]! > 0) return i;
    }
    return best;
  }

  // Nucleus: the most probable classes whose mass first reaches topP (at least one).
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => probs[b]! - probs[a]! || a - b);
  const limit = Math.max(0, topP) * total;
  let mass = 0;
  let size = 0;
  while (size < n && (size === 0 || mass < limit)) mass += probs[order[size++]!]!;
  const target = u * mass;
  let cum = 0;
  for (let k = 0; k < size; k++) {
    cum += probs[order[k]!]!;
    if (cum > target) return order[k]!;
  }
  return order[size - 1]!;
}

/** How far back the repetition penalty looks, in generated words. */
export const REPETITION_WINDOW = 24;
/** Logit subtracted per occurrence of a word within the window (a frequency penalty, so loops always break). */
export const REPETITION_PENALTY = 1.5;

/**
 * Lowers the logits of recently generated words so greedy output does not loop on one word.
 * Depends only on the generated words, so it is as deterministic as the model.
 */
export function applyRepetitionPenalty(
  logits: Float32Array,
  recentWords: readonly number[],
  penalty: number = REPETITION_PENALTY,
  window: number = REPETITION_WINDOW,
): void {
  for (let i = Math.max(0, recentWords.length - window); i < recentWords.length; i++) {
    const w = recentWords[i]!;
    if (w === EOS_INDEX || !Number.isInteger(w) || w < 0 || w >= logits.length) continue;
    logits[w] = logits[w]! - penalty;
  }
}
