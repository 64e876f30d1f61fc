/**
 * Accelerator profiles. Every figure is the vendor's published peak (dense, no sparsity);
 * achieved rates come from the efficiency factors in efficiency.ts, fitted in calibration.ts.
 */

export const DEVICE_IDS = ['trn1', 'trn2', 'inf2', 'cs3', 'a100', 'h100', 'h200', 'b200'] as const;
export type DeviceId = (typeof DEVICE_IDS)[number];

/**
 * Device family: which serving stacks run on it (see stacks.ts) and which cross-validated error band its
 * predictions carry. Factors are per device; a device a stack has no data for borrows from a named one.
 */
export type DeviceFamily = 'neuron' | 'gpu' | 'wafer';

export interface DeviceProfile {
  readonly id: DeviceId;
  readonly name: string;
  readonly family: DeviceFamily;
  /** Dense BF16/FP16 FLOP/s. */
  readonly bf16Flops: number;
  /** Dense FP8 FLOP/s; null where the device has no FP8 tensor path (it then runs FP8 weights at BF16 rate). */
  readonly fp8Flops: number | null;
  readonly memoryKind: 'hbm' | 'sram';
  /** Memory per device in bytes, as the device reports it (nvidia-smi, neuron-top), not the marketing figure. */
  readonly memoryBytes: number;
  /** Memory bandwidth per device, bytes/s. */
  readonly memoryBandwidth: number;
  /** The instance or system the device ships in, and how many devices it holds. */
  readonly instance: { readonly name: string; readonly devices: number };
  /** On-demand USD per hour for the whole instance (us-east-1), null where no public price exists. */
  readonly instancePricePerHour: number | null;
  /**
   * Collective ranks per device: tensor-parallel degrees are quoted in these (NeuronCores on Neuron: TP 32 on a
   * trn1.32xlarge is 16 chips of 2 cores; TP 64 on a trn2.48xlarge is 16 chips of 4 logical cores at LNC 2).
   */
  readonly ranksPerDevice: number;
  /** Link between devices inside one instance (tensor-parallel collectives). */
  readonly intraLink: LinkRef;
  /** Network between instances (pipeline stages, KV handoff). */
  readonly interLink: LinkRef;
  readonly sources: readonly string[];
}

/** Link ids, declared here so devices can name their links without a circular import. */
export type LinkRef =
  | 'efa-trn1'
  | 'efa-trn1n'
  | 'efa-trn2'
  | 'efa-p5'
  | 'efa-p4d'
  | 'efa-p6'
  | 'neuronlink-v2'
  | 'neuronlink-v3'
  | 'nvlink3'
  | 'nvlink4'
  | 'nvlink5'
  | 'cs3-io'
  | 'wafer-fabric'
  | 'tcp-100g';

const TERA = 1e12;
const GIB = 1024 ** 3;
const GB = 1e9;
const MIB = 1024 ** 2;

