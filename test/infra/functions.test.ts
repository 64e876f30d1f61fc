import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { DEPLOYMENT_ENV } from '../../lib/core/engine/deployment-env';
import { METRIC_NAMESPACE, METRIC_SERVICE } from '../../lib/infra/metric-names';
import {
  AWS,
  DESCRIPTIONS,
  functionLogicalId,
  functionProps,
  LOCALSTACK,
  resourcesOf,
  synth,
  type Context,
} from './synth';

describe('DisaggFunction (every handler)', () => {
  for (const [profile, context] of [
    ['aws', AWS],
    ['localstack', LOCALSTACK],
  ] as const) {
    it(`runs Node 22 on ARM64 with active X-Ray tracing, Powertools settings and no source-map parsing at init (${profile})`, () => {
      const { template } = synth(context);
      const functions = Object.values(resourcesOf(template, 'AWS::Lambda::Function')).filter((f) =>
        String(f.Properties?.Description ?? '').startsWith('Disagg'),
      );
      // api, api stream (aws), prefill, prefill failures, decode, the key reader.
      expect(functions.length).toBe(profile === 'aws' ? 6 : 5);
      for (const fn of functions) {
        expect(fn.Properties).toMatchObject({
          Runtime: 'nodejs22.x',
          Architectures: ['arm64'],
          TracingConfig: { Mode: 'Active' },
          LoggingConfig: { LogFormat: 'JSON' },
          Environment: {
            Variables: {
              POWERTOOLS_SERVICE_NAME: METRIC_SERVICE,
              POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
            },
          },
        });
        // Source maps ship beside the bundle but are not parsed at every cold start.
        expect(fn.Properties?.Environment).not.toHaveProperty('Variables.NODE_OPTIONS');
        expect(String(fn.Properties?.Handler)).toMatch(/^index\.(handler|streamHandler|failureHandler)$/);
      }
    });
  }

  it('gives every function its own log group with the configured retention', () => {
    const { template } = synth({ ...AWS, logRetentionDays: '30' });
    const groups = Object.values(resourcesOf(template, 'AWS::Logs::LogGroup'));
    // Six functions plus the API access log.
    expect(groups.length).toBe(7);
    for (const group of groups) expect(group.Properties?.RetentionInDays).toBe(30);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Disagg decode'),
      LoggingConfig: Match.objectLike({ LogGroup: { Ref: Match.stringLikeRegexp('DecodeLogs') } }),
    });
  });

  it('sizes each stage from the config', () => {
    const { template } = synth({ ...AWS, prefillMemoryMb: '2048', prefillTimeoutSeconds: '90', apiMemoryMb: '256' });
    expect(functionProps(template, DESCRIPTIONS.prefill)).toMatchObject({ MemorySize: 2048, Timeout: 90 });
    expect(functionProps(template, DESCRIPTIONS.decode)).toMatchObject({ MemorySize: 1024, Timeout: 120 });
    expect(functionProps(template, DESCRIPTIONS.api)).toMatchObject({ MemorySize: 256, Timeout: 28 });
  });

  it('sets the deployment environment contract on each function', () => {
    const { template } = synth(AWS);
    const env = (description: string): Record<string, unknown> =>
      (functionProps(template, description).Environment as { Variables: Record<string, unknown> }).Variables;
    for (const description of Object.values(DESCRIPTIONS)) {
      expect(env(description)).toMatchObject({
        [DEPLOYMENT_ENV.model]: 'llama-3.3-70b',
        [DEPLOYMENT_ENV.prefillPool]: 'trn2x16',
        [DEPLOYMENT_ENV.decodePool]: 'cs3x4',
        [DEPLOYMENT_ENV.colocatedPool]: 'h100x8',
        [DEPLOYMENT_ENV.timeScale]: '1',
        [DEPLOYMENT_ENV.decodeBatch]: '8',
        [DEPLOYMENT_ENV.kvStore]: 'elasticache',
        [DEPLOYMENT_ENV.redisUrl]: expect.anything(),
        [DEPLOYMENT_ENV.handoffQueueUrl]: expect.anything(),
        [DEPLOYMENT_ENV.resultsTable]: expect.anything(),
        [DEPLOYMENT_ENV.backend]: 'reference',
      });
    }
    expect(env(DESCRIPTIONS.api)).toMatchObject({
      [DEPLOYMENT_ENV.prefillFunction]: { Ref: functionLogicalId(template, DESCRIPTIONS.prefill) },
    });
    for (const description of [DESCRIPTIONS.decode, DESCRIPTIONS.prefillFailures]) {
      expect(env(description)[DEPLOYMENT_ENV.deadLetterQueueUrl]).toEqual({
        Ref: expect.stringMatching(/DeadLetterQueue/),
      });
    }
    expect(env(DESCRIPTIONS.decode)[DEPLOYMENT_ENV.maxReceiveCount]).toBe('3');
    expect(env(DESCRIPTIONS.prefill)[DEPLOYMENT_ENV.prefillFunction]).toBeUndefined();
  });

  it('sets no variable a handler does not read (the SSE mode is the handler name, not an environment variable)', () => {
    const { template } = synth(AWS);
    for (const fn of Object.values(resourcesOf(template, 'AWS::Lambda::Function'))) {
      const variables = Object.keys(
        (fn.Properties?.Environment as { Variables?: object } | undefined)?.Variables ?? {},
      );
      expect(variables).not.toContain('DISAGG_SSE_MODE');
    }
  });

  it('points the localstack functions at the S3 KV bucket and buffered SSE', () => {
    const { template } = synth(LOCALSTACK);
    const env = (functionProps(template, DESCRIPTIONS.api).Environment as { Variables: Record<string, unknown> })
      .Variables;
    expect(env[DEPLOYMENT_ENV.kvStore]).toBe('s3');
    expect(env[DEPLOYMENT_ENV.kvBucket]).toEqual({ Ref: expect.stringMatching(/KvBucket/) });
    expect(env[DEPLOYMENT_ENV.redisUrl]).toBeUndefined();
    expect(env[DEPLOYMENT_ENV.kvMaxBlobBytes]).toBeUndefined();
  });

  it('refuses to synthesize a deployment whose handlers would reject their environment', () => {
    expect(() => synth({ ...AWS, model: 'llama-3.1-405b' })).toThrow(
      /^invalid deployment: does not fit: llama-3.1-405b/,
    );
  });
});

