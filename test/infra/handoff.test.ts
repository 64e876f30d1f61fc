import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { ENGINE_DEFAULTS } from '../../lib/core/engine/config';
import { DEPLOYMENT_ENV } from '../../lib/core/engine/deployment-env';
import { ECPU_LIMITS, kvBlobBytes, REFERENCE_KV_BYTES_PER_TOKEN } from '../../lib/infra/sizing';
import { AUTHORIZER_DESCRIPTION, AWS, DESCRIPTIONS, functionProps, LOCALSTACK, resourcesOf, synth } from './synth';

const queueId = (context: typeof AWS): string => {
  const { stack } = synth(context);
  return stack.getLogicalId(stack.handoff.queue.node.defaultChild as never);
};
const dlqId = (context: typeof AWS): string => {
  const { stack } = synth(context);
  return stack.getLogicalId(stack.handoff.deadLetterQueue.node.defaultChild as never);
};

describe('KvHandoff queue', () => {
  it('dead-letters a descriptor on its 3rd receive by default: the decode function on that receive, SQS redrive one later as the backstop', () => {
    const { template } = synth(AWS);
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId(AWS), 'Arn'] }, maxReceiveCount: 4 },
    });
    expect(
      (functionProps(template, DESCRIPTIONS.decode).Environment as { Variables: Record<string, unknown> }).Variables[
        DEPLOYMENT_ENV.maxReceiveCount
      ],
    ).toBe('3');
  });

  it('takes maxReceiveCount from the config', () => {
    synth({ ...LOCALSTACK, maxReceiveCount: '7' }).template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { maxReceiveCount: 8 },
    });
  });

  it('brings a delivery whose decode crashed back within the request deadline: visibility = decode timeout + 30 s', () => {
    const visibility = (context: typeof AWS): unknown =>
      resourcesOf(synth(context).template, 'AWS::SQS::Queue')[queueId(context)]?.Properties?.VisibilityTimeout;
    expect(visibility({ ...AWS, decodeTimeoutSeconds: '200' })).toBe(230);
    expect(visibility(AWS)).toBe(150);
    // A poison descriptor is dead-lettered after maxReceiveCount short backoffs, not 3 x 12 minutes.
    expect((visibility(AWS) as number) * 1000).toBeLessThan(ENGINE_DEFAULTS.requestTimeoutMs);
  });

  it('encrypts both queues at rest and keeps dead letters for 14 days', () => {
    const queues = resourcesOf(synth(AWS).template, 'AWS::SQS::Queue');
    expect(Object.keys(queues)).toHaveLength(2);
    for (const queue of Object.values(queues)) expect(queue.Properties?.SqsManagedSseEnabled).toBe(true);
    expect(queues[dlqId(AWS)]?.Properties?.MessageRetentionPeriod).toBe(14 * 86_400);
  });

  it('denies non-TLS access to both queues', () => {
    const { template } = synth(AWS);
    for (const id of [queueId(AWS), dlqId(AWS)]) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sqs:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
              Principal: { AWS: '*' },
            }),
          ]),
        },
      });
    }
  });
});

