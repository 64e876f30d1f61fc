/**
 * Serving stacks: the same chip runs at different speeds under different software (a 2023 research harness
 * against vLLM with CUDA graphs; Cerebras at launch against its service a year later). A stack names its
 * software, its date and its sources; the timing model's factors are per stack and per device
 * (factors.ts), fitted to measurements taken on that stack (calibration/). A stack with no measurements to fit
 * runs another stack's factors and differs from it only in a sourced structural rule (trtllm-2023). Each family's
 * default is its newest published stack; older ones stay selectable so a published number can always be reproduced.
 */
import { DEVICES, type DeviceFamily, type DeviceId } from './devices';
import { ProfileError } from './pool';

export const STACK_IDS = [
  'gpu-2025',
  'trtllm-2023',
  'splitwise-2023',
  'nxdi',
  'tnx-2.18',
  'cerebras-2025',
  'cerebras-2024-08',
] as const;
export type StackId = (typeof STACK_IDS)[number];

export interface StackProfile {
  readonly id: StackId;
  readonly name: string;
  readonly family: DeviceFamily;
  /** When the measurements this stack's factors come from were published (YYYY-MM). */
  readonly date: string;
  /** Devices with measurements of their own on this stack. */
  readonly calibratedDevices: readonly DeviceId[];
  /**
   * Devices of the family without measurements here, and the device whose factors they use. Their
   * predictions carry the wider error band measured by holding a whole device out (calibration/cv.ts).
   */
  readonly borrowed: Readonly<Partial<Record<DeviceId, DeviceId>>>;
  readonly description: string;
  readonly sources: readonly string[];
  /**
   * How the stack runs a mixture-of-experts layer's routed experts (timing.ts, routedExpertWork):
   * `grouped`, one grouped multiply over exactly the tokens routed to each expert, reading the experts some
   * token picked (GPU fused-MoE kernels); `nxd`, NxD's dispatch, which pads and loads by fixed rules
   * (selective loading, all experts, or dropless blockwise blocks of 512 tokens).
   */
  readonly moeDispatch: 'grouped' | 'nxd';
  /**
   * How decode attention reads a grouped-query model's KV cache: `per-kv-head`, each KV head once for its whole
   * query group (FlashAttention, paged attention, TensorRT-LLM's XQA); `per-query-head`, once for every query head
   * of the group, as a kernel with one thread block per query head does. Multi-head models read the same either way.
   */
  readonly decodeKvReads: 'per-kv-head' | 'per-query-head';
  /**
   * What precision prefill (context) attention computes in: `bf16`, always at the 16-bit tensor rate; `kv-dtype`,
   * at the FP8 tensor rate when the KV cache is FP8 and the device has an FP8 path (FP8 context FMHA), else 16-bit.
   */
  readonly contextAttention: 'bf16' | 'kv-dtype';
  /**
   * The stack whose fitted factors this one runs, when it has no fit points of its own: it differs from that
   * stack only in its structural rules (decodeKvReads), and its points are checks. Unset: factors of its own.
   */
  readonly factorsOf?: StackId;
}

