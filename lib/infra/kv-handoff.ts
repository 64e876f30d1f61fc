/**
 * The handoff between prefill and decode: a queue of small descriptors (with a dead-letter queue for
 * poison ones) and the KV store the descriptors point into (claim-check). The KV store is ElastiCache
 * Serverless (Valkey) in an isolated VPC, or an S3 bucket where ElastiCache is unavailable (LocalStack).
 */
import { Duration, Fn, Names, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DEPLOYMENT_ENV } from '../core/engine/deployment-env';
import type { KvStoreKind } from './config';
import { KvNetwork } from './kv-network';

/**
 * AWS recommends a queue visibility timeout of at least six times the function timeout for an SQS event
 * source, so retries of a throttled or slow batch do not make a message visible while it is in flight.
 */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

/** Dead letters stay for SQS's maximum, so a poison descriptor can be inspected and redriven. */
const DEAD_LETTER_RETENTION = Duration.days(14);

export interface KvHandoffProps {
  readonly kvStore: KvStoreKind;
  /** Receives before a descriptor moves to the dead-letter queue. */
  readonly maxReceiveCount: number;
  /** The decode function's timeout; the queue's visibility timeout is derived from it. */
  readonly decodeTimeout: Duration;
  readonly removalPolicy: RemovalPolicy;
  /** Adds the bedrock-runtime VPC endpoint (only matters with kvStore=elasticache). */
  readonly bedrock: boolean;
}

export class KvHandoff extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly kvStore: KvStoreKind;
  /** Present with kvStore=elasticache: the VPC the cache and the functions share. */
  readonly network?: KvNetwork;
  readonly cache?: elasticache.CfnServerlessCache;
  /** Present with kvStore=s3. */
  readonly bucket?: s3.Bucket;
  /** The DEPLOYMENT_ENV entries that tell a handler where the KV store is. */
  readonly environment: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: KvHandoffProps) {
    super(scope, id);
    this.kvStore = props.kvStore;

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: DEAD_LETTER_RETENTION,
      removalPolicy: props.removalPolicy,
    });
    this.queue = new sqs.Queue(this, 'HandoffQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(props.decodeTimeout.toSeconds() * VISIBILITY_TIMEOUT_FACTOR),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
      removalPolicy: props.removalPolicy,
    });

    if (props.kvStore === 'elasticache') {
      this.network = new KvNetwork(this, 'Network', { bedrock: props.bedrock });
      this.cache = new elasticache.CfnServerlessCache(this, 'Cache', {
        engine: 'valkey',
        majorEngineVersion: '8',
        // 40 characters, lowercase, unique per stack: the service's naming rules.
        serverlessCacheName: Names.uniqueResourceName(this, { maxLength: 40, separator: '-' }).toLowerCase(),
        description: 'Disagg KV blobs (claim-check handoff between prefill and decode)',
        subnetIds: this.network.vpc.isolatedSubnets.map((subnet) => subnet.subnetId),
        securityGroupIds: [this.network.cacheSecurityGroup.securityGroupId],
        // Caps the sandbox bill: blobs are leased for minutes and deleted once decode consumes them.
        cacheUsageLimits: { dataStorage: { maximum: 5, unit: 'GB' }, ecpuPerSecond: { maximum: 5000 } },
        // Blobs are transient; a snapshot would only cost storage.
        snapshotRetentionLimit: 0,
      });
      this.cache.applyRemovalPolicy(props.removalPolicy);
      // Serverless ElastiCache always requires TLS, hence rediss://.
      const redisUrl = Fn.join('', ['rediss://', this.cache.attrEndpointAddress, ':', this.cache.attrEndpointPort]);
      this.environment = { [DEPLOYMENT_ENV.kvStore]: 'elasticache', [DEPLOYMENT_ENV.redisUrl]: redisUrl };
    } else {
      const destroy = props.removalPolicy === RemovalPolicy.DESTROY;
      this.bucket = new s3.Bucket(this, 'KvBucket', {
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        encryption: s3.BucketEncryption.S3_MANAGED,
        // The bucket holds only KV blobs, so the rule covers it all: the backstop for blobs nobody consumed.
        lifecycleRules: [
          {
            id: 'expire-kv-blobs',
            expiration: Duration.days(1),
            abortIncompleteMultipartUploadAfter: Duration.days(1),
          },
        ],
        removalPolicy: props.removalPolicy,
        autoDeleteObjects: destroy,
      });
      Validations.of(this.bucket).acknowledge({
        id: 'AwsSolutions-S1',
        reason:
          'Holds only transient KV blobs that expire within a day; server access logs would need a second bucket whose logs outgrow the data. CloudTrail data events are the production option.',
      });
      this.environment = { [DEPLOYMENT_ENV.kvStore]: 's3', [DEPLOYMENT_ENV.kvBucket]: this.bucket.bucketName };
    }
  }

  /** Read, write and delete KV blobs: exactly what the KV adapters call. */
  grantKvAccess(grantee: iam.IGrantable): void {
    if (this.bucket) {
      grantee.grantPrincipal.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
          resources: [this.bucket.arnForObjects('*')],
        }),
      );
      // Without ListBucket a missing blob reads as AccessDenied instead of NoSuchKey, which the KV failure policy needs.
      grantee.grantPrincipal.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }),
      );
    }
    // ElastiCache Serverless without IAM auth is reached over the network only: the security group is the grant.
  }

  /** The S3 object-ARN wildcard a nag acknowledgement on a grantee must name. */
  get kvObjectWildcardFinding(): string | null {
    if (!this.bucket) return null;
    const logicalId = Stack.of(this).getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket);
    return `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>/*]`;
  }
}
