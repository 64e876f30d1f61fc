import { describe, expect, it } from 'vitest';
import { deploymentEngine } from '../../lib/infra/sizing';
import { CONFIG_DEFAULTS, poolConcurrency, readConfig, type DisaggConfig } from '../../lib/infra/config';

const read = (context: Record<string, unknown> = {}): DisaggConfig => readConfig((key) => context[key]);

describe('infra config', () => {
  it('defaults to the aws profile: llama-3.3-70b, trn2x16 -> cs3x4, h100x8 colocated, ElastiCache, reference backend', () => {
    const config = read();
    expect(config).toMatchObject({
      profile: 'aws',
      model: 'llama-3.3-70b',
      prefillPool: 'trn2x16',
      decodePool: 'cs3x4',
      colocatedPool: 'h100x8',
      decodeBatch: 8,
      timeScale: 1,
      kvStore: 'elasticache',
      backend: 'reference',
      bedrockModelId: null,
      apiKeyRequired: true,
      removalPolicy: 'destroy',
      maxReceiveCount: 3,
      logRetentionDays: 14,
      pointInTimeRecovery: false,
      reserveConcurrency: false,
      availabilityZones: [],
      prefillRetryAttempts: 2,
      apiGatewayCloudWatchRole: 'create',
      apiStreamTimeoutSeconds: 305,
    });
    expect(config.prefill.timeoutSeconds).toBe(90);
    expect(config.decode.timeoutSeconds).toBe(CONFIG_DEFAULTS.decodeTimeoutSeconds);
  });

  it('defaults the localstack profile to the S3 KV store', () => {
    expect(read({ profile: 'localstack' }).kvStore).toBe('s3');
  });

  it('parses numbers and booleans that arrive as strings from -c flags', () => {
    const config = read({
      decodeBatch: '16',
      timeScale: '0.5',
      maxReceiveCount: '5',
      apiKeyRequired: 'false',
      decodeMemoryMb: '2048',
      decodeTimeoutSeconds: '300',
      logRetentionDays: '30',
    });
    expect(config.decodeBatch).toBe(16);
    expect(config.timeScale).toBe(0.5);
    expect(config.maxReceiveCount).toBe(5);
    expect(config.apiKeyRequired).toBe(false);
    expect(config.decode).toEqual({ memoryMb: 2048, timeoutSeconds: 300 });
    expect(config.logRetentionDays).toBe(30);
  });

  it('takes a serving stack per device family as `stack`, validated, and passes it to the functions', () => {
    expect(read().stack).toBe('');
    expect(read({ stack: 'cerebras-2024-08,tnx-2.18' }).stack).toBe('cerebras-2024-08,tnx-2.18');
    expect(() => read({ stack: 'gpu-2025,splitwise-2023' })).toThrow(/^stack: .*both run gpu devices/);
    expect(deploymentEngine(read({ stack: 'cerebras-2024-08' })).compute.stacks.wafer).toBe('cerebras-2024-08');
  });

  it('accepts colocatedPool=none to disable colocated routing', () => {
    expect(read({ colocatedPool: 'none' }).colocatedPool).toBe('none');
  });

  it('rejects an unknown kvStore, naming the key and the allowed values', () => {
    expect(() => read({ kvStore: 'redis' })).toThrow('kvStore must be one of elasticache, s3 (got "redis")');
  });

  it('rejects an unknown profile, naming the key and the allowed values', () => {
    expect(() => read({ profile: 'gcp' })).toThrow('profile must be one of aws, localstack (got "gcp")');
  });

  it('rejects elasticache on localstack, where only s3 is allowed', () => {
    expect(() => read({ profile: 'localstack', kvStore: 'elasticache' })).toThrow(
      'kvStore must be one of s3 (got "elasticache")',
    );
  });

  it('requires bedrockModelId when backend=bedrock', () => {
    expect(() => read({ backend: 'bedrock' })).toThrow(/bedrockModelId is required when backend=bedrock/);
    expect(read({ backend: 'bedrock', bedrockModelId: 'meta.llama3-1-70b-instruct-v1:0' }).bedrockModelId).toBe(
      'meta.llama3-1-70b-instruct-v1:0',
    );
  });

  it('rejects an unknown backend with the allowed values', () => {
    expect(() => read({ backend: 'openai' })).toThrow('backend must be one of reference, bedrock (got "openai")');
  });

  it('rejects an unknown pool device, naming the key and listing the valid devices', () => {
    expect(() => read({ prefillPool: 'tpu5x8' })).toThrow(
      /^prefillPool: unknown device "tpu5"; valid devices: trn1, trn2/,
    );
    expect(() => read({ decodePool: 'cs9' })).toThrow(/^decodePool: unknown device "cs9"/);
    expect(() => read({ colocatedPool: 'x' })).toThrow(/^colocatedPool: /);
  });

  it('rejects an unknown model, listing the valid models', () => {
    expect(() => read({ model: 'gpt-5' })).toThrow(/^model: unknown model "gpt-5"; valid models: .*llama-3.3-70b/);
  });

  it('rejects numbers out of range or not numbers, with the range', () => {
    expect(() => read({ decodeBatch: '0' })).toThrow('decodeBatch must be a whole number from 1 to 10000 (got "0")');
    expect(() => read({ decodeBatch: 'eight' })).toThrow(/^decodeBatch must be a whole number/);
    expect(() => read({ maxReceiveCount: '2.5' })).toThrow(/^maxReceiveCount must be a whole number from 1 to 1000/);
    expect(() => read({ decodeTimeoutSeconds: '901' })).toThrow(/^decodeTimeoutSeconds must be a whole number/);
  });

  it('rejects a log retention CloudWatch does not offer, listing the ones it does', () => {
    expect(() => read({ logRetentionDays: '10' })).toThrow(/^logRetentionDays must be one of 1, 3, 5, 7, 14, 30/);
  });

  it('rejects booleans spelled otherwise', () => {
    expect(() => read({ apiKeyRequired: 'yes' })).toThrow('apiKeyRequired must be one of true, false (got "yes")');
  });

  it('rejects an unknown removal policy', () => {
    expect(() => read({ removalPolicy: 'snapshot' })).toThrow(
      'removalPolicy must be one of destroy, retain (got "snapshot")',
    );
  });
});