export const STACKS: Readonly<Record<StackId, StackProfile>> = {
  'gpu-2025': {
    id: 'gpu-2025',
    name: 'Optimised GPU serving (TensorRT-LLM/NIM, vLLM 0.6+, SGLang: CUDA graphs, FlashAttention, fused kernels)',
    family: 'gpu',
    date: '2025-06',
    calibratedDevices: ['a100', 'h100'],
    borrowed: { h200: 'h100', b200: 'h100' },
    description:
      'Kernel efficiencies from Vidur operator profiles (2024), all-reduce latency and bandwidth from Vidur NCCL ' +
      'profiles, fixed costs from published single-user NIM and TensorRT-LLM latencies.',
    sources: [
      'Agrawal et al., "Vidur: A Large-Scale Simulation Framework for LLM Inference", MLSys 2024 (profiles in microsoft/vidur)',
      'NVIDIA NIM for LLMs benchmarking page (NIM 1.8.0, Llama 3.3 70B on 2 x H100, concurrency 1)',
      'NVIDIA TensorRT-LLM docs/source/performance.md, low-latency table (v0.5, batch 1)',
      'NVIDIA TensorRT-LLM docs/source/performance/perf-best-practices.md: FP8 context FMHA "recommended to be ' +
        'enabled when fp8 quantization is used", Hopper only; tensorrt_llm/bench/build/build.py: trtllm-bench ' +
        'forces an FP8 KV cache and FP8 context FMHA whenever the quantization is FP8 (or NVFP4)',
    ],
    moeDispatch: 'grouped',
    decodeKvReads: 'per-kv-head',
    contextAttention: 'kv-dtype',
  },
  'trtllm-2023': {
    id: 'trtllm-2023',
    name: "TensorRT-LLM before its XQA kernels (v0.5 to v0.6.1; gpu-2025's factors, checked only)",
    family: 'gpu',
    date: '2023-12',
    calibratedDevices: ['a100', 'h100'],
    borrowed: { h200: 'h100', b200: 'h100' },
    description:
      "gpu-2025's fitted factors for each device, with the decode attention of TensorRT-LLM before XQA: its masked " +
      'multi-head attention kernel runs one thread block per query head, so a grouped-query model reads each KV ' +
      'head once per query head. Measured only by the v0.5 and v0.6.1 peak-throughput tables, which it is checked against.',
    sources: [
      'NVIDIA/TensorRT-LLM issue 407 (2023-11-16): the generation attention kernel loads the KV cache ' +
        'num_heads / num_heads_kv times from global memory for MQA and GQA (maintainers: still investigating)',
      "NVIDIA TensorRT-LLM docs/source/gpt_attention.md (v0.5): the generation phase's masked MHA kernel, a single " +
        'CUDA thread block per head',
      'NVIDIA TensorRT-LLM release notes: 0.7.1 "MMHA optimization for MQA and GQA" and "FP8 KV cache support for ' +
        'XQA kernel"; 0.10.0 "Integrated the new NVIDIA Hopper XQA kernels for LLaMA 2 70B model"',
      'NVIDIA TensorRT-LLM docs/source/performance.md, peak-throughput tables (H100 FP8 v0.6.1, A100 FP16 v0.5)',
      'NVIDIA TensorRT-LLM release notes: 0.9.0 "[Experimental] Added support for FP8 FMHA" (so v0.5 to v0.6.1 ' +
        'compute context attention in 16 bits, FP8 KV cache or not)',
    ],
    moeDispatch: 'grouped',
    decodeKvReads: 'per-query-head',
    contextAttention: 'bf16',
    factorsOf: 'gpu-2025',
  },
  'splitwise-2023': {
    id: 'splitwise-2023',
    name: 'SplitwiseSim measured harness (2023, PyTorch, no CUDA graphs)',
    family: 'gpu',
    date: '2023-11',
    calibratedDevices: ['a100', 'h100'],
    borrowed: { h200: 'h100', b200: 'h100' },
    description:
      'The measured performance model SplitwiseSim ships (Llama-2-70B and BLOOM-176B at TP 2, 4, 8): large ' +
      'per-layer and per-sequence overheads, attention without FlashAttention.',
    sources: ['Patel et al., "Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024'],
    moeDispatch: 'grouped',
    decodeKvReads: 'per-kv-head',
    contextAttention: 'bf16',
  },
  nxdi: {
    id: 'nxdi',
    name: 'AWS Neuron NxD Inference (Neuron SDK 2.21 onwards, with the Neuron vLLM fork or plugin)',
    family: 'neuron',
    date: '2025-02',
    calibratedDevices: ['trn2'],
    borrowed: { trn1: 'trn2', inf2: 'trn2' },
    description:
      'NxD Inference on trn2.48xlarge (TP 64, LNC 2): the Llama 3.3 70B and Llama 3.1 405B tutorial measurements ' +
      '(10k-token prompts, batch 1) and the vLLM Neuron plugin measurements of Llama 3.1 8B and gpt-oss-120b.',
    sources: [
      'AWS Neuron SDK, NxD Inference tutorial "Llama-3.3-70B on trn2.48xlarge" (revised 2025-02-04)',
      'AWS Neuron SDK, NxD Inference tutorial "Llama-3.1-405B on trn2.48xlarge" (Neuron 2.22)',
      'AWS Neuron SDK, vLLM Neuron plugin EAGLE3 tutorials (Llama 3.1 8B, gpt-oss-120b)',
      'aws-neuron/neuronx-distributed: ExpertMLPsV2.forward in src/neuronx_distributed/modules/moe/expert_mlps_v2.py ' +
        '(MoE dispatch rules) and DEFAULT_SELECTIVE_LOADING_THRESHOLD = 1.0, DEFAULT_BLOCK_SIZE = 512 in model_utils.py',
    ],
    moeDispatch: 'nxd',
    decodeKvReads: 'per-kv-head',
    contextAttention: 'bf16',
  },
  'tnx-2.18': {
    id: 'tnx-2.18',
    name: 'AWS Neuron transformers-neuronx (Neuron SDK 2.18)',
    family: 'neuron',
    date: '2024-04',
    calibratedDevices: ['trn1', 'inf2'],
    borrowed: { trn2: 'trn1' },
    description: 'The Neuron SDK 2.18 decoder latency tables for trn1.32xlarge and inf2.48xlarge.',
    sources: ['AWS Neuron SDK documentation, "Inference Performance" latency tables for trn1 and inf2 (SDK 2.18)'],
    moeDispatch: 'grouped',
    decodeKvReads: 'per-kv-head',
    contextAttention: 'bf16',
  },
  'cerebras-2025': {
    id: 'cerebras-2025',
    name: 'Cerebras Inference service (Oct 2024 release onwards)',
    family: 'wafer',
    date: '2025-08',
    calibratedDevices: ['cs3'],
    borrowed: {},
    description:
      'Per-user speeds Cerebras and Artificial Analysis published from the Oct 2024 release ("3x faster", ' +
      'speculative decoding for Llama 70B) through the 2025 models.',
    sources: ['Cerebras announcements and inference documentation; Artificial Analysis measurements (see calibration)'],
    moeDispatch: 'grouped',
    decodeKvReads: 'per-kv-head',
    contextAttention: 'bf16',
  },
  'cerebras-2024-08': {
    id: 'cerebras-2024-08',
    name: 'Cerebras Inference at launch (Aug 2024)',
    family: 'wafer',
    date: '2024-08',
    calibratedDevices: ['cs3'],
    borrowed: {},
    description:
      'The launch release, which Cerebras later said used a fraction of the hardware: 16-bit weights, no ' +
      'speculative decoding.',
    sources: ['Cerebras Inference launch announcement (2024-08-27)'],
    moeDispatch: 'grouped',
    decodeKvReads: 'per-kv-head',
    contextAttention: 'bf16',
  },
};

