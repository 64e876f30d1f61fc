import { DEVICE_IDS, DEVICES, type DeviceId, type DeviceProfile, type LinkRef } from './devices';
import { LINK_IDS, LINKS, type LinkProfile } from './links';
import { MODEL_IDS, MODELS, type ModelId, type ModelProfile } from './models';

/** A set of identical devices serving one model replica: `trn2x16` is 16 Trainium2 chips. */
export interface DevicePool {
  readonly device: DeviceId;
  readonly count: number;
}

/** A user-facing error about an id or spec: the CLI exits 2 with its message. */
export class ProfileError extends Error {
  override readonly name: string = 'ProfileError';
}

export function getModel(id: string): ModelProfile {
  if ((MODEL_IDS as readonly string[]).includes(id)) return MODELS[id as ModelId];
  throw new ProfileError(`unknown model "${id}"; valid models: ${MODEL_IDS.join(', ')}`);
}

export function getDevice(id: string): DeviceProfile {
  if ((DEVICE_IDS as readonly string[]).includes(id)) return DEVICES[id as DeviceId];
  throw new ProfileError(`unknown device "${id}"; valid devices: ${DEVICE_IDS.join(', ')}`);
}

export function getLink(id: string): LinkProfile {
  if ((LINK_IDS as readonly string[]).includes(id)) return LINKS[id as LinkRef];
  throw new ProfileError(`unknown link "${id}"; valid links: ${LINK_IDS.join(', ')}`);
}

/**
 * Parses `DEV` or `DEVxCOUNT` (`trn2x16`, `cs3x4`, `h100`). Without a count the pool is one
 * instance or system's worth of devices (16 trn2 chips, 8 GPUs, 1 CS-3).
 */
export function parsePool(spec: string): DevicePool {
  const match = /^([a-z0-9]+?)(?:x(\d+))?$/.exec(spec.trim().toLowerCase());
  if (!match) throw new ProfileError(`bad device pool "${spec}": expected DEV or DEVxCOUNT, e.g. trn2x16 or cs3x4`);
  const device = getDevice(match[1] as string);
  const count = match[2] === undefined ? device.instance.devices : Number(match[2]);
  if (!Number.isSafeInteger(count) || count < 1 || count > 100_000) {
    throw new ProfileError(`bad device count in "${spec}": expected a whole number from 1 to 100000`);
  }
  return { device: device.id, count };
}

export function formatPool(pool: DevicePool): string {
  return `${pool.device}x${pool.count}`;
}

/**
 * How a pool is laid out: tensor parallel inside one instance (fast intra-instance link),
 * pipeline stages across instances (network). A CS-3 is one device per system, so its
 * systems form pipeline stages.
 */
export interface PoolLayout {
  readonly tensorParallel: number;
  readonly pipelineStages: number;
  readonly instances: number;
}

export function poolLayout(pool: DevicePool): PoolLayout {
  const device = DEVICES[pool.device];
  const tensorParallel = Math.min(pool.count, device.instance.devices);
  const pipelineStages = Math.ceil(pool.count / tensorParallel);
  return { tensorParallel, pipelineStages, instances: Math.ceil(pool.count / device.instance.devices) };
}

/**
 * Refuses layouts a serving stack cannot run: a pool bigger than one instance must be whole instances
 * (pipeline stages are instances), and on GPUs the tensor-parallel degree must divide the attention heads
 * (vLLM and TensorRT-LLM split heads evenly; Neuron pads them, a wafer has no tensor parallelism).
 */
export function checkLayout(model: ModelProfile, pool: DevicePool): void {
  const device = DEVICES[pool.device];
  const perInstance = device.instance.devices;
  if (pool.count > perInstance && pool.count % perInstance !== 0) {
    const up = Math.ceil(pool.count / perInstance) * perInstance;
    throw new ProfileError(
      `${formatPool(pool)} would be ${Math.floor(pool.count / perInstance)} full ${device.instance.name} and part of ` +
        `another: pipeline stages are whole instances of ${perInstance}, so use ${device.id}x${up - perInstance} or ${device.id}x${up}`,
    );
  }
  if (device.family === 'gpu') {
    const tp = poolLayout(pool).tensorParallel;
    if (model.heads % tp !== 0) {
      let fit = tp;
      while (model.heads % fit !== 0) fit -= 1;
      throw new ProfileError(
        `tensor parallelism ${tp} (${formatPool(pool)}) does not divide ${model.id}'s ${model.heads} attention heads; ` +
          `use ${device.id}x${fit}`,
      );
    }
  }
}
