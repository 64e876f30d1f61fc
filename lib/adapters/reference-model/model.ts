/**
 * A tiny decoder-only transformer (RMSNorm, grouped-query attention with RoPE, SwiGLU) with
 * seeded weights. Its KV cache is real: stepping from a handed-over cache gives the same logits
 * as recomputing the whole sequence.
 */
import type { KvCache } from '../../core/ports';
import { DEFAULT_MODEL_SEED, DEFAULT_REFERENCE_CONFIG, EOS_INDEX, validateConfig } from './config';
import type { ReferenceModelConfig } from './config';
import { expDet, rootDet, sinCosDet } from './math';
import { generateWeights } from './weights';
import type { LayerWeights, ModelWeights } from './weights';

/** Growable per-layer key/value storage, shared by the cache handles that are prefixes of it. */
class KvBuffer {
  tokens = 0;
  keys: Float32Array[];
  values: Float32Array[];
  capacity: number;

  constructor(
    readonly layers: number,
    /** Floats per token per layer: kvHeads * headDim. */
    readonly stride: number,
    capacity: number,
  ) {
    this.capacity = Math.max(1, capacity);
    this.keys = Array.from({ length: layers }, () => new Float32Array(this.capacity * stride));
    this.values = Array.from({ length: layers }, () => new Float32Array(this.capacity * stride));
  }

  ensure(tokens: number): void {
    if (tokens <= this.capacity) return;
    // Doubling keeps decode's one-token appends amortised O(1).
    const capacity = Math.max(tokens, this.capacity * 2);
    const used = this.tokens * this.stride;
    const grow = (old: Float32Array) => {
      const next = new Float32Array(capacity * this.stride);
      next.set(old.subarray(0, used));
      return next;
    };
    this.keys = this.keys.map(grow);
    this.values = this.values.map(grow);
    this.capacity = capacity;
  }
}

/**
 * The reference model's KV cache: an immutable view of the first `tokens` positions of a buffer.
 * Buffers are append-only, so a handle stays valid when later steps extend the same buffer.
 */
export class ReferenceKvCache implements KvCache {
  private keyViews: Float32Array[] | null = null;
  private valueViews: Float32Array[] | null = null;

  constructor(
    readonly model: string,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly tokens: number,
    /** Shared storage; only the handle whose `tokens` equals `buffer.tokens` may append to it. */
    readonly buffer: KvBuffer,
  ) {}

  get layers(): number {
    return this.buffer.layers;
  }

  /** keys[layer] holds exactly tokens * kvHeads * headDim floats. Treat as read-only. */
  get keys(): readonly Float32Array[] {
    this.keyViews ??= this.buffer.keys.map((k) => k.subarray(0, this.tokens * this.buffer.stride));
    return this.keyViews;
  }

  get values(): readonly Float32Array[] {
    this.valueViews ??= this.buffer.values.map((v) => v.subarray(0, this.tokens * this.buffer.stride));
    return this.valueViews;
  }
}

export interface PrefillResult {
  readonly kv: ReferenceKvCache;
  /** Logits over the output classes (words, then EOS_INDEX) for the position after the prompt. */
  readonly lastLogits: Float32Array;
}

export interface StepResult {
  readonly kv: ReferenceKvCache;
  readonly logits: Float32Array;
}

export class ReferenceModel {
  readonly id: string;
  private readonly w: ModelWeights;
  private readonly qDim: number;
  private readonly kvDim: number;
  private readonly invFreq: Float64Array;
  // Scratch buffers: the model is synchronous and single-threaded, so one set per instance suffices.
  private readonly xn: Float32Array;
  private readonly q: Float32Array;
  private readonly k: Float32Array;
  private readonly v: Float32Array;
  private readonly att: Float32Array;
  private readonly proj: Float32Array;
  private readonly gate: Float32Array;
  private readonly up: Float32Array;
  private readonly h: Float32Array;
  /** cos, sin pairs of this position's rotation angles. */
  private readonly rot: Float64Array;
  private readonly acc: Float64Array;
  private scores = new Float64Array(1024);
  private readonly attendHead: AttendFn;

