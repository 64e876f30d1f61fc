/**
 * Published single-user measurements beyond the data sets in data/calibration/, each with its source and the
 * words that carry the number (so a reviewer can check it). Where a source states less than the model needs
 * (prompt length, system count), the assumption is written next to the point.
 */
import type { DeviceId } from '../devices';
import { MODELS, type Dtype, type ModelId } from '../models';
import type { StackId } from '../stacks';

/** `e2eMs`: one request's whole latency, the batch's prompts prefilled together, then every output token. */
export type PublishedMetric = 'ttftMs' | 'tpotMs' | 'tokensPerSecond' | 'e2eMs';

export interface PublishedSpeculation {
  /** A listed draft model, or 'eagle' for a draft head. */
  readonly draft: string;
  readonly draftTokens: number;
  /** Measured acceptance, when the source gives it; otherwise the fitted one for the pair is used. */
  readonly acceptanceRate?: number;
  /** Key of the fitted acceptance rate this point pins (calibration fits it). */
  readonly acceptanceKey?: string;
}

export interface PublishedPoint {
  readonly id: string;
  readonly stack: StackId;
  readonly device: DeviceId;
  /** Devices (chips, GPUs, CS-3 systems) serving one replica; null: the fewest that hold the weights. */
  readonly count: number | null;
  readonly model: ModelId;
  readonly weightDtype: Dtype;
  readonly kvDtype?: Dtype;
  readonly batch: number;
  readonly promptTokens: number;
  readonly outputTokens: number;
  readonly metric: PublishedMetric;
  readonly measured: number;
  /** Undefined: the stack's provider default; null: none stated or none used. */
  readonly speculative?: PublishedSpeculation | null;
  readonly source: string;
  readonly quote: string;
  /** 'check' points are compared, never fitted: p99 figures, or measurements that include the network. */
  readonly role: 'fit' | 'check';
  readonly note?: string;
}

const NIM =
  'NVIDIA NIM for LLMs benchmarking page, NIM 1.8.0, Llama-3.3-70B-Instruct on 2 x H100 (FP8, TP 2), concurrency 1';
/**
 * The same page's Llama 3.1 8B tables. For the check rows below (both models) the stored copy of the page shows only
 * the 8B's first table (200 in / 200 out), without headings; the other shapes and the 8B's headings are read from a
 * transcription of the page (zivbeker42/llm-guesstimator, tested_benchmarks/nim_*_v1.8.0_*.csv), whose rows agree with
 * all 17 rows of the page that could be read (the 70B's first table and first 500 / 2000 row, the 8B's first table).
 */
const NIM_8B =
  'NVIDIA NIM for LLMs benchmarking page, NIM 1.8.0, Llama-3.1-8B-Instruct on 1 x H100 (FP8, TP 1), concurrency 1';
const TRT =
  'NVIDIA TensorRT-LLM docs/source/performance.md (release 0.5.0), low-latency table: batch 1, first-token latency';
/**
 * Both peak-throughput tables (v0.5, v0.6.1) predate TensorRT-LLM's XQA kernels, so every row runs trtllm-2023: the
 * tables' own release, timed by its decode attention (each KV head read once per query head; stacks.ts).
 */
const TRT_THROUGHPUT =
  'NVIDIA TensorRT-LLM docs/source/performance.md, peak-throughput tables (H100 FP8 v0.6.1, A100 FP16 v0.5): static batches, gptSessionBenchmark';
const NXDI_405B =
  'AWS Neuron NxD Inference tutorial "Llama-3.1-405B on trn2.48xlarge" (llama405b_perf_comparison.csv): TP 64, LNC 2, batch 1, 10k in / 1.5k out, LLMPerf p50';
/** The 405B tutorial's FP8 row (rescaled weights, fused speculation with a Llama 3.2 1B draft): its two points. */
const NXDI_405B_FP8_SPEC = {
  stack: 'nxdi',
  device: 'trn2',
  count: 16,
  model: 'llama-3.1-405b',
  weightDtype: 'fp8',
  batch: 1,
  promptTokens: 10_000,
  outputTokens: 1500,
  speculative: { draft: 'llama-3.2-1b', draftTokens: 7, acceptanceKey: 'llama-3.2-1b>llama-70b' },
  source: NXDI_405B,
  quote: 'Fused speculative decoding + rescaled weights (Llama 3.2 1B Draft),2255,8.27,102.41',
} as const;
const VLLM_BENCH =
  'vLLM nightly performance benchmark (Buildkite vllm/performance-benchmark build 9515), latency tests on H200: batch 8, 32 in / 128 out, median';
const EAGLE_8B =
  'AWS Neuron vLLM plugin tutorial "EAGLE3 speculative decoding, Llama 3.1 8B Instruct" (trn2, TP 8, concurrency 2, 512 in / 128 out)';