describe('infra config: keys added for a first deployment', () => {
  it('reads availabilityZones as a list of zone names of one region', () => {
    expect(read({ availabilityZones: 'us-east-1a, us-east-1c' }).availabilityZones).toEqual([
      'us-east-1a',
      'us-east-1c',
    ]);
    expect(() => read({ availabilityZones: 'us-east-1a' })).toThrow(
      /availabilityZones needs at least two different zones/,
    );
    expect(() => read({ availabilityZones: 'us-east-1a,eu-west-1b' })).toThrow(/must all be in one region/);
    expect(() => read({ availabilityZones: 'use1-az1,use1-az2' })).toThrow(/zone names such as us-east-1a/);
  });

  it('bounds prefillRetryAttempts to what Lambda allows (0 to 2)', () => {
    expect(read({ prefillRetryAttempts: '0' }).prefillRetryAttempts).toBe(0);
    expect(() => read({ prefillRetryAttempts: '3' })).toThrow(
      'prefillRetryAttempts must be a whole number from 0 to 2 (got "3")',
    );
  });

  it('reads apiGatewayCloudWatchRole as create or existing', () => {
    expect(read({ apiGatewayCloudWatchRole: 'existing' }).apiGatewayCloudWatchRole).toBe('existing');
    expect(() => read({ apiGatewayCloudWatchRole: 'delete' })).toThrow(
      'apiGatewayCloudWatchRole must be one of create, existing (got "delete")',
    );
  });

  it('refuses a prefill timeout shorter than a colocated request of the longest prompt and output takes', () => {
    expect(() => read({ prefillTimeoutSeconds: '60' })).toThrow(
      /^prefillTimeoutSeconds must be at least \d+ for this deployment \(got 60\): .* 8192-token prompt with 4096 output tokens on h100x8/,
    );
    // Shorter outputs, or no sleeping for emulated time, need less.
    expect(read({ prefillTimeoutSeconds: '60', maxOutputTokens: '2048' }).prefill.timeoutSeconds).toBe(60);
    expect(read({ prefillTimeoutSeconds: '10', timeScale: '0' }).prefill.timeoutSeconds).toBe(10);
  });

  it('refuses a decode timeout shorter than a full decode batch takes', () => {
    expect(() => read({ decodeTimeoutSeconds: '1' })).toThrow(
      /^decodeTimeoutSeconds must be at least \d+ for this deployment/,
    );
  });

  it('refuses a prompt limit whose stored prompt cannot fit one DynamoDB item', () => {
    expect(() => read({ maxPromptTokens: '20000', timeScale: '0' })).toThrow(
      /DynamoDB's 409600-byte item limit; use at most \d+/,
    );
  });
});

describe('pool concurrency (one concurrent execution per instance or system the pool occupies)', () => {
  it('gives trn2x16 (one trn2.48xlarge) 1 and cs3x4 (four CS-3 systems) 4', () => {
    expect(poolConcurrency('trn2x16')).toBe(1);
    expect(poolConcurrency('cs3x4')).toBe(4);
  });

  it('rounds a partial instance up and never goes below 1', () => {
    expect(poolConcurrency('trn2x8')).toBe(1);
    expect(poolConcurrency('trn2x24')).toBe(2);
    expect(poolConcurrency('trn2x32')).toBe(2);
    expect(poolConcurrency('h100x16')).toBe(2);
    expect(poolConcurrency('cs3')).toBe(1);
  });
});
