import type { LinkRef } from './devices';

/** A link's bandwidth (bytes/s, one direction) and one-way latency (s). */
export interface LinkProfile {
  readonly id: LinkRef;
  readonly name: string;
  /** Per instance for networks (EFA, TCP, CS-3 I/O); per device for chip-to-chip links. */
  readonly bandwidth: number;
  readonly scope: 'per-instance' | 'per-device';
  readonly latency: number;
  readonly sources: readonly string[];
}

export const LINK_IDS: readonly LinkRef[] = [
  'efa-trn1',
  'efa-trn1n',
  'efa-trn2',
  'efa-p5',
  'efa-p4d',
  'efa-p6',
  'neuronlink-v2',
  'neuronlink-v3',
  'nvlink3',
  'nvlink4',
  'nvlink5',
  'cs3-io',
  'wafer-fabric',
  'tcp-100g',
];

const GBPS = 1e9 / 8; // bytes/s in one gigabit/s
const GBYTE = 1e9;
const US = 1e-6;

// EFA latency: AWS quotes "low tens of microseconds" for EFA SRD; we charge 15 us one way.
const EFA_LATENCY = 15 * US;
const EFA_LATENCY_SOURCE = 'AWS EFA documentation: SRD one-way latency in the low tens of microseconds (15 us used)';

export const LINKS: Readonly<Record<LinkRef, LinkProfile>> = {
  'efa-trn1': {
    id: 'efa-trn1',
    name: 'EFA, trn1.32xlarge (800 Gbps)',
    bandwidth: 800 * GBPS,
    scope: 'per-instance',
    latency: EFA_LATENCY,
    sources: ['AWS Neuron docs, "Trn1/Trn1n Architecture": EFA 800 Gbps per trn1.32xlarge', EFA_LATENCY_SOURCE],
  },
  'efa-trn1n': {
    id: 'efa-trn1n',
    name: 'EFA, trn1n.32xlarge (1,600 Gbps)',
    bandwidth: 1600 * GBPS,
    scope: 'per-instance',
    latency: EFA_LATENCY,
    sources: ['AWS Neuron docs, "Trn1/Trn1n Architecture": EFA 1,600 Gbps per trn1n.32xlarge', EFA_LATENCY_SOURCE],
  },
  'efa-trn2': {
    id: 'efa-trn2',
    name: 'EFAv3, trn2.48xlarge (3,200 Gbps)',
    bandwidth: 3200 * GBPS,
    scope: 'per-instance',
    latency: EFA_LATENCY,
    sources: ['AWS Trn2 instance announcement (Dec 2024): 3.2 Tbps EFAv3 per trn2.48xlarge', EFA_LATENCY_SOURCE],
  },
  'efa-p5': {
    id: 'efa-p5',
    name: 'EFA, p5.48xlarge (3,200 Gbps)',
    bandwidth: 3200 * GBPS,
    scope: 'per-instance',
    latency: EFA_LATENCY,
    sources: ['AWS P5 instance page: 3,200 Gbps EFAv2 per p5.48xlarge', EFA_LATENCY_SOURCE],
  },
  'efa-p4d': {
    id: 'efa-p4d',
    name: 'EFA, p4d/p4de.24xlarge (400 Gbps)',
    bandwidth: 400 * GBPS,
    scope: 'per-instance',
    latency: EFA_LATENCY,
    sources: ['AWS P4d instance page: 400 Gbps EFA per p4d.24xlarge', EFA_LATENCY_SOURCE],
  },
  'efa-p6': {
    id: 'efa-p6',
    name: 'EFAv4, p6-b200.48xlarge (3,200 Gbps)',
    bandwidth: 3200 * GBPS,
    scope: 'per-instance',
    latency: EFA_LATENCY,
    sources: ['AWS P6-B200 instance page: 3,200 Gbps EFAv4 per p6-b200.48xlarge', EFA_LATENCY_SOURCE],
  },
  'neuronlink-v2': {
    id: 'neuronlink-v2',
    name: 'NeuronLink-v2 (Trn1/Inf2 chip to chip)',
    bandwidth: 384 * GBYTE,
    scope: 'per-device',
    latency: 5 * US,
    sources: [
      'AWS Trn1 launch material: NeuronLink-v2 chip-to-chip interconnect, 768 GB/s per instance ring (384 GB/s per chip used here)',
      'Latency: assumed 5 us per collective hop (no published figure)',
    ],
  },
  'neuronlink-v3': {
    id: 'neuronlink-v3',
    name: 'NeuronLink-v3 (Trn2 chip to chip)',
    bandwidth: 1000 * GBYTE,
    scope: 'per-device',
    latency: 5 * US,
    sources: [
      'AWS Trn2 announcement (Dec 2024): NeuronLink chip-to-chip interconnect, about 1 TB/s per chip',
      'Latency: assumed 5 us per collective hop (no published figure); the fitted collective overhead absorbs the rest',
    ],
  },
  nvlink3: {
    id: 'nvlink3',
    name: 'NVLink 3 (A100)',
    bandwidth: 600 * GBYTE,
    scope: 'per-device',
    latency: 3 * US,
    sources: ['NVIDIA A100 datasheet: NVLink 600 GB/s per GPU', 'Latency: NCCL small-message hop, about 3 us'],
  },
  nvlink4: {
    id: 'nvlink4',
    name: 'NVLink 4 (H100/H200)',
    bandwidth: 900 * GBYTE,
    scope: 'per-device',
    latency: 3 * US,
    sources: ['NVIDIA H100 datasheet: NVLink 900 GB/s per GPU', 'Latency: NCCL small-message hop, about 3 us'],
  },
  nvlink5: {
    id: 'nvlink5',
    name: 'NVLink 5 (B200)',
    bandwidth: 1800 * GBYTE,
    scope: 'per-device',
    latency: 3 * US,
    sources: [
      'NVIDIA B200 datasheet: fifth-generation NVLink 1.8 TB/s per GPU',
      'Latency: NCCL small-message hop, about 3 us',
    ],
  },
  'cs3-io': {
    id: 'cs3-io',
    name: 'CS-3 system I/O (1.2 Tb/s)',
    bandwidth: 1200 * GBPS,
    scope: 'per-instance',
    latency: 10 * US,
    sources: [
      'Cerebras CS-3 datasheet: 1.2 Tb/s system I/O (12 x 100 GbE)',
      'Latency: assumed 10 us one way through a 100 GbE switch (no published figure)',
    ],
  },
  'wafer-fabric': {
    id: 'wafer-fabric',
    name: 'WSE-3 on-wafer fabric',
    bandwidth: 214e15 / 8,
    scope: 'per-device',
    latency: 0,
    sources: [
      'Cerebras WSE-3 launch (Mar 2024): 214 Pb/s on-wafer fabric bandwidth; on-wafer latency is in the fitted per-layer term',
    ],
  },
  'tcp-100g': {
    id: 'tcp-100g',
    name: '100 GbE TCP',
    bandwidth: 100 * GBPS * 0.9, // about 90% of line rate is what TCP achieves after framing and headers
    scope: 'per-instance',
    latency: 50 * US,
    sources: [
      'IEEE 802.3 100 GbE line rate; 90% goodput after TCP/IP framing; 50 us kernel TCP round half-trip (typical)',
    ],
  },
};
