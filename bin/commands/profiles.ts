import { plainTable } from './table';
import {
  DEVICE_IDS,
  DEVICES,
  devicePricePerHour,
  kvBytesPerToken,
  LINK_IDS,
  LINKS,
  MODEL_IDS,
  MODELS,
  parameterCounts,
  DEFAULT_STACKS,
  STACK_IDS,
  STACKS,
  weightBytes,
} from '../../lib/core/emulator';

const fmt = (n: number, digits = 1): string => n.toLocaleString('en-US', { maximumFractionDigits: digits });

export function profilesJson(): unknown {
  return {
    devices: DEVICE_IDS.map((id) => ({ ...DEVICES[id], pricePerDeviceHour: devicePricePerHour(DEVICES[id]) })),
    links: LINK_IDS.map((id) => LINKS[id]),
    stacks: STACK_IDS.map((id) => ({ ...STACKS[id], default: DEFAULT_STACKS[STACKS[id].family] === id })),
    models: MODEL_IDS.map((id) => {
      const m = MODELS[id];
      const p = parameterCounts(m);
      return {
        ...m,
        derived: {
          totalParams: p.total,
          activeParams: p.active,
          weightBytes: {
            bf16: weightBytes(m, 'bf16'),
            fp8: weightBytes(m, 'fp8'),
            native: weightBytes(m, m.nativeWeightDtype),
          },
          flopsPerToken: 2 * (p.active - p.embedding),
          kvBytesPerToken: kvBytesPerToken(m, 'bf16'),
        },
      };
    }),
  };
}

export function profilesText(): string {
  const devices = plainTable([
    'device',
    'BF16 TFLOP/s',
    'FP8 TFLOP/s',
    'memory',
    'bandwidth',
    'ships in',
    '$/h (instance)',
  ]);
  for (const id of DEVICE_IDS) {
    const d = DEVICES[id];
    devices.push([
      id,
      fmt(d.bf16Flops / 1e12, 0),
      d.fp8Flops === null ? '-' : fmt(d.fp8Flops / 1e12, 0),
      `${fmt(d.memoryBytes / 1e9)} GB ${d.memoryKind.toUpperCase()}`,
      `${fmt(d.memoryBandwidth / 1e12, 2)} TB/s`,
      `${d.instance.name} (${d.instance.devices})`,
      d.instancePricePerHour === null ? 'not public' : `$${fmt(d.instancePricePerHour, 2)}`,
    ]);
  }
  const links = plainTable(['link', 'bandwidth', 'per', 'latency']);
  for (const id of LINK_IDS) {
    const l = LINKS[id];
    links.push([
      id,
      `${fmt(l.bandwidth / 1e9)} GB/s`,
      l.scope === 'per-instance' ? 'instance' : 'device',
      `${fmt(l.latency * 1e6)} us`,
    ]);
  }
  const models = plainTable([
    'model',
    'layers',
    'hidden',
    'heads/kv',
    'experts',
    'params (active)',
    'BF16 weights',
    'KV/token',
  ]);
  for (const id of MODEL_IDS) {
    const m = MODELS[id];
    const p = parameterCounts(m);
    models.push([
      id,
      m.layers,
      m.hiddenSize,
      `${m.heads}/${m.kvHeads}`,
      m.moe ? `${m.moe.activeExperts} of ${m.moe.experts}` : '-',
      `${fmt(p.total / 1e9)}B (${fmt(p.active / 1e9)}B)`,
      `${fmt(weightBytes(m, 'bf16') / 1e9)} GB`,
      `${fmt(kvBytesPerToken(m) / 1024)} KiB`,
    ]);
  }
  const stacks = plainTable(['serving stack', 'family', 'date', 'calibrated on', 'borrowed', 'default']);
  for (const id of STACK_IDS) {
    const s = STACKS[id];
    const borrowed = Object.entries(s.borrowed).map(([d, from]) => `${d} from ${from}`);
    stacks.push([
      s.id,
      s.family,
      s.date,
      s.calibratedDevices.join(', '),
      borrowed.join(', ') || '-',
      DEFAULT_STACKS[s.family] === id ? 'yes' : '',
    ]);
  }
  return [
    'Devices',
    devices.toString(),
    '',
    'Links',
    links.toString(),
    '',
    'Serving stacks (estimate --stack; sources in --json)',
    stacks.toString(),
    '',
    'Models',
    models.toString(),
  ].join('\n');
}
