import { beforeAll, describe, expect, it } from 'vitest';
import type { DecodeSession, GeneratedToken, KvCache, SamplingParams } from '../../lib/core/ports';
import { ReferenceBackend } from '../../lib/adapters/backend-reference';
import {
  applyRepetitionPenalty,
  DEFAULT_REFERENCE_CONFIG,
  EOS_INDEX,
  ReferenceModel,
  referenceModel,
  sampleToken,
  samplingUniform,
  WORDS,
} from '../../lib/adapters/reference-model';
import { expDet, rootDet, sinCosDet } from '../../lib/adapters/reference-model/math';
import { chatPromptIds, completionPromptIds, loadLlama3Tokenizer } from '../../lib/adapters/tokenizer-llama3';
import type { Llama3Tokenizer } from '../../lib/adapters/tokenizer-llama3';
import { LLAMA3_WORD_IDS } from '../../lib/adapters/reference-word-ids';

let tokenizer: Llama3Tokenizer;

beforeAll(async () => {
  tokenizer = await loadLlama3Tokenizer();
});

const greedy: SamplingParams = { temperature: 0, topP: 1, seed: 0, maxTokens: 32 };

/** Simulates the handoff: every float goes through bytes into fresh arrays, in a plain object. */
function deepCopyKv(kv: KvCache): KvCache {
  const copy = (a: Float32Array) =>
    new Float32Array(new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice().buffer);
  return {
    model: kv.model,
    layers: kv.layers,
    kvHeads: kv.kvHeads,
    headDim: kv.headDim,
    tokens: kv.tokens,
    keys: kv.keys.map(copy),
    values: kv.values.map(copy),
  };
}

async function drain(session: DecodeSession): Promise<GeneratedToken[]> {
  const out: GeneratedToken[] = [];
  for (let t = await session.next(); t !== null; t = await session.next()) out.push(t);
  session.close();
  return out;
}

/** Prefill then decode on one backend, handing the KV over in memory (colocated). */
async function generate(backend: ReferenceBackend, promptIds: number[], sampling: SamplingParams) {
  const pre = await backend.prefill(promptIds, sampling);
  const rest = await drain(backend.startDecode({ promptIds, messages: [], sampling, ...pre }));
  return [pre.firstToken!, ...rest];
}

/** Prefill on one backend, KV through bytes, decode on another backend instance (disaggregated). */
async function generateDisaggregated(seed: number, promptIds: number[], sampling: SamplingParams) {
  const pre = await new ReferenceBackend({ tokenizer, seed }).prefill(promptIds, sampling);
  const decoder = new ReferenceBackend({ tokenizer, seed });
  const kv = deepCopyKv(pre.kv!);
  const firstToken = { ...pre.firstToken! };
  const rest = await drain(decoder.startDecode({ promptIds, messages: [], sampling, kv, firstToken }));
  return [firstToken, ...rest];
}

const textOf = (tokens: readonly GeneratedToken[]) => tokens.map((t) => t.text).join('');