export const DEVICES: Readonly<Record<DeviceId, DeviceProfile>> = {
  trn1: {
    id: 'trn1',
    name: 'AWS Trainium (Trn1)',
    family: 'neuron',
    bf16Flops: 190 * TERA,
    fp8Flops: 190 * TERA, // cFP8 runs at the BF16 rate on NeuronCore-v2
    memoryKind: 'hbm',
    memoryBytes: 32 * GIB,
    memoryBandwidth: 820 * GIB,
    instance: { name: 'trn1.32xlarge', devices: 16 },
    instancePricePerHour: 21.5,
    ranksPerDevice: 2,
    intraLink: 'neuronlink-v2',
    interLink: 'efa-trn1',
    sources: [
      'AWS Neuron docs, "Trainium Architecture": 190 FP16/BF16/cFP8 TFLOPS, 32 GiB at 820 GiB/s per chip',
      'AWS Neuron docs, "Trn1/Trn1n Architecture": 16 chips per trn1.32xlarge, EFA 800 Gbps',
      'AWS EC2 on-demand pricing, trn1.32xlarge us-east-1: $21.50/h',
    ],
  },
  trn2: {
    id: 'trn2',
    name: 'AWS Trainium2 (Trn2)',
    family: 'neuron',
    bf16Flops: 667 * TERA,
    fp8Flops: 1299 * TERA,
    memoryKind: 'hbm',
    memoryBytes: 96 * GIB,
    memoryBandwidth: 2.9 * TERA,
    instance: { name: 'trn2.48xlarge', devices: 16 },
    instancePricePerHour: 46.98, // approximate: AWS lists Trn2 mostly through Capacity Blocks
    ranksPerDevice: 4,
    intraLink: 'neuronlink-v3',
    interLink: 'efa-trn2',
    sources: [
      'AWS Neuron docs, "Trainium2 Architecture": 667 BF16 and 1,299 FP8 dense TFLOPS, 96 GiB HBM at 2.9 TB/s per chip',
      'Trainium2 has 8 NeuronCores; NxD Inference runs them as 4 logical cores per chip (LNC 2), so TP 64 = 16 chips',
      'AWS Trn2 instance announcement (Dec 2024): trn2.48xlarge = 16 Trainium2, 3.2 Tbps EFAv3',
      'trn2.48xlarge price: approximate on-demand equivalent, us-east-1 (2025); treat cost figures as indicative',
    ],
  },
  inf2: {
    id: 'inf2',
    name: 'AWS Inferentia2 (Inf2)',
    family: 'neuron',
    bf16Flops: 190 * TERA,
    fp8Flops: 190 * TERA,
    memoryKind: 'hbm',
    memoryBytes: 32 * GIB,
    memoryBandwidth: 820 * GIB,
    instance: { name: 'inf2.48xlarge', devices: 12 },
    instancePricePerHour: 12.98,
    ranksPerDevice: 2,
    intraLink: 'neuronlink-v2',
    interLink: 'tcp-100g',
    sources: [
      'AWS Neuron docs, "Inferentia2 Architecture": 190 FP16/BF16/cFP8 TFLOPS, 32 GiB at 820 GB/s per chip, 2 NeuronCores',
      'AWS EC2 on-demand pricing, inf2.48xlarge (12 chips, 100 Gbps network) us-east-1: $12.98/h',
    ],
  },
  cs3: {
    id: 'cs3',
    name: 'Cerebras CS-3 (WSE-3)',
    family: 'wafer',
    bf16Flops: 125_000 * TERA, // "125 petaflops of peak AI performance"
    fp8Flops: null,
    memoryKind: 'sram',
    memoryBytes: 44 * GB,
    memoryBandwidth: 21_000 * TERA,
    instance: { name: 'CS-3 system (one wafer)', devices: 1 },
    instancePricePerHour: null,
    ranksPerDevice: 1,
    intraLink: 'wafer-fabric',
    interLink: 'cs3-io',
    sources: [
      'Cerebras WSE-3 / CS-3 launch (Mar 2024): 125 PFLOPS peak AI, 44 GB on-chip SRAM, 21 PB/s memory bandwidth',
      'Cerebras CS-3 datasheet: 1.2 Tb/s system I/O (12 x 100 GbE)',
      'No public hourly price for a CS-3 system; cost comparisons need an explicit assumption',
    ],
  },
  a100: {
    id: 'a100',
    name: 'NVIDIA A100 80GB SXM',
    family: 'gpu',
    bf16Flops: 312 * TERA,
    fp8Flops: null,
    memoryKind: 'hbm',
    memoryBytes: 81_920 * MIB,
    memoryBandwidth: 2039 * GB,
    instance: { name: 'p4de.24xlarge', devices: 8 },
    instancePricePerHour: 40.96,
    ranksPerDevice: 1,
    intraLink: 'nvlink3',
    interLink: 'efa-p4d',
    sources: [
      'NVIDIA A100 datasheet: 312 TFLOPS BF16 dense, 80 GB HBM2e at 2,039 GB/s (SXM)',
      'nvidia-smi reports 81,920 MiB on an A100 80GB (modal-labs/modal-client pull request 2797)',
      'AWS EC2 on-demand pricing, p4de.24xlarge (8 x A100 80GB, 400 Gbps EFA) us-east-1: $40.96/h',
    ],
  },
  h100: {
    id: 'h100',
    name: 'NVIDIA H100 SXM5',
    family: 'gpu',
    bf16Flops: 989 * TERA,
    fp8Flops: 1979 * TERA,
    memoryKind: 'hbm',
    memoryBytes: 81_559 * MIB,
    memoryBandwidth: 3.35 * TERA,
    instance: { name: 'p5.48xlarge', devices: 8 },
    instancePricePerHour: 55.04,
    ranksPerDevice: 1,
    intraLink: 'nvlink4',
    interLink: 'efa-p5',
    sources: [
      'NVIDIA H100 datasheet: 989 TFLOPS BF16 and 1,979 TFLOPS FP8 dense, 80 GB HBM3 at 3.35 TB/s (SXM5)',
      'nvidia-smi reports 81,559 MiB on an H100 SXM (modal-labs/modal-client pull request 2797)',
      'AWS EC2 on-demand pricing after the June 2025 reduction, p5.48xlarge (8 x H100, 3,200 Gbps EFA) us-east-1: $55.04/h',
    ],
  },
  h200: {
    id: 'h200',
    name: 'NVIDIA H200 SXM',
    family: 'gpu',
    bf16Flops: 989 * TERA,
    fp8Flops: 1979 * TERA,
    memoryKind: 'hbm',
    memoryBytes: 143_771 * MIB,
    memoryBandwidth: 4.8 * TERA,
    instance: { name: 'p5en.48xlarge', devices: 8 },
    instancePricePerHour: 63.3,
    ranksPerDevice: 1,
    intraLink: 'nvlink4',
    interLink: 'efa-p5',
    sources: [
      'NVIDIA H200 datasheet: same tensor cores as H100, 141 GB HBM3e at 4.8 TB/s',
      'nvidia-smi reports 143,771 MiB on an H200 (NVIDIA/cuda-samples issue 311)',
      'AWS EC2 on-demand pricing after the June 2025 reduction, p5en.48xlarge (8 x H200) us-east-1: about $63.30/h',
    ],
  },
  b200: {
    id: 'b200',
    name: 'NVIDIA B200',
    family: 'gpu',
    bf16Flops: 2250 * TERA,
    fp8Flops: 4500 * TERA,
    memoryKind: 'hbm',
    memoryBytes: 183_359 * MIB,
    memoryBandwidth: 7.7 * TERA,
    instance: { name: 'p6-b200.48xlarge', devices: 8 },
    instancePricePerHour: 113.93,
    ranksPerDevice: 1,
    intraLink: 'nvlink5',
    interLink: 'efa-p6',
    sources: [
      'NVIDIA HGX B200 datasheet: 2.25 PFLOPS BF16 and 4.5 PFLOPS FP8 dense per GPU, 180 GB HBM3e at 7.7 TB/s',
      'nvidia-smi reports 183,359 MiB per B200 (a public HGX B200 environment report)',
      'AWS EC2 on-demand pricing, p6-b200.48xlarge (8 x B200, 3,200 Gbps EFAv4) us-east-1: about $113.93/h',
    ],
  },
};

export function devicePricePerHour(device: DeviceProfile): number | null {
  return device.instancePricePerHour === null ? null : device.instancePricePerHour / device.instance.devices;
}
