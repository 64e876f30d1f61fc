import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { VISIBILITY_TIMEOUT_FACTOR } from '../../lib/infra/kv-handoff';
import { AWS, LOCALSTACK, resourcesOf, synth } from './synth';

const queueId = (context: typeof AWS): string => {
  const { stack } = synth(context);
  return stack.getLogicalId(stack.handoff.queue.node.defaultChild as never);
};
const dlqId = (context: typeof AWS): string => {
  const { stack } = synth(context);
  return stack.getLogicalId(stack.handoff.deadLetterQueue.node.defaultChild as never);
};

describe('KvHandoff queue', () => {
  it('redrives a descriptor to the dead-letter queue after 3 receives by default', () => {
    const { template } = synth(AWS);
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId(AWS), 'Arn'] }, maxReceiveCount: 3 },
    });
  });

  it('takes maxReceiveCount from the config', () => {
    synth({ ...LOCALSTACK, maxReceiveCount: '7' }).template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { maxReceiveCount: 7 },
    });
  });

  it('keeps messages invisible for 6x the decode timeout (AWS guidance for event sources)', () => {
    expect(VISIBILITY_TIMEOUT_FACTOR).toBe(6);
    const { template } = synth({ ...AWS, decodeTimeoutSeconds: '200' });
    const queue = resourcesOf(template, 'AWS::SQS::Queue')[queueId({ ...AWS, decodeTimeoutSeconds: '200' })];
    expect(queue?.Properties?.VisibilityTimeout).toBe(1200);
    expect(resourcesOf(synth(AWS).template, 'AWS::SQS::Queue')[queueId(AWS)]?.Properties?.VisibilityTimeout).toBe(720);
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

  it('puts every function in the VPC with the functions security group', () => {
    const functions = Object.values(resourcesOf(template, 'AWS::Lambda::Function')).filter((f) =>
      String(f.Properties?.Description ?? '').startsWith('Disagg'),
    );
    expect(functions).toHaveLength(4);
    for (const fn of functions) {
      expect(JSON.stringify(fn.Properties?.VpcConfig)).toMatch(/FunctionSecurityGroup/);
    }
  });

  it('reaches S3 and DynamoDB through free gateway endpoints and SQS, Lambda, Logs and X-Ray through interface endpoints', () => {
    const endpoints = Object.values(resourcesOf(template, 'AWS::EC2::VPCEndpoint'));
    const services = endpoints.map((e) => JSON.stringify(e.Properties?.ServiceName));
    const byType = (type: string): number => endpoints.filter((e) => e.Properties?.VpcEndpointType === type).length;
    expect(byType('Gateway')).toBe(2);
    expect(byType('Interface')).toBe(4);
    for (const service of ['.s3', '.dynamodb', '.sqs', '.lambda', '.logs', '.xray']) {
      expect(services.some((s) => s.includes(service))).toBe(true);
    }
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