describe('KvHandoff KV store on aws: ElastiCache Serverless (Valkey) in an isolated VPC', () => {
  const { template } = synth(AWS);

  it('runs a serverless Valkey cache in the isolated subnets behind its own security group', () => {
    template.resourceCountIs('AWS::ElastiCache::ServerlessCache', 1);
    template.hasResourceProperties('AWS::ElastiCache::ServerlessCache', {
      Engine: 'valkey',
      SubnetIds: Match.arrayWith([Match.objectLike({ Ref: Match.stringLikeRegexp('isolatedSubnet1') })]),
      SecurityGroupIds: [Match.objectLike({ 'Fn::GetAtt': [Match.stringLikeRegexp('CacheSecurityGroup'), 'GroupId'] })],
      SnapshotRetentionLimit: 0,
    });
  });

  it('has no NAT gateway, no internet gateway and only isolated subnets', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    template.resourceCountIs('AWS::EC2::Subnet', 2);
    for (const subnet of Object.values(resourcesOf(template, 'AWS::EC2::Subnet'))) {
      expect(subnet.Properties?.MapPublicIpOnLaunch).toBe(false);
    }
  });

  it('admits Valkey on 6379 only, and only from the functions security group', () => {
    const ingress = Object.values(resourcesOf(template, 'AWS::EC2::SecurityGroupIngress')).filter((r) =>
      JSON.stringify(r.Properties?.GroupId).includes('CacheSecurityGroup'),
    );
    expect(ingress).toHaveLength(1);
    expect(ingress[0]?.Properties).toMatchObject({
      IpProtocol: 'tcp',
      FromPort: 6379,
      ToPort: 6379,
      SourceSecurityGroupId: { 'Fn::GetAtt': [expect.stringMatching(/FunctionSecurityGroup/), 'GroupId'] },
    });
  });

  it('puts every function that moves KV or serves the API in the VPC with the functions security group', () => {
    const all = Object.values(resourcesOf(template, 'AWS::Lambda::Function'));
    const functions = all.filter(
      (f) =>
        String(f.Properties?.Description ?? '').startsWith('Disagg') &&
        !String(f.Properties?.Description).startsWith(DESCRIPTIONS.prefillFailures) &&
        !String(f.Properties?.Description).startsWith(AUTHORIZER_DESCRIPTION),
    );
    expect(functions).toHaveLength(4);
    for (const fn of functions) {
      expect(JSON.stringify(fn.Properties?.VpcConfig)).toMatch(/FunctionSecurityGroup/);
    }
    // The key reader touches no data: it stays outside the VPC (no network interface to wait for).
    const reader = all.filter((f) => String(f.Properties?.Description ?? '').startsWith(AUTHORIZER_DESCRIPTION));
    expect(reader).toHaveLength(1);
    expect(reader[0]!.Properties?.VpcConfig).toBeUndefined();
  });

  it('reaches S3 and DynamoDB through free gateway endpoints and SQS, Lambda and X-Ray through interface endpoints (no Logs endpoint: no function calls CloudWatch Logs)', () => {
    const endpoints = Object.values(resourcesOf(template, 'AWS::EC2::VPCEndpoint'));
    const services = endpoints.map((e) => JSON.stringify(e.Properties?.ServiceName));
    const byType = (type: string): number => endpoints.filter((e) => e.Properties?.VpcEndpointType === type).length;
    expect(byType('Gateway')).toBe(2);
    expect(byType('Interface')).toBe(3);
    for (const service of ['.s3', '.dynamodb', '.sqs', '.lambda', '.xray']) {
      expect(services.some((s) => s.includes(service))).toBe(true);
    }
    expect(services.some((s) => s.includes('.logs'))).toBe(false);
    expect(services.some((s) => s.includes('bedrock-runtime'))).toBe(false);
    for (const endpoint of endpoints.filter((e) => e.Properties?.VpcEndpointType === 'Interface')) {
      expect(endpoint.Properties?.PrivateDnsEnabled).toBe(true);
    }
  });

  it('adds a bedrock-runtime interface endpoint when backend=bedrock', () => {
    const bedrock = synth({ ...AWS, backend: 'bedrock', bedrockModelId: 'meta.llama3-1-70b-instruct-v1:0' }).template;
    const services = Object.values(resourcesOf(bedrock, 'AWS::EC2::VPCEndpoint')).map((e) =>
      JSON.stringify(e.Properties?.ServiceName),
    );
    expect(services.filter((s) => s.includes('bedrock-runtime'))).toHaveLength(1);
  });

  it('opens the interface endpoints to the functions security group only, on 443', () => {
    const ingress = Object.values(resourcesOf(template, 'AWS::EC2::SecurityGroupIngress')).filter((r) =>
      JSON.stringify(r.Properties?.GroupId).includes('EndpointSecurityGroup'),
    );
    expect(ingress).toHaveLength(1);
    expect(ingress[0]?.Properties).toMatchObject({ FromPort: 443, ToPort: 443 });
  });

  it('creates no KV bucket', () => {
    template.resourceCountIs('AWS::S3::Bucket', 0);
  });

  it('puts the subnets in the zones named by availabilityZones, and in the first two otherwise', () => {
    const zonesOf = (t: typeof template): unknown[] =>
      Object.values(resourcesOf(t, 'AWS::EC2::Subnet')).map((subnet) => subnet.Properties?.AvailabilityZone);
    expect(zonesOf(synth({ ...AWS, availabilityZones: 'us-east-1b,us-east-1d' }).template)).toEqual([
      'us-east-1b',
      'us-east-1d',
    ]);
    expect(zonesOf(template)).toEqual([
      { 'Fn::Select': [0, { 'Fn::GetAZs': '' }] },
      { 'Fn::Select': [1, { 'Fn::GetAZs': '' }] },
    ]);
  });

  it('names the cache after what replaces it, so a replacement (new zones) does not collide with the old cache', () => {
    const nameOf = (t: typeof template): string =>
      String(Object.values(resourcesOf(t, 'AWS::ElastiCache::ServerlessCache'))[0]?.Properties?.ServerlessCacheName);
    const moved = nameOf(synth({ ...AWS, availabilityZones: 'us-east-1b,us-east-1d' }).template);
    expect(nameOf(template)).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(moved).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(moved).not.toBe(nameOf(template));
    // The same deployment keeps its name (no replacement on an unrelated change).
    expect(nameOf(synth({ ...AWS, logRetentionDays: '30' }).template)).toBe(nameOf(template));
  });

  it('caps ECPU and storage from the configured load and KV size, not at a fixed 5,000 ECPU/s', () => {
    const limitsOf = (t: typeof template): { ecpu: number; gb: number } => {
      const limits = Object.values(resourcesOf(t, 'AWS::ElastiCache::ServerlessCache'))[0]?.Properties
        ?.CacheUsageLimits as { ECPUPerSecond: { Maximum: number }; DataStorage: { Maximum: number; Unit: string } };
      expect(limits.DataStorage.Unit).toBe('GB');
      return { ecpu: limits.ECPUPerSecond.Maximum, gb: limits.DataStorage.Maximum };
    };
    // 20 requests in a second (the burst), each writing and reading an 8,192-token blob of 1 KB per token: 1 ECPU per KB.
    const defaults = limitsOf(template);
    const blobKb = Math.ceil(kvBlobBytes(synth(AWS).stack.config, 8192) / 1024);
    expect(REFERENCE_KV_BYTES_PER_TOKEN).toBe(1024);
    expect(defaults.ecpu).toBeGreaterThanOrEqual(20 * 2 * blobKb);
    expect(defaults.ecpu).toBeLessThanOrEqual(ECPU_LIMITS.max);
    // 256 waiting + 8 x 4 decoding blobs of 8 MB: 2.4 GB before headroom.
    expect(defaults.gb).toBeGreaterThanOrEqual(3);
    const busier = limitsOf(synth({ ...AWS, throttleRateLimit: '100', throttleBurstLimit: '200' }).template);
    expect(busier.ecpu).toBeGreaterThan(defaults.ecpu * 9);
    const shorter = limitsOf(synth({ ...AWS, maxPromptTokens: '1024' }).template);
    expect(shorter.ecpu).toBeLessThan(defaults.ecpu / 4);
  });

  it('tells the functions the largest KV blob the cache takes', () => {
    const variables = (
      functionProps(template, DESCRIPTIONS.prefill).Environment as { Variables: Record<string, string> }
    ).Variables;
    expect(Number(variables[DEPLOYMENT_ENV.kvMaxBlobBytes])).toBeGreaterThanOrEqual(
      kvBlobBytes(synth(AWS).stack.config, 8192),
    );
    expect(Number(variables[DEPLOYMENT_ENV.kvMaxBlobBytes])).toBeLessThanOrEqual(512 * 1024 * 1024);
  });
});

describe('KvHandoff KV store on localstack: an S3 bucket', () => {
  const { template } = synth(LOCALSTACK);

  it('has no VPC and no cache', () => {
    template.resourceCountIs('AWS::EC2::VPC', 0);
    template.resourceCountIs('AWS::ElastiCache::ServerlessCache', 0);
  });

  it('expires blobs after one day, blocks public access and encrypts with S3-managed keys', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: [
          Match.objectLike({
            ExpirationInDays: 1,
            Status: 'Enabled',
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
          }),
        ],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
    });
  });

  it('denies non-TLS requests in the bucket policy', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('empties and deletes the bucket on stack deletion by default (sandbox), and keeps it with removalPolicy=retain', () => {
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 1);
    template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Delete' });
    const retained = synth({ ...LOCALSTACK, removalPolicy: 'retain' }).template;
    retained.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
    retained.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain' });
  });

  it('can also be chosen on aws with kvStore=s3, without a VPC', () => {
    const s3OnAws = synth({ ...AWS, kvStore: 's3' }).template;
    s3OnAws.resourceCountIs('AWS::S3::Bucket', 1);
    s3OnAws.resourceCountIs('AWS::EC2::VPC', 0);
  });
});
