import { describe, expect, it } from 'vitest';
import { admit } from '../../lib/core/engine/admission';
import { ConfigError, ENGINE_DEFAULTS, engineConfig, stageDevices } from '../../lib/core/engine/config';
import { DEPLOYMENT_ENV, DeploymentEnvError, readDeploymentEnv } from '../../lib/core/engine/deployment-env';
import { chooseMode } from '../../lib/core/engine/routing';
import { FitError, ProfileError } from '../../lib/core/emulator';

describe('routing policy', () => {
  const policy = { colocateAtOrBelowTokens: 512, colocatedAvailable: true };

  it('disaggregates by default and colocates short uncached prompts (conditional disaggregation)', () => {
    expect(chooseMode('auto', 2000, policy)).toBe('disaggregated');
    expect(chooseMode('auto', 512, policy)).toBe('colocated');
    expect(chooseMode('auto', 100, { ...policy, colocateAtOrBelowTokens: 0 })).toBe('disaggregated');
  });

  it('honours an explicit per-request mode', () => {
    expect(chooseMode('colocated', 5000, policy)).toBe('colocated');
    expect(chooseMode('disaggregated', 10, policy)).toBe('disaggregated');
  });

  it('never colocates automatically when no colocated pool exists', () => {
    expect(chooseMode('auto', 10, { ...policy, colocatedAvailable: false })).toBe('disaggregated');
  });
});

describe('admission policy', () => {
  const limits = { maxPrefillQueue: 2, maxDecodeQueue: 3 };

  it('admits below both limits', () => {
    expect(admit({ prefillQueue: 1, decodeQueue: 2 }, limits, 0)).toEqual({ admitted: true });
  });

  it('rejects at a full prefill or decode queue, naming the queue and the limit', () => {
    const prefill = admit({ prefillQueue: 2, decodeQueue: 0 }, limits, 4200);
    expect(prefill).toEqual({
      admitted: false,
      queue: 'prefill',
      reason: 'prefill queue is full (2 of 2 requests)',
      retryAfterSeconds: 5,
    });
    const decode = admit({ prefillQueue: 0, decodeQueue: 3 }, limits, 0);
    expect(decode.admitted).toBe(false);
    if (!decode.admitted) {
      expect(decode.queue).toBe('decode');
      expect(decode.reason).toContain('decode queue is full (3 of 3');
      expect(decode.retryAfterSeconds).toBe(1);
    }
  });
});

describe('engine config', () => {
  it('defaults to the reference deployment: llama-3.3-70b, trn2x16 prefill, cs3x4 decode, h100x8 baseline, timeScale 1', () => {
    const c = engineConfig();
    expect(c.model.id).toBe(ENGINE_DEFAULTS.model);
    expect(stageDevices(c, 'disaggregated')).toEqual({ prefill: 'trn2x16', decode: 'cs3x4' });
    expect(stageDevices(c, 'colocated')).toEqual({ colocated: 'h100x8' });
    expect(c.timeScale).toBe(1);
  });

  it('names the key and the allowed range of a bad value', () => {
    expect(() => engineConfig({ timeScale: -1 })).toThrow(
      new ConfigError('timeScale must be a number from 0 to 1000, got -1'),
    );
    expect(() => engineConfig({ decodeBatchMax: 0 })).toThrow(/decodeBatchMax must be a whole number from 1 to 4096/);
    expect(() => engineConfig({ kvFailurePolicy: 'retry' as never })).toThrow(
      /kvFailurePolicy must be one of fail, recompute/,
    );
  });

  it('runs the serving stacks it is given (the newest of each family by default), and names a bad one', () => {
    expect(engineConfig().compute.stacks).toEqual({ gpu: 'gpu-2025', neuron: 'nxdi', wafer: 'cerebras-2025' });
    expect(engineConfig({ stack: 'cerebras-2024-08' }).compute.stacks.wafer).toBe('cerebras-2024-08');
    expect(() => engineConfig({ stack: 'vllm-9' })).toThrow(/^stack: unknown serving stack "vllm-9"/);
    // Weights default to the precision the checkpoint is published in.
    expect(engineConfig({ model: 'gpt-oss-120b', decode: 'cs3x2' }).compute.weightDtype).toBe('mxfp4');
  });

  it('refuses pools that cannot hold the model, and unknown ids, with the emulator messages', () => {
    expect(() => engineConfig({ decode: 'cs3x1' })).toThrow(FitError);
    expect(() => engineConfig({ model: 'gpt-9' })).toThrow(ProfileError);
  });

  it('colocated none disables colocated routing', () => {
    const c = engineConfig({ colocated: null });
    expect(c.colocatedPool).toBeNull();
    expect(c.routing.colocatedAvailable).toBe(false);
  });
});

describe('deployment environment (the CDK ↔ handler contract)', () => {
  const base = { [DEPLOYMENT_ENV.kvStore]: 's3', [DEPLOYMENT_ENV.kvBucket]: 'kv-bucket' };

  it('reads pools, policies and stores from the documented variables', () => {
    const s = readDeploymentEnv({
      ...base,
      [DEPLOYMENT_ENV.decodePool]: 'cs3x4',
      [DEPLOYMENT_ENV.colocatedPool]: 'none',
      [DEPLOYMENT_ENV.timeScale]: '0',
      [DEPLOYMENT_ENV.maxReceiveCount]: '5',
      [DEPLOYMENT_ENV.kvMaxBlobBytes]: '1048576',
    });
    expect(s.engine.colocatedPool).toBeNull();
    expect(s.engine.timeScale).toBe(0);
    expect(s.kvBucket).toBe('kv-bucket');
    expect(s.maxReceiveCount).toBe(5);
    expect(s.kvMaxBlobBytes).toBe(1_048_576);
  });

  it('defaults the dead-letter count to 3 and leaves KV blobs unlimited', () => {
    const s = readDeploymentEnv(base);
    expect(s.maxReceiveCount).toBe(3);
    expect(s.kvMaxBlobBytes).toBeNull();
    expect(() => readDeploymentEnv({ ...base, [DEPLOYMENT_ENV.maxReceiveCount]: '0' })).toThrow(
      /DISAGG_MAX_RECEIVE_COUNT must be a whole number of at least 1/,
    );
  });

  it('rejects bad values naming the variable and the allowed values', () => {
    expect(() => readDeploymentEnv({ ...base, [DEPLOYMENT_ENV.kvStore]: 'dynamo' })).toThrow(
      new DeploymentEnvError('DISAGG_KV_STORE must be one of elasticache, s3, got "dynamo"'),
    );
    expect(() => readDeploymentEnv({ [DEPLOYMENT_ENV.kvStore]: 'elasticache' })).toThrow(
      /DISAGG_REDIS_URL is required/,
    );
    expect(() => readDeploymentEnv({ ...base, [DEPLOYMENT_ENV.backend]: 'bedrock' })).toThrow(
      /DISAGG_BEDROCK_MODEL_ID is required/,
    );
    expect(() => readDeploymentEnv({ ...base, [DEPLOYMENT_ENV.timeScale]: 'fast' })).toThrow(
      /DISAGG_TIME_SCALE must be a number/,
    );
  });
});