function promptOf(length: number, salt: number): number[] {
  return Array.from({ length }, (_, i) => (i * 7919 + salt * 104729 + 17) % 128000);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('reference model', () => {
  const model = referenceModel(1);

  it.each([
    [1, 1],
    [5, 12],
    [40, 3],
    [300, 20], // longer than the attention window
  ])('prefill(P) then step over T gives the logits of prefill(P ++ T) (|P| = %i, |T| = %i)', (pLen, tLen) => {
    const prompt = promptOf(pLen, pLen);
    const continuation = promptOf(tLen, 1000 + tLen);
    let { kv } = model.prefill(prompt);
    let logits: Float32Array = new Float32Array(0);
    for (const id of continuation) ({ kv, logits } = model.step(kv, id));
    const full = model.prefill([...prompt, ...continuation]);
    expect(kv.tokens).toBe(pLen + tLen);
    expect(maxAbsDiff(logits, full.lastLogits)).toBe(0);
    for (let l = 0; l < kv.layers; l++) {
      expect(maxAbsDiff(kv.keys[l]!, full.kv.keys[l]!)).toBe(0);
      expect(maxAbsDiff(kv.values[l]!, full.kv.values[l]!)).toBe(0);
    }
  });

  it('keeps the prefill/step equality on the generic attention path (headDim 8, full attention)', () => {
    const config = {
      ...DEFAULT_REFERENCE_CONFIG,
      name: 'tiny-hd8',
      dim: 32,
      heads: 4,
      kvHeads: 1,
      headDim: 8,
      attentionWindow: Infinity,
    };
    const small = new ReferenceModel(5, config);
    const prompt = promptOf(50, 5);
    let { kv } = small.prefill(prompt);
    let logits: Float32Array = new Float32Array(0);
    for (const id of [7, 8, 9]) ({ kv, logits } = small.step(kv, id));
    expect(kv.keys[0]!.length).toBe(53 * 8);
    expect(maxAbsDiff(logits, small.prefill([...prompt, 7, 8, 9]).lastLogits)).toBe(0);
  });

  it('steps identically from a KV cache that went through bytes into plain arrays', () => {
    const prompt = promptOf(60, 7);
    const { kv } = model.prefill(prompt);
    const a = model.step(kv, 4242);
    const b = model.step(deepCopyKv(kv), 4242);
    expect(maxAbsDiff(a.logits, b.logits)).toBe(0);
  });

  it('exports exactly tokens * kvHeads * headDim floats per layer for keys and values', () => {
    const { kv } = model.prefill(promptOf(37, 1));
    const { layers, kvHeads, headDim } = DEFAULT_REFERENCE_CONFIG;
    expect([kv.model, kv.layers, kv.kvHeads, kv.headDim, kv.tokens]).toEqual([model.id, layers, kvHeads, headDim, 37]);
    expect(kv.keys).toHaveLength(layers);
    expect(kv.values).toHaveLength(layers);
    for (let l = 0; l < layers; l++) {
      expect(kv.keys[l]!.length).toBe(37 * kvHeads * headDim);
      expect(kv.values[l]!.length).toBe(37 * kvHeads * headDim);
    }
    const next = model.step(kv, 1).kv;
    expect(next.keys[0]!.length).toBe(38 * kvHeads * headDim);
  });

  it('never changes a cache it steps from, so branching from one prefix is safe', () => {
    const { kv } = model.prefill(promptOf(20, 2));
    const before = deepCopyKv(kv);
    const a1 = model.step(kv, 111);
    const b1 = model.step(kv, 222); // same prefix, different token: must not overwrite a1's position
    const a2 = model.step(a1.kv, 333);
    const a2Fresh = model.step(model.step(deepCopyKv(kv), 111).kv, 333);
    expect(kv.tokens).toBe(20);
    for (let l = 0; l < kv.layers; l++) expect(maxAbsDiff(kv.keys[l]!, before.keys[l]!)).toBe(0);
    expect(maxAbsDiff(a1.logits, b1.logits)).toBeGreaterThan(0);
    expect(maxAbsDiff(a2.logits, a2Fresh.logits)).toBe(0);
  });

  it('grows its cache past the initial headroom without changing results', () => {
    const prompt = promptOf(3, 9);
    const continuation = promptOf(200, 10);
    let { kv } = model.prefill(prompt);
    let logits: Float32Array = new Float32Array(0);
    for (const id of continuation) ({ kv, logits } = model.step(kv, id));
    expect(maxAbsDiff(logits, model.prefill([...prompt, ...continuation]).lastLogits)).toBe(0);
  });

  it('depends on the KV cache: corrupting one layer changes the next logits', () => {
    const { kv } = model.prefill(promptOf(30, 3));
    const corrupt = deepCopyKv(kv);
    (corrupt.values[2] as Float32Array).fill(0);
    expect(maxAbsDiff(model.step(kv, 5).logits, model.step(corrupt, 5).logits)).toBeGreaterThan(1e-3);
  });

  it('depends on earlier prompt tokens, not only the last one', () => {
    const a = model.prefill([...promptOf(10, 1), 500]).lastLogits;
    const b = model.prefill([...promptOf(10, 2), 500]).lastLogits;
    expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-3);
  });

  it('builds weights once per seed, and different seeds are different networks', () => {
    expect(referenceModel(1)).toBe(model);
    const other = referenceModel(2);
    expect(other.id).not.toBe(model.id);
    expect(maxAbsDiff(model.prefill([1, 2, 3]).lastLogits, other.prefill([1, 2, 3]).lastLogits)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(new ReferenceModel(1).prefill([4, 5]).lastLogits, model.prefill([4, 5]).lastLogits)).toBe(0);
  });

  it("refuses a KV cache from another seed's network, naming both", () => {
    const { kv } = referenceModel(2).prefill([1, 2, 3]);
    expect(() => model.step(kv, 1)).toThrow(/reference-tiny-v1-s2.*reference-tiny-v1-s1/);
  });

  it('refuses a KV cache whose arrays do not match its token count', () => {
    const kv = deepCopyKv(model.prefill([1, 2, 3]).kv);
    expect(() => model.step({ ...kv, tokens: 4 }, 1)).toThrow(/layer 0 must hold/);
    expect(() => model.step({ ...kv, keys: kv.keys.slice(1) }, 1)).toThrow(/one array per layer/);
  });

  it('rejects an empty prompt and invalid token ids', () => {
    expect(() => model.prefill([])).toThrow(/at least one token/);
    expect(() => model.prefill([1, -2])).toThrow(RangeError);
    expect(() => model.step(model.prefill([1]).kv, 1.5)).toThrow(RangeError);
  });

  it('keeps activations sane: finite logits with a spread that makes sampling non-trivial', () => {
    const logits = model.prefill(promptOf(500, 4)).lastLogits;
    const words = Array.from(logits.subarray(0, EOS_INDEX));
    expect(words.every(Number.isFinite)).toBe(true);
    const max = Math.max(...words);
    expect(max - Math.min(...words)).toBeGreaterThan(4);
    expect(max - Math.min(...words)).toBeLessThan(100);
    expect(logits[EOS_INDEX]).toBeCloseTo(max - DEFAULT_REFERENCE_CONFIG.eosMargin, 5);
  });
});