/** The default stack of each family: its newest published one. */
export const DEFAULT_STACKS: Readonly<Record<DeviceFamily, StackId>> = {
  gpu: 'gpu-2025',
  neuron: 'nxdi',
  wafer: 'cerebras-2025',
};

/** Which stack each device family runs: the defaults, with any family the user chose replaced. */
export type StackSelection = Readonly<Record<DeviceFamily, StackId>>;

export function getStack(id: string): StackProfile {
  if ((STACK_IDS as readonly string[]).includes(id)) return STACKS[id as StackId];
  throw new ProfileError(`unknown serving stack "${id}"; valid stacks: ${STACK_IDS.join(', ')}`);
}

/**
 * Parses `--stack a,b`: each id replaces its family's default. Two stacks of one family are an error,
 * since a device runs one stack at a time.
 */
export function parseStacks(spec: string | undefined, base: StackSelection = DEFAULT_STACKS): StackSelection {
  if (spec === undefined || spec.trim() === '') return base;
  const chosen: Partial<Record<DeviceFamily, StackId>> = {};
  for (const part of spec
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const stack = getStack(part);
    const already = chosen[stack.family];
    if (already !== undefined && already !== stack.id) {
      throw new ProfileError(`stacks "${already}" and "${stack.id}" both run ${stack.family} devices; choose one`);
    }
    chosen[stack.family] = stack.id;
  }
  return { ...base, ...chosen };
}

export function formatStacks(stacks: StackSelection): string {
  return [stacks.gpu, stacks.neuron, stacks.wafer].join(',');
}

/**
 * The stack a device runs under a selection. Left at its family's default, a device that stack has no data
 * for runs the newest stack that has (trn1 and inf2 run tnx-2.18 rather than borrow trn2's factors); a stack
 * chosen explicitly runs as chosen, borrowing where it must.
 */
export function stackFor(device: DeviceId, stacks: StackSelection): StackProfile {
  const family = DEVICES[device].family;
  const chosen = STACKS[stacks[family]];
  if (chosen.id !== DEFAULT_STACKS[family] || chosen.calibratedDevices.includes(device)) return chosen;
  const calibrated = STACK_IDS.map((id) => STACKS[id])
    .filter((s) => s.family === family && s.calibratedDevices.includes(device))
    .sort((a, b) => b.date.localeCompare(a.date));
  return calibrated[0] ?? chosen;
}

/** Stacks with fitted factors of their own: the keys of a factor table (factors.ts). */
export const FACTOR_STACK_IDS: readonly StackId[] = STACK_IDS.filter((id) => STACKS[id].factorsOf === undefined);

/** The stack whose factors `stack` runs: itself, or the stack it takes them from (factorsOf). */
export function factorStackOf(stack: StackProfile): StackProfile {
  return stack.factorsOf === undefined ? stack : STACKS[stack.factorsOf];
}

/**
 * The device whose factors `device` uses on `stack`: itself when calibrated there, else the named one. A stack
 * running another's factors borrows as that stack does.
 */
export function factorSource(stack: StackProfile, device: DeviceId): { device: DeviceId; borrowed: boolean } {
  const owner = factorStackOf(stack);
  if (owner.calibratedDevices.includes(device)) return { device, borrowed: false };
  const from = owner.borrowed[device];
  if (from === undefined) {
    throw new ProfileError(`serving stack "${stack.id}" has no factors for device "${device}"`);
  }
  return { device: from, borrowed: true };
}