  constructor(
    readonly seed: number = DEFAULT_MODEL_SEED,
    readonly config: ReferenceModelConfig = DEFAULT_REFERENCE_CONFIG,
  ) {
    validateConfig(config);
    if (!Number.isSafeInteger(seed)) throw new RangeError(`reference model: seed ${seed} must be a safe integer`);
    this.id = `${config.name}-s${seed}`;
    this.w = generateWeights(config, seed);
    this.qDim = config.heads * config.headDim;
    this.kvDim = config.kvHeads * config.headDim;
    const half = config.headDim / 2;
    // invFreq[i] = theta^(-2i/headDim), as powers of one root so no engine-specific Math.pow is involved.
    const base = rootDet(1 / config.ropeTheta, half);
    this.invFreq = new Float64Array(half);
    for (let i = 0, f = 1; i < half; i++, f *= base) this.invFreq[i] = f;
    this.xn = new Float32Array(config.dim);
    this.q = new Float32Array(this.qDim);
    this.k = new Float32Array(this.kvDim);
    this.v = new Float32Array(this.kvDim);
    this.att = new Float32Array(this.qDim);
    this.proj = new Float32Array(config.dim);
    this.gate = new Float32Array(config.ffnHidden);
    this.up = new Float32Array(config.ffnHidden);
    this.h = new Float32Array(config.dim);
    this.rot = new Float64Array(2 * half);
    this.acc = new Float64Array(config.headDim);
    this.attendHead = config.headDim === 16 ? attend16 : attend;
  }

  /** Runs the whole prompt (causal attention), layer by layer, and returns its KV cache and last logits. */
  prefill(tokenIds: readonly number[]): PrefillResult {
    const steps = this.prefillSteps(tokenIds);
    for (;;) {
      const next = steps.next();
      if (next.done) return next.value;
    }
  }