describe('engine-independent math', () => {
  it('expDet matches Math.exp to 1e-12 relative error', () => {
    for (let x = -700; x <= 700; x += 0.37) expect(Math.abs(expDet(x) / Math.exp(x) - 1)).toBeLessThan(1e-12);
    expect(expDet(-800)).toBe(0);
    expect(expDet(800)).toBe(Infinity);
  });

  it('sinCosDet matches Math.cos and Math.sin to 1e-10 for RoPE-sized angles', () => {
    const out = new Float64Array(2);
    for (let x = -1e5; x <= 1e5; x += 97.3) {
      sinCosDet(x, out, 0);
      expect(Math.abs(out[0]! - Math.cos(x))).toBeLessThan(1e-10);
      expect(Math.abs(out[1]! - Math.sin(x))).toBeLessThan(1e-10);
    }
  });

  it('rootDet finds the RoPE frequency base', () => {
    expect(rootDet(1 / 10000, 8)).toBeCloseTo(Math.pow(10000, -1 / 8), 14);
    expect(rootDet(2, 2)).toBeCloseTo(Math.SQRT2, 14);
  });
});

describe('sampling', () => {
  const logits = Float32Array.from([0.5, 3, 2.5, -1, 2.9]);

  it('is greedy at temperature 0, ties to the lower index', () => {
    expect(sampleToken(logits, { temperature: 0, topP: 1, seed: 1 }, 0)).toBe(1);
    expect(sampleToken(Float32Array.from([1, 4, 4]), { temperature: 0, topP: 0.5, seed: 9 }, 3)).toBe(1);
  });

  it('draws its randomness from (seed, position) only', () => {
    const p = { temperature: 1, topP: 1, seed: 77 };
    const forward = Array.from({ length: 50 }, (_, i) => sampleToken(logits, p, i));
    const backward = Array.from({ length: 50 }, (_, i) => sampleToken(logits, p, 49 - i)).reverse();
    expect(backward).toEqual(forward);
    expect(samplingUniform(77, 10)).toBe(samplingUniform(77, 10));
    expect(samplingUniform(77, 10)).not.toBe(samplingUniform(78, 10));
    expect(samplingUniform(77, 10)).not.toBe(samplingUniform(77, 11));
    expect(samplingUniform(2 ** 40 + 5, 3)).not.toBe(samplingUniform(5, 3));
  });

  it('follows the softmax distribution at temperature 1', () => {
    const counts = new Array<number>(logits.length).fill(0);
    const n = 20_000;
    for (let i = 0; i < n; i++) counts[sampleToken(logits, { temperature: 1, topP: 1, seed: 5 }, i)]!++;
    const z = Array.from(logits).reduce((s, l) => s + Math.exp(l), 0);
    logits.forEach((l, i) => expect(Math.abs(counts[i]! / n - Math.exp(l) / z)).toBeLessThan(0.015));
  });

  it('restricts sampling to the top-p nucleus', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) seen.add(sampleToken(logits, { temperature: 1, topP: 0.6, seed: 3 }, i));
    expect([...seen].sort()).toEqual([1, 4]); // p(1) = 0.41, p(1) + p(4) = 0.78 >= 0.6
  });

  it('penalises recent words by how often they occurred', () => {
    const l = Float32Array.from([5, 5, 5, 0]);
    applyRepetitionPenalty(l, [0, 0, 1, EOS_INDEX], 1.5, 24);
    expect(Array.from(l)).toEqual([2, 3.5, 5, 0]);
    const windowed = Float32Array.from([5, 5]);
    applyRepetitionPenalty(windowed, [0, 1], 1, 1);
    expect(Array.from(windowed)).toEqual([5, 4]);
  });
});