const EAGLE_OSS =
  'AWS Neuron vLLM plugin tutorial "EAGLE3 speculative decoding, GPT-OSS-120B" (trn2, TP 16, concurrency 1, 512 in / 128 out, BF16 after dequantising MXFP4 experts)';
/** Cerebras gives per-user speeds without prompt lengths; a 1,000-token prompt and 500 output tokens are assumed. */
const CEREBRAS_SHAPE = { batch: 1, promptTokens: 1000, outputTokens: 500 } as const;
/** A per-user speed on the Oct 2024 service onwards at CEREBRAS_SHAPE, on the fewest CS-3 systems that hold it. */
const CEREBRAS_SPEED = {
  stack: 'cerebras-2025',
  device: 'cs3',
  count: null,
  ...CEREBRAS_SHAPE,
  metric: 'tokensPerSecond',
} as const;

export const PUBLISHED_POINTS: readonly PublishedPoint[] = [
  // --- Optimised GPU serving (gpu-2025)
  {
    id: 'nim-h100x2-70b-ttft-5000',
    stack: 'gpu-2025',
    device: 'h100',
    count: 2,
    model: 'llama-3.3-70b',
    weightDtype: 'fp8',
    kvDtype: 'fp8',
    batch: 1,
    promptTokens: 5000,
    outputTokens: 500,
    metric: 'ttftMs',
    measured: 406.77,
    speculative: null,
    source: NIM,
    quote: '| 1 | 406.77 | 18.58 | 51.67 |',
    role: 'fit',
  },
  {
    id: 'nim-h100x2-70b-itl-5000',
    stack: 'gpu-2025',
    device: 'h100',
    count: 2,
    model: 'llama-3.3-70b',
    weightDtype: 'fp8',
    kvDtype: 'fp8',
    batch: 1,
    promptTokens: 5000,
    outputTokens: 500,
    metric: 'tpotMs',
    measured: 18.58,
    speculative: null,
    source: NIM,
    quote: '| 1 | 406.77 | 18.58 | 51.67 |',
    role: 'fit',
  },
  {
    id: 'nim-h100x2-70b-ttft-500',
    stack: 'gpu-2025',
    device: 'h100',
    count: 2,
    model: 'llama-3.3-70b',
    weightDtype: 'fp8',
    kvDtype: 'fp8',
    batch: 1,
    promptTokens: 500,
    outputTokens: 2000,
    metric: 'ttftMs',
    measured: 47.77,
    speculative: null,
    source: NIM,
    quote: '| 1 | 47.77 | 18.91 | 52.85 |',
    role: 'fit',
  },
  {
    id: 'nim-h100x2-70b-itl-500',
    stack: 'gpu-2025',
    device: 'h100',
    count: 2,
    model: 'llama-3.3-70b',
    weightDtype: 'fp8',
    kvDtype: 'fp8',
    batch: 1,
    promptTokens: 500,
    outputTokens: 2000,
    metric: 'tpotMs',
    measured: 18.91,
    speculative: null,
    source: NIM,
    quote: '| 1 | 47.77 | 18.91 | 52.85 |',
    role: 'fit',
  },
  // NIM's other concurrency-1 rows: every shape of the page's two 1.8.0 tables that the fit does not use, both metrics.
  ...(
    [
      [NIM, 'llama-3.3-70b', 2, 200, 200, 31.22, 18.8, '| 1 | 31.22 | 18.8 | 53 |'],
      [NIM, 'llama-3.3-70b', 2, 1000, 1000, 82.46, 18.67, '| 1 | 82.46 | 18.67 | 53.37 |'],
      [NIM, 'llama-3.3-70b', 2, 20_000, 2000, 1833.01, 19.58, '| 1 | 1833.01 | 19.58 | 48.8 |'],
      [NIM_8B, 'llama-3.1-8b', 1, 200, 200, 10.26, 4.63, '| 1 | 10.26 | 4.63 | 214.56 |'],
      [NIM_8B, 'llama-3.1-8b', 1, 1000, 1000, 19.03, 4.53, '| 1 | 19.03 | 4.53 | 220.1 |'],
      [NIM_8B, 'llama-3.1-8b', 1, 5000, 500, 77.45, 4.62, '| 1 | 77.45 | 4.62 | 209.96 |'],
      [NIM_8B, 'llama-3.1-8b', 1, 20_000, 2000, 403.2, 5.06, '| 1 | 403.2 | 5.06 | 189.96 |'],
    ] as const
  ).flatMap(([source, model, count, prompt, output, ttft, itl, quote]): PublishedPoint[] =>
    (['ttftMs', 'tpotMs'] as const).map((metric) => ({
      id: `nim-h100x${count}-${model === 'llama-3.1-8b' ? '8b' : '70b'}-${metric === 'ttftMs' ? 'ttft' : 'itl'}-${prompt}-${output}`,
      stack: 'gpu-2025',
      device: 'h100',
      count,
      model,
      weightDtype: 'fp8',
      kvDtype: 'fp8',
      batch: 1,
      promptTokens: prompt,
      outputTokens: output,
      metric,
      measured: metric === 'ttftMs' ? ttft : itl,
      speculative: null,
      source,
      quote,
      role: 'check',
      note:
        `${prompt} input / ${output} output tokens; compared, not fitted (shapes the fit does not use). ` +
        'FP8 KV cache taken as for the fitted NIM rows (the page says only fp8)' +
        (model === 'llama-3.1-8b' && prompt === 200 ? '' : '; the row as transcribed (see NIM_8B)'),
    })),
  ),
  ...(
    [
      ['h100', 1, 'llama-2-7b', 'fp8', 128, 7, '| LLaMA 7B | 1 | 1 | 128 | 7 |'],
      ['h100', 1, 'llama-2-7b', 'fp8', 2048, 36, '| LLaMA 7B | 1 | 1 | 2048 | 36 |'],
      ['h100', 4, 'llama-2-70b', 'fp8', 128, 26, '| LLaMA 70B | 1 | 4 | 128 | 26 |'],
      ['h100', 4, 'llama-2-70b', 'fp8', 2048, 109, '| LLaMA 70B | 1 | 4 | 2048 | 109 |'],
      ['a100', 1, 'llama-2-7b', 'fp16', 128, 16, '| LLaMA 7B | 1 | 1 | 128 | 16 |'],
      ['a100', 1, 'llama-2-7b', 'fp16', 2048, 133, '| LLaMA 7B | 1 | 1 | 2048 | 133 |'],
      ['a100', 4, 'llama-2-70b', 'fp16', 128, 47, '| LLaMA 70B | 1 | 4 | 128 | 47 |'],
      ['a100', 4, 'llama-2-70b', 'fp16', 2048, 377, '| LLaMA 70B | 1 | 4 | 2048 | 377 |'],
      ['h100', 1, 'gpt-j-6b', 'fp8', 128, 7, '| GPT-J 6B | 1 | 1 | 128 | 7 |'],
      ['h100', 1, 'gpt-j-6b', 'fp8', 2048, 29, '| GPT-J 6B | 1 | 1 | 2048 | 29 |'],
      ['h100', 8, 'falcon-180b', 'fp8', 128, 27, '| Falcon 180B | 1 | 8 | 128 | 27 |'],
      ['h100', 8, 'falcon-180b', 'fp8', 2048, 205, '| Falcon 180B | 1 | 8 | 2048 | 205 |'],
      ['a100', 1, 'gpt-j-6b', 'fp16', 128, 12, '| GPT-J 6B | 1 | 1 | 128 | 12 |'],
      ['a100', 1, 'gpt-j-6b', 'fp16', 2048, 129, '| GPT-J 6B | 1 | 1 | 2048 | 129 |'],
      ['a100', 8, 'falcon-180b', 'fp16', 128, 61, '| Falcon 180B | 1 | 8 | 128 | 61 |'],
      ['a100', 8, 'falcon-180b', 'fp16', 2048, 509, '| Falcon 180B | 1 | 8 | 2048 | 509 |'],
    ] as const
  ).map(([device, count, model, dtype, prompt, ms, quote]): PublishedPoint => ({
    id: `trtllm-${device}x${count}-${model}-ttft-${prompt}`,
    stack: 'gpu-2025',
    device,
    count,
    model,
    weightDtype: dtype,
    batch: 1,
    promptTokens: prompt,
    outputTokens: 1,
    metric: 'ttftMs',
    measured: ms,
    speculative: null,
    source: TRT,
    quote,
    role: 'fit',
  })),
  // --- TensorRT-LLM before XQA (trtllm-2023): gpu-2025's factors, checked only
  // Static batches (gptSessionBenchmark: the whole batch's prompts, then every output token together). H100 rows
  // give output tokens/s per GPU (v0.6.1, FP8 weights and FP8 KV cache); A100 rows (v0.5, FP16) only at TP 1,
  // since that table does not say whether its TP 2-8 figures are per GPU or per replica.
  ...(
    [
      ['h100', 1, 'gpt-j-6b', 1024, 128, 128, 26_150, '| GPT-J 6B | 1024 | 1 | 128 | 128 | 26,150 |'],
      ['h100', 1, 'gpt-j-6b', 120, 128, 2048, 8011, '| GPT-J 6B | 120 | 1 | 128 | 2048 | 8,011 |'],
      ['h100', 1, 'gpt-j-6b', 64, 2048, 128, 2551, '| GPT-J 6B | 64 | 1 | 2048 | 128 | 2,551 |'],
      ['h100', 1, 'gpt-j-6b', 64, 2048, 2048, 3327, '| GPT-J 6B | 64 | 1 | 2048 | 2048 | 3,327 |'],
      ['h100', 1, 'llama-2-7b', 768, 128, 128, 19_694, '| LLaMA 7B | 768 | 1 | 128 | 128 | 19,694 |'],
      ['h100', 1, 'llama-2-7b', 112, 128, 2048, 6818, '| LLaMA 7B | 112 | 1 | 128 | 2048 | 6,818 |'],
      ['h100', 1, 'llama-2-7b', 80, 2048, 128, 2244, '| LLaMA 7B | 80 | 1 | 2048 | 128 | 2,244 |'],
      ['h100', 1, 'llama-2-7b', 48, 2048, 2048, 2740, '| LLaMA 7B | 48 | 1 | 2048 | 2048 | 2,740 |'],
      ['h100', 2, 'llama-2-70b', 1024, 128, 128, 2657, '| LLaMA 70B | 1024 | 2 | 128 | 128 | 2,657 |'],
      ['h100', 4, 'llama-2-70b', 480, 128, 2048, 1486, '| LLaMA 70B | 480 | 4 | 128 | 2048 | 1,486 |'],
      ['h100', 2, 'llama-2-70b', 96, 2048, 128, 306, '| LLaMA 70B | 96 | 2 | 2048 | 128 | 306 |'],
      ['h100', 2, 'llama-2-70b', 64, 2048, 2048, 547, '| LLaMA 70B | 64 | 2 | 2048 | 2048 | 547 |'],
      ['h100', 4, 'falcon-180b', 1024, 128, 128, 987, '| Falcon 180B | 1024 | 4 | 128 | 128 | 987 |'],
      ['h100', 8, 'falcon-180b', 1024, 128, 2048, 724, '| Falcon 180B | 1024 | 8 | 128 | 2048 | 724 |'],
      ['h100', 4, 'falcon-180b', 64, 2048, 128, 112, '| Falcon 180B | 64 | 4 | 2048 | 128 | 112 |'],
      ['h100', 4, 'falcon-180b', 64, 2048, 2048, 264, '| Falcon 180B | 64 | 4 | 2048 | 2048 | 264 |'],
      ['a100', 1, 'gpt-j-6b', 512, 128, 128, 6374, '| GPT-J 6B | 512 | 1 | 128 | 128 | 6,374 |'],
      ['a100', 1, 'gpt-j-6b', 60, 2048, 128, 670, '| GPT-J 6B | 60 | 1 | 2048 | 128 | 670 |'],
      ['a100', 1, 'llama-2-7b', 384, 128, 128, 5586, '| LLaMA 7B | 384 | 1 | 128 | 128 | 5,586 |'],
      ['a100', 1, 'llama-2-7b', 60, 128, 2048, 1928, '| LLaMA 7B | 60 | 1 | 128 | 2048 | 1,928 |'],
      ['a100', 1, 'llama-2-7b', 52, 2048, 128, 591, '| LLaMA 7B | 52 | 1 | 2048 | 128 | 591 |'],
    ] as const
  ).map(([device, count, model, batch, prompt, output, tokensPerS, quote]): PublishedPoint => {
    const h100 = device === 'h100';
    // Output tokens/s (per GPU on H100) back to the batch's end-to-end time.
    const replicaTokensPerS = h100 ? tokensPerS * count : tokensPerS;
    return {
      id: `trtllm-${device}x${count}-${model}-batch${batch}-${prompt}-${output}`,
      stack: 'trtllm-2023',
      device,
      count,
      model,
      weightDtype: h100 ? 'fp8' : 'fp16',
      kvDtype: h100 ? 'fp8' : 'fp16',
      batch,
      promptTokens: prompt,
      outputTokens: output,
      metric: 'e2eMs',
      measured: (batch * output * 1000) / replicaTokensPerS,
      speculative: null,
      source: TRT_THROUGHPUT,
      quote,
      role: 'check',
      note:
        `${tokensPerS} output tokens/s${h100 ? ' per GPU' : ''}, as a static batch's end-to-end time (batch x output ` +
        'tokens / throughput). Compared, not fitted: the C++ session benchmark has no server in its steps, which the ' +
        'single-user points gpu-2025 (whose factors trtllm-2023 runs) is fitted to include' +
        (MODELS[model].kvHeads < MODELS[model].heads
          ? ". Grouped-query model: the table predates TensorRT-LLM's XQA kernels (0.7.1 and, for Hopper, 0.10.0 " +
            'release notes), so trtllm-2023 charges its decode one read of each KV head per query head'
          : ''),
    };
  }),
  ...(
    [
      ['llama-3.1-8b', 1, 833.53, 'latency_llama8B_tp1 | H200 | 833.421 | 833.53'],
      ['llama-3.1-70b', 4, 2077.56, 'latency_llama70B_tp4 | H200 | 2077.53 | 2077.56'],
      ['mixtral-8x7b', 2, 1916.58, 'latency_mixtral8x7B_tp2 | H200 | 1917.44 | 1916.58'],
    ] as const
  ).map(([model, count, ms, quote]): PublishedPoint => ({
    id: `vllm-h200x${count}-${model}-e2e`,
    stack: 'gpu-2025',
    device: 'h200',
    count,
    model,
    weightDtype: 'bf16',
    batch: 8,
    promptTokens: 32,
    outputTokens: 128,
    metric: 'e2eMs',
    measured: ms,
    speculative: null,
    source: VLLM_BENCH,
    quote,
    role: 'check',
    note:
      "no H200 point is fitted, so H200 borrows H100's factors: these check that borrowing. Median end-to-end " +
      'latency of a batch of 8 (vLLM benchmark_latency, dummy weights); Meta-Llama-3 8B and 70B as Llama 3.1 (the same layers)',
  })),
  {
    id: 'sglang-h100-8b-speed',
    stack: 'gpu-2025',
    device: 'h100',
    count: 1,
    model: 'llama-3.1-8b',
    weightDtype: 'bf16',
    batch: 1,
    promptTokens: 512,
    outputTokens: 512,
    metric: 'tokensPerSecond',
    measured: 158.34,
    speculative: null,
    source:
      'SGLang docs, "Speculative Decoding" performance highlights (from the EAGLE-3 paper): Llama 3.1 8B, 1 x H100, MT-bench',
    quote: 'SGLang (w/o speculative, 1x H100) 158.34 tokens/s',
    role: 'fit',
    note: 'batch 1 (the EAGLE-3 paper measures at batch 1); MT-bench prompt and answer lengths taken as 512 and 512',
  },
  // --- NxD Inference on Trainium2 (nxdi)
  {
    id: 'nxdi-trn2x16-405b-ttft',
    stack: 'nxdi',
    device: 'trn2',
    count: 16,
    model: 'llama-3.1-405b',
    weightDtype: 'bf16',
    batch: 1,
    promptTokens: 10_000,
    outputTokens: 1500,
    metric: 'ttftMs',
    measured: 2442,
    speculative: null,
    source: NXDI_405B,
    quote: 'No speculative decoding,2442,37.9,25.46',
    role: 'fit',
  },
  {
    id: 'nxdi-trn2x16-405b-tpot',
    stack: 'nxdi',
    device: 'trn2',
    count: 16,
    model: 'llama-3.1-405b',
    weightDtype: 'bf16',
    batch: 1,
    promptTokens: 10_000,
    outputTokens: 1500,
    metric: 'tpotMs',
    measured: 37.9,
    speculative: null,
    source: NXDI_405B,
    quote: 'No speculative decoding,2442,37.9,25.46',
    role: 'fit',
  },
  {
    ...NXDI_405B_FP8_SPEC,
    id: 'nxdi-trn2x16-405b-fp8-spec-tpot',
    metric: 'tpotMs',
    measured: 8.27,
    role: 'fit',
    note: 'FP8 weights (MLP quantised) and fused speculation with a Llama 3.2 1B draft, speculation length 7',
  },
  {
    ...NXDI_405B_FP8_SPEC,
    id: 'nxdi-trn2x16-405b-fp8-spec-ttft',
    metric: 'ttftMs',
    measured: 2255,
    role: 'check',
    note: "compared, not fitted: the FP8 run's time to first token (the model charges the target's prefill, not the draft's)",
  },
  {
    id: 'nxdi-trn2x2-8b-tpot',
    stack: 'nxdi',
    device: 'trn2',
    count: 2,
    model: 'llama-3.1-8b',
    weightDtype: 'bf16',
    batch: 2,
    promptTokens: 512,
    outputTokens: 128,
    metric: 'tpotMs',
    measured: 10.52,
    speculative: null,
    source: EAGLE_8B,
    quote: 'median_tpot_ms baseline=10.52 eagle3=6.41',
    role: 'fit',
    note: 'TP 8 logical cores = 2 Trainium2 chips at LNC 2; concurrency 2 charged as a decode batch of 2',
  },
  {
    id: 'nxdi-trn2x2-8b-ttft',
    stack: 'nxdi',
    device: 'trn2',
    count: 2,
    model: 'llama-3.1-8b',
    weightDtype: 'bf16',
    batch: 1,
    promptTokens: 512,
    outputTokens: 128,
    metric: 'ttftMs',
    measured: 51.07,
    speculative: null,
    source: EAGLE_8B,
    quote: 'median_ttft_ms baseline=51.07 eagle3=63.65',
    role: 'fit',
  },
  {
    id: 'nxdi-trn2x2-8b-eagle-tpot',
    stack: 'nxdi',
    device: 'trn2',
    count: 2,
    model: 'llama-3.1-8b',
    weightDtype: 'bf16',
    batch: 2,
    promptTokens: 512,
    outputTokens: 128,
    metric: 'tpotMs',
    measured: 6.41,
    speculative: { draft: 'eagle', draftTokens: 3, acceptanceRate: 0.7414 },
    source: EAGLE_8B,
    quote: 'median_tpot_ms baseline=10.52 eagle3=6.41; Acceptance rate (%): 74.14',
    role: 'check',
    note: 'checks the draft-head model with the measured acceptance; not fitted',
  },
  {
    id: 'nxdi-trn2x4-gptoss-tpot',
    stack: 'nxdi',
    device: 'trn2',
    count: 4,
    model: 'gpt-oss-120b',
    weightDtype: 'bf16',
    batch: 1,
    promptTokens: 512,
    outputTokens: 128,
    metric: 'tpotMs',
    measured: 7.0,
    speculative: null,
    source: EAGLE_OSS,
    quote: 'median_tpot_ms baseline=7.00 eagle3=5.82',
    role: 'fit',
    note: 'TP 16 logical cores = 4 Trainium2 chips at LNC 2',
  },
  {
    id: 'nxdi-trn2x4-gptoss-ttft',
    stack: 'nxdi',
    device: 'trn2',
    count: 4,
    model: 'gpt-oss-120b',
    weightDtype: 'bf16',
    batch: 1,
    promptTokens: 512,
    outputTokens: 128,
    metric: 'ttftMs',
    measured: 252.33,
    speculative: null,
    source: EAGLE_OSS,
    quote: 'median_ttft_ms baseline=252.33 eagle3=218.21',
    role: 'check',
    note:
      "compared, not fitted: NxD's blockwise MoE prefill is modelled (each expert's ~16 routed rows padded to a 512-row block, " +
      '32x the routed compute, which takes the prediction from 73 to 89 ms); the rest of the gap is not explained by any term here',
  },
  {
    id: 'nxdi-trn2x4-gptoss-eagle-tpot',
    stack: 'nxdi',
    device: 'trn2',
    count: 4,
    model: 'gpt-oss-120b',
    weightDtype: 'bf16',
    batch: 1,
    promptTokens: 512,
    outputTokens: 128,
    metric: 'tpotMs',
    measured: 5.82,
    speculative: { draft: 'eagle', draftTokens: 1, acceptanceRate: 0.69 },
    source: EAGLE_OSS,
    quote: 'median_tpot_ms baseline=7.00 eagle3=5.82; Acceptance rate (%): 69.00',
    role: 'check',
    note: 'checks the draft-head model with the measured acceptance; not fitted',
  },
  {
    id: 'nxdi-trn2x16-qwen3-32b-ttft-p99',
    stack: 'nxdi',
    device: 'trn2',
    count: 16,
    model: 'qwen3-32b',
    weightDtype: 'bf16',
    batch: 1,
    promptTokens: 128,
    outputTokens: 512,
    metric: 'ttftMs',
    measured: 48.3,
    speculative: null,
    source:
      'AWS Neuron NxD Inference tutorial "Speculative Decoding on Trn2" (Qwen3-32B, TP 64, batch 1, 128 in / 512 out)',
    quote: 'Time to First Token (TTFT) - 48.3 ms - 47.4 ms',
    role: 'check',
    note: 'a p99 figure: compared, not fitted',
  },
  // --- Cerebras Inference service (cerebras-2025)
  {
    id: 'cerebras-70b-oct2024',
    stack: 'cerebras-2025',
    device: 'cs3',
    count: 4,
    model: 'llama-3.1-70b',
    weightDtype: 'bf16',
    ...CEREBRAS_SHAPE,
    metric: 'tokensPerSecond',
    measured: 2100,
    source:
      'Cerebras "Inference now 3x faster" release (Oct 2024), as reported by The Register (2025) and in calibration/cerebras-published.csv',
    quote: 'The company claims it can serve Llama 3.1 70B at up to 2,100 tokens a second.',
    role: 'fit',
    note: 'four CS-3 systems ("70B models fit on as few as four systems"); includes speculative decoding (the release says so)',
  },
  {
    id: 'cerebras-70b-3.3-aa',
    stack: 'cerebras-2025',
    device: 'cs3',
    count: 4,
    model: 'llama-3.3-70b',
    weightDtype: 'bf16',
    ...CEREBRAS_SHAPE,
    metric: 'tokensPerSecond',
    measured: 2314,
    source:
      'Artificial Analysis measurement of Cerebras Inference, Llama 3.3 70B, as quoted by Cerebras (AnIntent article)',
    quote: 'Cerebras delivers 2,314 tokens per second on Llama 3.3 70B',
    role: 'fit',
  },
  {
    id: 'cerebras-405b',
    stack: 'cerebras-2025',
    device: 'cs3',
    count: null,
    model: 'llama-3.1-405b',
    weightDtype: 'bf16',
    ...CEREBRAS_SHAPE,
    metric: 'tokensPerSecond',
    measured: 969,
    speculative: null,
    source: "Cerebras Llama 3.1 405B announcement (2024-11-18), as reported by Tom's Hardware (2024-11-20)",
    quote: 'with a token rate of 969 per second and a time-to-first-token of just 0.24 seconds',
    role: 'fit',
    note: 'speculative decoding not stated, so none charged',
  },
  {
    id: 'cerebras-405b-ttft',
    stack: 'cerebras-2025',
    device: 'cs3',
    count: null,
    model: 'llama-3.1-405b',
    weightDtype: 'bf16',
    batch: 1,
    promptTokens: 100,
    outputTokens: 500,
    metric: 'ttftMs',
    measured: 240,
    speculative: null,
    source: "Cerebras Llama 3.1 405B announcement (2024-11-18), as reported by Tom's Hardware (2024-11-20)",
    quote: 'with a token rate of 969 per second and a time-to-first-token of just 0.24 seconds',
    role: 'check',
    note:
      'compared, not fitted: measured at the client, so it includes the network and the service; the prompt ' +
      '(a short coding request) is taken as 100 tokens. The model charges the wafer only, and its prefill ' +
      'efficiency is an assumption: the gap is what the model does not know about CS-3 prefill',
  },
  {
    id: 'cerebras-maverick-aa',
    stack: 'cerebras-2025',
    device: 'cs3',
    count: null,
    model: 'llama-4-maverick',
    weightDtype: 'bf16',
    ...CEREBRAS_SHAPE,
    metric: 'tokensPerSecond',
    measured: 2522,
    speculative: null,
    source:
      'Artificial Analysis measurement of Cerebras Inference, Llama 4 Maverick (May 2025), as reported by CySecurity News',
    quote:
      'Artificial Analysis, a third-party testing agency, confirmed the WSE achieved 2,522 tokens per second on Llama 4',
    role: 'fit',
  },
  {
    id: 'cerebras-scout-docs',
    stack: 'cerebras-2025',
    device: 'cs3',
    count: null,
    model: 'llama-4-scout',
    weightDtype: 'bf16',
    ...CEREBRAS_SHAPE,
    metric: 'tokensPerSecond',
    measured: 2600,
    speculative: null,
    source: 'Cerebras Inference documentation, Llama 4 Scout model page',
    quote: 'Speed ~2600 tokens/sec',
    role: 'fit',
  },
  {
    id: 'cerebras-qwen3-32b-docs',
    stack: 'cerebras-2025',
    device: 'cs3',
    count: null,
    model: 'qwen3-32b',
    weightDtype: 'bf16',
    ...CEREBRAS_SHAPE,
    metric: 'tokensPerSecond',
    measured: 2600,
    speculative: null,
    source: 'Cerebras Inference documentation, qwen-3-32b model page (the later version, with 128k paid context)',
    quote: 'Paid Tiers128k tokens Speed ~2600 tokens/sec',
    role: 'fit',
    note: 'an earlier version of the page said ~2100 tokens/s',
  },
  {
    id: 'cerebras-qwen3-235b-docs',
    stack: 'cerebras-2025',
    device: 'cs3',
    count: null,
    model: 'qwen3-235b-a22b',
    weightDtype: 'bf16',
    ...CEREBRAS_SHAPE,
    metric: 'tokensPerSecond',
    measured: 1500,
    speculative: null,
    source: 'Cerebras Inference documentation, qwen-3-235b model page',
    quote: 'Speed ~1500 tokens/sec',
    role: 'fit',
  },
  {
    id: 'cerebras-gptoss-docs',
    stack: 'cerebras-2025',
    device: 'cs3',
    count: null,
    model: 'gpt-oss-120b',
    weightDtype: 'mxfp4',
    ...CEREBRAS_SHAPE,
    metric: 'tokensPerSecond',
    measured: 3000,
    speculative: null,
    source: 'Cerebras Inference documentation, gpt-oss-120b model page',
    quote: 'SPEED ~3000 tokens/sec',
    role: 'fit',
    note: 'weights as published (MXFP4 experts, BF16 elsewhere)',
  },
  {
    id: 'cerebras-8b-docs',
    stack: 'cerebras-2025',
    device: 'cs3',
    count: null,
    model: 'llama-3.1-8b',
    weightDtype: 'bf16',
    ...CEREBRAS_SHAPE,
    metric: 'tokensPerSecond',
    measured: 2200,
    speculative: null,
    source: 'Cerebras Inference documentation (May 2026, summarised by Hivebook): production llama3.1-8b',
    quote: 'production llama3.1-8b (~2,200 tok/s) and gpt-oss-120b (~3,000 tok/s)',
    role: 'check',
    note:
      'compared, not fitted: a secondary summary, and inconsistent with every primary Cerebras figure under any model ' +
      'where time grows with depth (32 layers at 2,200 tokens/s against 48 layers at 2,500-2,600)',
  },
  {
    id: 'cerebras-gptoss-aa',
    ...CEREBRAS_SPEED,
    model: 'gpt-oss-120b',
    weightDtype: 'mxfp4',
    measured: 1844.1,
    speculative: null,
    source:
      'Artificial Analysis, gpt-oss-120B (low) API provider benchmarking page ' +
      '(artificialanalysis.ai/models/gpt-oss-120b-low/providers), Cerebras output speed',
    quote:
      'For output speed, the top providers are Cerebras (1,844.1 t/s), SambaNova (737.9 t/s), Fireworks (525.0 t/s).',
    role: 'check',
    note:
      'compared, not fitted: Artificial Analysis defines output speed (on its provider pages) as tokens per second ' +
      'received after the first chunk, the median of its recent runs, so it is measured at its client and includes ' +
      "streaming and the network. The page's prompt length is not in the stored copy (another of its pages says the " +
      'default workload became 10k input tokens); the model barely depends on it (3,237 tokens/s at 10k in against ' +
      '3,255 at 1k). Cerebras documents ~3,000 tokens/s for the same model (cerebras-gptoss-docs, a fit point); the ' +
      'reasoning effort changes how many tokens are written, not the time per token',
  },
  {
    id: 'cerebras-r1-distill-70b',
    ...CEREBRAS_SPEED,
    count: 4,
    model: 'llama-3.3-70b',
    weightDtype: 'bf16',
    measured: 1500,
    speculative: null,
    source:
      'DeepSeek-R1-Distill-Llama-70B on Cerebras Inference: Cerebras blog ' +
      '(cerebras.ai/blog/cerebras-launches-worlds-fastest-deepseek-r1-llama-70b-inference), as reported by the ' +
      'r/mlscaling post linking it (libreddit.rafn.is/r/mlscaling/comments/1ik3401)',
    quote: 'Mistral offers DeepSeek R1 Llama-70B at 1,500 token/second using Cerebras hardware',
    role: 'check',
    note:
      'compared, not fitted: a secondary report (the post title; the blog itself is not in the stored pages, and ' +
      "the thread's replies say Mistral has no part in it, the speed being Cerebras's). DeepSeek-R1-Distill-Llama-70B " +
      "has Llama 3.3 70B's architecture (config.json, as carried by its fine-tune " +
      'perplexity-ai/r1-1776-distill-llama-70b on Hugging Face: 80 layers, hidden 8192, 64 heads, 8 KV heads, ' +
      'intermediate 28,672, vocabulary 128,256, BF16), so it runs that profile; four systems as for Llama 70B. ' +
      "Speculative decoding is not stated, so none is charged (the stack's Llama 70B default would give 2,205 tokens/s)",
  },
  {
    id: 'cerebras-qwen3-coder-480b-code',
    ...CEREBRAS_SPEED,
    model: 'qwen3-coder-480b',
    weightDtype: 'bf16',
    measured: 2000,
    speculative: null,
    source:
      'Cerebras Code launch claim for Qwen3 Coder 480B, as reported by qian.cx ' +
      '(posts/CD628A77-0F5B-4F06-914C-DE484FBE15E4, a Chinese-language account of a GosuCoder review)',
    quote: 'Cerebras Code的一个核心卖点是其声称能够提供每秒2000个令牌(tokens)的处理速度',
    role: 'check',
    note:
      "compared, not fitted: Cerebras's own figure, read only in a secondary account (Cerebras's page is not in the " +
      'stored pages); the same account says reviewers measuring through coding tools rarely passed 500 tokens/s, ' +
      'which includes rate limits and the client, so only the claim is used. Precision and speculative decoding are ' +
      'not stated: BF16 weights as published and no speculation are assumed',
  },
  {
    id: 'cerebras-qwen3-32b-docs-early',
    ...CEREBRAS_SPEED,
    model: 'qwen3-32b',
    weightDtype: 'bf16',
    measured: 2100,
    speculative: null,
    source:
      'Cerebras Inference documentation, qwen-3-32b model page (inference-docs.cerebras.ai/models/qwen-3-32b), ' +
      'the earliest stored version (16,382-token free tier, 32k paid)',
    quote: 'Paid TiersUp to 32k Speed ~2100 tokens/sec',
    role: 'check',
    note:
      'compared, not fitted: the same page before it was raised to ~2,600 tokens/s (cerebras-qwen3-32b-docs, the fit ' +
      'point), so an earlier release of the service; it checks how far that release sits from factors fitted to the later one',
  },
];