const RESERVED: Context = { ...AWS, reserveConcurrency: 'true' };

describe('PrefillStage', () => {
  it('reserves no concurrency by default: a new account (quota 10 or 50) cannot keep 100 unreserved after any reservation', () => {
    const { template } = synth(AWS);
    for (const description of Object.values(DESCRIPTIONS)) {
      expect(functionProps(template, description).ReservedConcurrentExecutions).toBeUndefined();
    }
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { ScalingConfig: Match.absent() });
  });

  it('reserves one concurrent execution per prefill instance with reserveConcurrency=true: trn2x16 -> 1', () => {
    expect(functionProps(synth(RESERVED).template, DESCRIPTIONS.prefill).ReservedConcurrentExecutions).toBe(1);
  });

  it('follows the pool: trn2x32 -> 2', () => {
    const { template } = synth({ ...RESERVED, prefillPool: 'trn2x32' });
    expect(functionProps(template, DESCRIPTIONS.prefill).ReservedConcurrentExecutions).toBe(2);
  });

  it('is invoked asynchronously with retries, failed and expired invocations going to the failure handler', () => {
    const { template } = synth(AWS);
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: functionLogicalId(template, DESCRIPTIONS.prefill) },
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 300,
      DestinationConfig: {
        OnFailure: {
          Destination: { 'Fn::GetAtt': [functionLogicalId(template, DESCRIPTIONS.prefillFailures), 'Arn'] },
        },
      },
    });
    expect(functionProps(template, DESCRIPTIONS.prefillFailures).Handler).toBe('index.failureHandler');
  });

  it('takes the retries from prefillRetryAttempts', () => {
    synth({ ...AWS, prefillRetryAttempts: '0' }).template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: Match.stringLikeRegexp('PrefillStagePrefill') },
      MaximumRetryAttempts: 0,
    });
  });

  it("sends the failure handler's own failures to the dead-letter queue, outside the VPC", () => {
    const { template, stack } = synth(AWS);
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: functionLogicalId(template, DESCRIPTIONS.prefillFailures) },
      MaximumRetryAttempts: 2,
      DestinationConfig: {
        OnFailure: {
          Destination: {
            'Fn::GetAtt': [stack.getLogicalId(stack.handoff.deadLetterQueue.node.defaultChild as never), 'Arn'],
          },
        },
      },
    });
    expect(functionProps(template, DESCRIPTIONS.prefillFailures).VpcConfig).toBeUndefined();
  });

  it('gives prefill a timeout that covers a colocated request of the longest prompt and output (90 s by default)', () => {
    expect(functionProps(synth(AWS).template, DESCRIPTIONS.prefill).Timeout).toBe(90);
  });
});

describe('DecodeStage', () => {
  it('reserves one concurrent execution per decode system with reserveConcurrency=true: cs3x4 -> 4', () => {
    expect(functionProps(synth(RESERVED).template, DESCRIPTIONS.decode).ReservedConcurrentExecutions).toBe(4);
  });

  it('follows the pool: cs3x2 -> 2', () => {
    const { template } = synth({ ...RESERVED, decodePool: 'cs3x2', model: 'llama-3.1-8b' });
    expect(functionProps(template, DESCRIPTIONS.decode).ReservedConcurrentExecutions).toBe(2);
  });

  it('consumes the handoff queue in decode batches, reporting per-message failures, within its concurrency', () => {
    const { template, stack } = synth({ ...RESERVED, decodeBatch: '16' });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionLogicalId(template, DESCRIPTIONS.decode) },
      EventSourceArn: { 'Fn::GetAtt': [stack.getLogicalId(stack.handoff.queue.node.defaultChild as never), 'Arn'] },
      BatchSize: 16,
      MaximumBatchingWindowInSeconds: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 4 },
    });
  });

  it('defaults the batch size to 8', () => {
    synth(LOCALSTACK).template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: 8 });
  });
});