describe('ReferenceBackend', () => {
  it('is named "reference" and stamps its model id on the KV cache', async () => {
    const backend = new ReferenceBackend({ tokenizer, seed: 3 });
    expect(backend.name).toBe('reference');
    const out = await backend.prefill([128000, 9906, 1917], greedy);
    expect(out.kv?.model).toBe(backend.modelId);
    expect(out.kv?.tokens).toBe(3);
  });

  it('is deterministic: the same prompt and seed give the same text twice', async () => {
    const prompt = completionPromptIds(tokenizer, 'Once upon a time');
    const sampling = { temperature: 0.9, topP: 0.95, seed: 1234, maxTokens: 40 };
    const a = await generate(new ReferenceBackend({ tokenizer }), prompt, sampling);
    const b = await generate(new ReferenceBackend({ tokenizer }), prompt, sampling);
    expect(a).toHaveLength(40);
    expect(textOf(b)).toBe(textOf(a));
  });

  it('gives different text for different sampling seeds at temperature > 0', async () => {
    const backend = new ReferenceBackend({ tokenizer });
    const prompt = completionPromptIds(tokenizer, 'Once upon a time');
    const a = await generate(backend, prompt, { temperature: 1, topP: 1, seed: 1, maxTokens: 30 });
    const b = await generate(backend, prompt, { temperature: 1, topP: 1, seed: 2, maxTokens: 30 });
    expect(textOf(a)).not.toBe(textOf(b));
  });

  it('emits readable words whose ids are the real Llama 3 tokens for their text', async () => {
    const backend = new ReferenceBackend({ tokenizer });
    const prompt = chatPromptIds(tokenizer, [{ role: 'user', content: 'Tell me a story.' }]);
    const tokens = await generate(backend, prompt, { temperature: 0.8, topP: 0.9, seed: 8, maxTokens: 60 });
    const words = new Set(WORDS);
    for (const t of tokens) {
      expect(t.text).toMatch(/^ [a-z]+$/);
      expect(words.has(t.text.slice(1))).toBe(true);
      expect(tokenizer.encode(t.text)).toEqual([t.id]);
      expect(tokenizer.decode([t.id!])).toBe(t.text);
    }
  });

  it("holds in its generated table every output word's real Llama 3 id, and generates the same tokens from it", async () => {
    expect(LLAMA3_WORD_IDS).toEqual(WORDS.map((word) => tokenizer.encode(` ${word}`)[0]));
    expect(WORDS.every((word) => tokenizer.encode(` ${word}`).length === 1)).toBe(true);
    const prompt = chatPromptIds(tokenizer, [{ role: 'user', content: 'Tell me a story.' }]);
    const sampling = { temperature: 0.8, topP: 0.9, seed: 8, maxTokens: 60 };
    const fromTable = await generate(new ReferenceBackend({}), prompt, sampling);
    expect(fromTable).toEqual(await generate(new ReferenceBackend({ tokenizer }), prompt, sampling));
  });

  it('does not loop on one word under greedy decoding', async () => {
    const backend = new ReferenceBackend({ tokenizer });
    const tokens = await generate(backend, completionPromptIds(tokenizer, 'The'), { ...greedy, maxTokens: 120 });
    expect(tokens).toHaveLength(120);
    expect(new Set(tokens.map((t) => t.id)).size).toBeGreaterThan(40);
    for (let i = 2; i < tokens.length; i++) {
      expect(tokens[i]!.id === tokens[i - 1]!.id && tokens[i]!.id === tokens[i - 2]!.id).toBe(false);
    }
  });

  it('decoding from the KV cache equals recomputing the whole sequence at every step', async () => {
    const backend = new ReferenceBackend({ tokenizer, seed: 4 });
    const model = referenceModel(4);
    const prompt = completionPromptIds(tokenizer, 'The quick brown fox jumps over the lazy dog.');
    const sampling = { temperature: 0.7, topP: 0.9, seed: 99, maxTokens: 25 };
    const tokens = await generate(backend, prompt, sampling);

    const wordOf = new Map(WORDS.map((w, i) => [tokenizer.encode(` ${w}`)[0]!, i]));
    const ids = [...prompt];
    const recent: number[] = [];
    const expected: number[] = [];
    for (let i = 0; i < sampling.maxTokens; i++) {
      const logits = model.prefill(ids).lastLogits;
      if (i === 0) logits[EOS_INDEX] = -Infinity;
      else applyRepetitionPenalty(logits, recent);
      const word = sampleToken(logits, sampling, ids.length);
      if (word === EOS_INDEX) break;
      const id = tokenizer.encode(` ${WORDS[word]}`)[0]!;
      expected.push(id);
      recent.push(wordOf.get(id)!);
      ids.push(id);
    }
    expect(tokens.map((t) => t.id)).toEqual(expected);
  });

  describe('disaggregated output equals colocated output, token for token', () => {
    const texts = [
      'Hello world',
      'Explain disaggregated inference in one paragraph.',
      'Grüße, 東京! 🦙',
      'a',
      'The KV cache is handed from prefill to decode. '.repeat(30), // longer than the attention window
    ];
    const combos: [number, number, SamplingParams][] = [];
    for (let i = 0; i < 30; i++) {
      const temperature = [0, 0.7, 1.0, 1.3][i % 4]!;
      const topP = [1, 0.9, 0.5][i % 3]!;
      combos.push([i % texts.length, 1 + (i % 2), { temperature, topP, seed: 1000 + i * 7, maxTokens: 24 }]);
    }

    it.each(combos)('prompt %i, model seed %i, sampling %o', async (textIndex, modelSeed, sampling) => {
      const prompt =
        textIndex % 2 === 0
          ? chatPromptIds(tokenizer, [{ role: 'user', content: texts[textIndex]! }])
          : completionPromptIds(tokenizer, texts[textIndex]!);
      const colocated = await generate(new ReferenceBackend({ tokenizer, seed: modelSeed }), prompt, sampling);
      const disaggregated = await generateDisaggregated(modelSeed, prompt, sampling);
      expect(colocated.length).toBeGreaterThan(0);
      expect(disaggregated).toEqual(colocated);
    });
  });

  it('produces different text when decode is given a different KV cache', async () => {
    const backend = new ReferenceBackend({ tokenizer });
    const promptA = completionPromptIds(tokenizer, 'alpha beta gamma delta');
    const promptB = completionPromptIds(tokenizer, 'one two three four');
    const sampling = { ...greedy, maxTokens: 20 };
    const a = await backend.prefill(promptA, sampling);
    const b = await backend.prefill(promptB, sampling);
    const fromA = await drain(backend.startDecode({ promptIds: promptA, messages: [], sampling, ...a }));
    const fromB = await drain(
      backend.startDecode({ promptIds: promptA, messages: [], sampling, kv: b.kv, firstToken: a.firstToken }),
    );
    expect(textOf(fromB)).not.toBe(textOf(fromA));
  });

  it('counts the first token toward maxTokens', async () => {
    const backend = new ReferenceBackend({ tokenizer });
    const prompt = completionPromptIds(tokenizer, 'Count');
    expect(await generate(backend, prompt, { ...greedy, maxTokens: 5 })).toHaveLength(5);
    expect(await generate(backend, prompt, { ...greedy, maxTokens: 1 })).toHaveLength(1);
  });

  it('sometimes ends before maxTokens when sampling, never at the first token', async () => {
    const backend = new ReferenceBackend({ tokenizer });
    const prompt = completionPromptIds(tokenizer, 'Stop when you like');
    const lengths: number[] = [];
    for (let seed = 0; seed < 12; seed++) {
      const tokens = await generate(backend, prompt, { temperature: 1.5, topP: 1, seed, maxTokens: 300 });
      lengths.push(tokens.length);
    }
    expect(Math.min(...lengths)).toBeGreaterThanOrEqual(1);
    expect(lengths.some((n) => n < 300)).toBe(true);
  });

  it('returns null after the end and after close', async () => {
    const backend = new ReferenceBackend({ tokenizer });
    const promptIds = completionPromptIds(tokenizer, 'x');
    const sampling = { ...greedy, maxTokens: 3 };
    const pre = await backend.prefill(promptIds, sampling);
    const session = backend.startDecode({ promptIds, messages: [], sampling, ...pre });
    expect(await session.next()).not.toBeNull();
    expect(await session.next()).not.toBeNull();
    expect(await session.next()).toBeNull();
    expect(await session.next()).toBeNull();
    const closed = backend.startDecode({ promptIds, messages: [], sampling: { ...greedy, maxTokens: 50 }, ...pre });
    closed.close();
    expect(await closed.next()).toBeNull();
  });

  it('throws a clear error when decode is started without a KV cache', async () => {
    const backend = new ReferenceBackend({ tokenizer });
    const promptIds = completionPromptIds(tokenizer, 'x');
    const pre = await backend.prefill(promptIds, greedy);
    expect(() =>
      backend.startDecode({ promptIds, messages: [], sampling: greedy, kv: null, firstToken: pre.firstToken }),
    ).toThrow(/needs the prompt KV cache.*input\.kv is null/);
    expect(() =>
      backend.startDecode({ promptIds, messages: [], sampling: greedy, kv: pre.kv, firstToken: null }),
    ).toThrow(/needs the first token/);
  });

  it('refuses a KV cache that does not cover the prompt, or that another model made', async () => {
    const backend = new ReferenceBackend({ tokenizer, seed: 1 });
    const promptIds = completionPromptIds(tokenizer, 'abc def');
    const pre = await backend.prefill(promptIds, greedy);
    expect(() => backend.startDecode({ promptIds: [...promptIds, 5], messages: [], sampling: greedy, ...pre })).toThrow(
      /holds 3 tokens but the prompt has 4/,
    );
    const other = await new ReferenceBackend({ tokenizer, seed: 2 }).prefill(promptIds, greedy);
    expect(() => backend.startDecode({ promptIds, messages: [], sampling: greedy, ...other })).toThrow(
      /does not fit: model is reference-tiny-v1-s2/,
    );
  });

  it('rejects an empty prompt', async () => {
    await expect(new ReferenceBackend({ tokenizer }).prefill([], greedy)).rejects.toThrow(/at least one prompt token/);
  });

  it('refuses a tokenizer in which an output word is not a single token', () => {
    const charTokenizer = {
      name: 'chars',
      encode: (text: string) => Array.from(text, (c) => c.codePointAt(0)!),
      decode: (ids: readonly number[]) => String.fromCodePoint(...ids),
    };
    expect(() => new ReferenceBackend({ tokenizer: charTokenizer })).toThrow(/tokens in tokenizer chars/);
  });
});