  /**
   * `prefill`, giving the event loop back every `sliceMs` of compute (between one position's layer and the next),
   * so a long prompt never holds a server's HTTP loop for longer than a slice. Same result as `prefill`: the
   * scratch buffers are used within one layer step only, so a decode step of another request may run between.
   */
  async prefillSliced(tokenIds: readonly number[], sliceMs: number): Promise<PrefillResult> {
    const steps = this.prefillSteps(tokenIds);
    let sliceStart = performance.now();
    for (;;) {
      const next = steps.next();
      if (next.done) return next.value;
      if (performance.now() - sliceStart >= sliceMs) {
        await new Promise((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
  }

  /** The prefill, one position's layer at a time (a yield after each), returning the cache and the last logits. */
  private *prefillSteps(tokenIds: readonly number[]): Generator<void, PrefillResult> {
    const n = tokenIds.length;
    if (n === 0) throw new Error('reference model: prefill needs at least one token');
    const { dim } = this.config;
    // Headroom so the first decode steps append without reallocating.
    const buffer = new KvBuffer(this.config.layers, this.kvDim, n + 64);
    const hidden = new Float32Array(n * dim);
    for (let p = 0; p < n; p++) this.embed(checkTokenId(tokenIds[p]), hidden, p * dim);
    const last = this.config.layers - 1;
    for (let l = 0; l < this.config.layers; l++) {
      // In the last layer only the final position's output is read; the others just contribute K and V.
      for (let p = 0; p < n; p++) {
        this.layerAt(l, hidden, p * dim, p, buffer, l === last && p < n - 1);
        yield;
      }
    }
    buffer.tokens = n;
    const lastLogits = this.logits(hidden, (n - 1) * dim);
    return { kv: new ReferenceKvCache(this.id, this.config.kvHeads, this.config.headDim, n, buffer), lastLogits };
  }

  /**
   * Appends one token at position kv.tokens and returns the extended cache and the next logits.
   * The given cache is never modified; a cache not made by this model (e.g. decoded from a blob) is copied in once.
   */
  step(kv: KvCache, tokenId: number): StepResult {
    const id = checkTokenId(tokenId);
    const buffer = this.ownedBuffer(kv);
    const pos = kv.tokens;
    buffer.ensure(pos + 1);
    const h = this.h;
    this.embed(id, h, 0);
    for (let l = 0; l < this.config.layers; l++) this.layerAt(l, h, 0, pos, buffer);
    buffer.tokens = pos + 1;
    const logits = this.logits(h, 0);
    return { kv: new ReferenceKvCache(this.id, this.config.kvHeads, this.config.headDim, pos + 1, buffer), logits };
  }

  /** Checks that a cache fits this model's shape; throws a message naming the mismatch. */
  checkKv(kv: KvCache): void {
    const { layers, kvHeads, headDim } = this.config;
    const problems: string[] = [];
    if (kv.model !== this.id) problems.push(`model is ${kv.model}, expected ${this.id}`);
    if (kv.layers !== layers) problems.push(`layers ${kv.layers}, expected ${layers}`);
    if (kv.kvHeads !== kvHeads) problems.push(`kvHeads ${kv.kvHeads}, expected ${kvHeads}`);
    if (kv.headDim !== headDim) problems.push(`headDim ${kv.headDim}, expected ${headDim}`);
    if (!Number.isInteger(kv.tokens) || kv.tokens < 1) problems.push(`tokens ${kv.tokens} is not a positive integer`);
    const floats = kv.tokens * this.kvDim;
    if (kv.keys.length !== layers || kv.values.length !== layers) problems.push('keys/values need one array per layer');
    for (let l = 0; l < Math.min(kv.keys.length, kv.values.length); l++) {
      if (kv.keys[l]?.length !== floats || kv.values[l]?.length !== floats) {
        problems.push(`layer ${l} must hold ${floats} keys and values`);
        break;
      }
    }
    if (problems.length > 0) throw new Error(`reference model: KV cache does not fit: ${problems.join('; ')}`);
  }

  // Appends in place only at the tip of a buffer this model made; anything else is copied so no caller's cache changes.
  private ownedBuffer(kv: KvCache): KvBuffer {
    if (kv instanceof ReferenceKvCache && kv.model === this.id && kv.buffer.tokens === kv.tokens) return kv.buffer;
    this.checkKv(kv);
    const buffer = new KvBuffer(this.config.layers, this.kvDim, Math.max(kv.tokens * 2, kv.tokens + 64));
    for (let l = 0; l < this.config.layers; l++) {
      buffer.keys[l]!.set(kv.keys[l]!);
      buffer.values[l]!.set(kv.values[l]!);
    }
    buffer.tokens = kv.tokens;
    return buffer;
  }

  private embed(tokenId: number, out: Float32Array, off: number): void {
    const { dim, embedRows } = this.config;
    const row = (tokenId % embedRows) * dim;
    const e = this.w.embed;
    for (let i = 0; i < dim; i++) out[off + i] = e[row + i]!;
  }

  /** One layer at one position: writes this position's K/V into the buffer and (unless kvOnly) updates h in place. */
  private layerAt(l: number, h: Float32Array, hOff: number, pos: number, buffer: KvBuffer, kvOnly = false): void {
    const { dim, heads, kvHeads, headDim, ffnHidden, normEps } = this.config;
    const lw: LayerWeights = this.w.layers[l]!;
    const { xn, q, k, v, att, proj, gate, up } = this;

    rmsNorm(h, hOff, dim, normEps, xn);
    matVec(lw.wk, this.kvDim, dim, xn, 0, k);
    matVec(lw.wv, this.kvDim, dim, xn, 0, v);
    this.ropeAngles(pos);
    for (let hd = 0; hd < kvHeads; hd++) this.rope(k, hd * headDim);
    buffer.keys[l]!.set(k, pos * this.kvDim);
    buffer.values[l]!.set(v, pos * this.kvDim);
    if (kvOnly) return;
    matVec(lw.wq, this.qDim, dim, xn, 0, q);
    for (let hd = 0; hd < heads; hd++) this.rope(q, hd * headDim);

    const group = heads / kvHeads;
    const from = Math.max(0, pos + 1 - this.config.attentionWindow);
    if (this.scores.length < pos + 1 - from)
      this.scores = new Float64Array(Math.max(pos + 1 - from, this.scores.length * 2));
    const keys = buffer.keys[l]!;
    const values = buffer.values[l]!;
    for (let hd = 0; hd < heads; hd++) {
      const qOff = hd * headDim;
      const kvOff = Math.floor(hd / group) * headDim;
      this.attendHead(q, qOff, keys, values, this.kvDim, kvOff, headDim, from, pos + 1, this.scores, this.acc, att);
    }
    matVec(lw.wo, dim, this.qDim, att, 0, proj);
    for (let i = 0; i < dim; i++) h[hOff + i] = h[hOff + i]! + proj[i]!;

    rmsNorm(h, hOff, dim, normEps, xn);
    matVec(lw.wGate, ffnHidden, dim, xn, 0, gate);
    matVec(lw.wUp, ffnHidden, dim, xn, 0, up);
    for (let i = 0; i < ffnHidden; i++) {
      const g = gate[i]!;
      gate[i] = (g / (1 + expDet(-g))) * up[i]!;
    }
    matVec(lw.wDown, dim, ffnHidden, gate, 0, proj);
    for (let i = 0; i < dim; i++) h[hOff + i] = h[hOff + i]! + proj[i]!;
  }

  private ropeAngles(pos: number): void {
    for (let i = 0; i < this.invFreq.length; i++) sinCosDet(pos * this.invFreq[i]!, this.rot, 2 * i);
  }

  // Rotates pairs (i, i + headDim/2) of one head, the Llama "rotate half" layout.
  private rope(x: Float32Array, off: number): void {
    const half = this.invFreq.length;
    for (let i = 0; i < half; i++) {
      const a = x[off + i]!;
      const b = x[off + i + half]!;
      const c = this.rot[2 * i]!;
      const s = this.rot[2 * i + 1]!;
      x[off + i] = a * c - b * s;
      x[off + i + half] = a * s + b * c;
    }
  }

  private logits(h: Float32Array, hOff: number): Float32Array {
    const { dim, vocab, logitScale, eosMargin, normEps } = this.config;
    rmsNorm(h, hOff, dim, normEps, this.xn);
    const out = new Float32Array(vocab);
    matVec(this.w.head, vocab - 1, dim, this.xn, 0, out);
    let best = -Infinity;
    for (let i = 0; i < vocab - 1; i++) {
      out[i] = out[i]! * logitScale;
      if (out[i]! > best) best = out[i]!;
    }
    out[EOS_INDEX] = best - eosMargin;
    return out;
  }
}

/**
 * Softmax attention of one query head (q at qOff) over positions from .. to-1 of one KV head (at kvOff,
 * stride floats per position), written to out at qOff. Two passes: scores and their max, then weighted values.
 */
type AttendFn = (
  q: Float32Array,
  qOff: number,
  keys: Float32Array,
  values: Float32Array,
  stride: number,
  kvOff: number,
  headDim: number,
  from: number,
  to: number,
  scores: Float64Array,
  acc: Float64Array,
  out: Float32Array,
) => void;

const attend: AttendFn = (q, qOff, keys, values, stride, kvOff, headDim, from, to, scores, acc, out) => {
  const scale = 1 / Math.sqrt(headDim);
  let max = -Infinity;
  for (let j = from, b = from * stride + kvOff; j < to; j++, b += stride) {
    let s = 0;
    for (let d = 0; d < headDim; d++) s += q[qOff + d]! * keys[b + d]!;
    s *= scale;
    scores[j - from] = s;
    if (s > max) max = s;
  }
  let sum = 0;
  acc.fill(0);
  for (let j = from, b = from * stride + kvOff; j < to; j++, b += stride) {
    const e = expDet(scores[j - from]! - max);
    sum += e;
    for (let d = 0; d < headDim; d++) acc[d] = acc[d]! + e * values[b + d]!;
  }
  for (let d = 0; d < headDim; d++) out[qOff + d] = acc[d]! / sum;
};

/** attend for headDim 16, unrolled into locals: attention dominates prefill time, and this is ~2x faster. */
// prettier-ignore
const attend16: AttendFn = (q, qOff, k, v, stride, kvOff, _headDim, from, to, scores, _acc, out) => {
  const o = qOff;
  const q0 = q[qOff]!, q1 = q[qOff + 1]!, q2 = q[qOff + 2]!, q3 = q[qOff + 3]!;
  const q4 = q[qOff + 4]!, q5 = q[qOff + 5]!, q6 = q[qOff + 6]!, q7 = q[qOff + 7]!;
  const q8 = q[qOff + 8]!, q9 = q[qOff + 9]!, q10 = q[qOff + 10]!, q11 = q[qOff + 11]!;
  const q12 = q[qOff + 12]!, q13 = q[qOff + 13]!, q14 = q[qOff + 14]!, q15 = q[qOff + 15]!;
  let max = -Infinity;
  for (let j = from, b = from * stride + kvOff; j < to; j++, b += stride) {
    const s =
      (q0 * k[b]! + q1 * k[b + 1]! + q2 * k[b + 2]! + q3 * k[b + 3]! +
        q4 * k[b + 4]! + q5 * k[b + 5]! + q6 * k[b + 6]! + q7 * k[b + 7]! +
        q8 * k[b + 8]! + q9 * k[b + 9]! + q10 * k[b + 10]! + q11 * k[b + 11]! +
        q12 * k[b + 12]! + q13 * k[b + 13]! + q14 * k[b + 14]! + q15 * k[b + 15]!) * 0.25;
    scores[j - from] = s;
    if (s > max) max = s;
  }
  let sum = 0;
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  let a8 = 0, a9 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0, a14 = 0, a15 = 0;
  for (let j = from, b = from * stride + kvOff; j < to; j++, b += stride) {
    const e = expDet(scores[j - from]! - max);
    sum += e;
    a0 += e * v[b]!; a1 += e * v[b + 1]!; a2 += e * v[b + 2]!; a3 += e * v[b + 3]!;
    a4 += e * v[b + 4]!; a5 += e * v[b + 5]!; a6 += e * v[b + 6]!; a7 += e * v[b + 7]!;
    a8 += e * v[b + 8]!; a9 += e * v[b + 9]!; a10 += e * v[b + 10]!; a11 += e * v[b + 11]!;
    a12 += e * v[b + 12]!; a13 += e * v[b + 13]!; a14 += e * v[b + 14]!; a15 += e * v[b + 15]!;
  }
  out[o] = a0 / sum; out[o + 1] = a1 / sum; out[o + 2] = a2 / sum; out[o + 3] = a3 / sum;
  out[o + 4] = a4 / sum; out[o + 5] = a5 / sum; out[o + 6] = a6 / sum; out[o + 7] = a7 / sum;
  out[o + 8] = a8 / sum; out[o + 9] = a9 / sum; out[o + 10] = a10 / sum; out[o + 11] = a11 / sum;
  out[o + 12] = a12 / sum; out[o + 13] = a13 / sum; out[o + 14] = a14 / sum; out[o + 15] = a15 / sum;
};

function checkTokenId(tokenId: number | undefined): number {
  if (tokenId === undefined || !Number.isInteger(tokenId) || tokenId < 0) {
    throw new RangeError(`reference model: token id ${tokenId} is not a non-negative integer`);
  }
  return tokenId;
}

/** out[r] = sum_c w[r][c] * x[xOff + c], in double precision with four partial sums (independent chains run faster). */
function matVec(w: Float32Array, rows: number, cols: number, x: Float32Array, xOff: number, out: Float32Array): void {
  const body = cols - (cols % 4);
  for (let r = 0, base = 0; r < rows; r++, base += cols) {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let c = 0;
    for (; c < body; c += 4) {
      s0 += w[base + c]! * x[xOff + c]!;
      s1 += w[base + c + 1]! * x[xOff + c + 1]!;
      s2 += w[base + c + 2]! * x[xOff + c + 2]!;
      s3 += w[base + c + 3]! * x[xOff + c + 3]!;
    }
    for (; c < cols; c++) s0 += w[base + c]! * x[xOff + c]!;
    out[r] = s0 + s1 + (s2 + s3);
  }
}

function rmsNorm(x: Float32Array, off: number, dim: number, eps: number, out: Float32Array): void {
  let ss = 0;
  for (let i = 0; i < dim; i++) ss += x[off + i]! * x[off + i]!;
  const inv = 1 / Math.sqrt(ss / dim + eps);
  for (let i = 0; i < dim; i++) out[i] = x[off + i]! * inv;
}

const models = new Map<string, ReferenceModel>();

/** The model for a seed (and config), built once per process: weight generation is the slow part. */
export function referenceModel(
  seed: number = DEFAULT_MODEL_SEED,
  config: ReferenceModelConfig = DEFAULT_REFERENCE_CONFIG,
): ReferenceModel {
  const key = `${seed}|${JSON.stringify(config)}`;
  let model = models.get(key);
  if (!model) {
    model = new ReferenceModel(seed, config);
    models.set(key, model);
  }
  return model;
}
